package serial

import (
	"fmt"
	"sync"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// loraLinkProto drives Paho LoRaLink modems: frames from the RX modem
// (and the TX modem's answers) are decoded on each port; downlinks are
// queued and sent one at a time, each waiting for the TX modem's answer.
type loraLinkProto struct {
	l      *Link
	rxDec  lockedDecoder
	txDec  lockedDecoder
	rxPort *portRunner
	txPort *portRunner // == rxPort with one device

	mu    sync.Mutex
	queue *radios.TxQueue[loraLinkTx]
	kick  chan struct{}
	reply chan uint8
}

type loraLinkTx struct {
	to    transport.Addr
	frame []byte // complete, escaped
}

func newLoRaLinkProto(l *Link) *loraLinkProto {
	p := &loraLinkProto{
		l:     l,
		queue: radios.NewTxQueue[loraLinkTx](l.cfg.TxQueue),
		kick:  make(chan struct{}, 1),
		reply: make(chan uint8, 1),
	}
	p.rxDec.d = radios.NewLoRaLinkDecoder(l.cfg.MaxFrame)
	p.rxPort = l.addRunner(l.cfg.Device, l.cfg.Baud, &loraLinkPort{p: p, dec: &p.rxDec})
	p.txPort = p.rxPort
	if l.cfg.TxDevice != "" && l.cfg.TxDevice != l.cfg.Device {
		p.txDec.d = radios.NewLoRaLinkDecoder(l.cfg.MaxFrame)
		p.txPort = l.addRunner(l.cfg.TxDevice, l.cfg.TxBaud, &loraLinkPort{p: p, dec: &p.txDec})
	}
	l.wg.Add(1)
	go p.txLoop()
	return p
}

// loraLinkPort is the handler of one of the (one or two) ports.
type loraLinkPort struct {
	p   *loraLinkProto
	dec *lockedDecoder
}

func (h *loraLinkPort) opened()       { h.dec.reset() }
func (h *loraLinkPort) closed(error)  {}
func (h *loraLinkPort) data(b []byte) { h.dec.feed(b, h.p.frame) }

func (p *loraLinkProto) decoderStats() radios.DecoderStats {
	s := p.rxDec.stats()
	if p.txDec.d != nil {
		s = addStats(s, p.txDec.stats())
	}
	return s
}

func (p *loraLinkProto) frame(fd []byte) {
	l := p.l
	rx, err := radios.ParseLoRaLinkRx(fd)
	if err != nil {
		l.stats.rxRejected.Add(1)
		return
	}
	switch rx.Type {
	case radios.LoRaLinkMQTTSN:
		if rx.Src == 0 || rx.Src == radios.LoRaLinkBroadcast {
			l.stats.rxRejected.Add(1)
			return
		}
		p.rxPort.markHealthy()
		a := LoRaLinkAddr(rx.Src)
		l.recordSignal(a, int(rx.RSSI), int(rx.SNR))
		l.deliver(a, rx.Payload)
	case radios.LoRaLinkAck, radios.LoRaLinkNoFreeCh, radios.LoRaLinkTxTimeout:
		p.txPort.markHealthy()
		select {
		case p.reply <- rx.Type:
		default:
			l.stats.rxIgnored.Add(1)
		}
	default:
		l.stats.rxIgnored.Add(1)
	}
}

func (p *loraLinkProto) enqueue(payload []byte, dest uint8, to transport.Addr, prio radios.Priority) error {
	frame, err := radios.AppendLoRaLinkTx(make([]byte, 0, 2*len(payload)+8), radios.LoRaLinkTx{Dest: dest, Type: radios.LoRaLinkMQTTSN, Payload: payload})
	if err != nil {
		return fmt.Errorf("serial %s: %w", p.l.cfg.Name, err)
	}
	p.mu.Lock()
	err = p.queue.Push(prio, loraLinkTx{to: to, frame: frame})
	p.mu.Unlock()
	if err != nil {
		p.l.stats.txCongested.Add(1)
		return fmt.Errorf("serial %s: %w: %w", p.l.cfg.Name, transport.ErrCongested, err)
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return nil
}

func (p *loraLinkProto) writeTo(b []byte, to transport.Addr, prio radios.Priority) error {
	if to.Len() != 1 || to.Bytes()[0] == 0 || to.Bytes()[0] == radios.LoRaLinkBroadcast {
		return fmt.Errorf("serial %s: address %s is not a LoRaLink node (1..254)", p.l.cfg.Name, to)
	}
	return p.enqueue(b, to.Bytes()[0], to, prio)
}

func (p *loraLinkProto) broadcast(b []byte) error {
	return p.enqueue(b, radios.LoRaLinkBroadcast, LoRaLinkAddr(radios.LoRaLinkBroadcast), radios.PriorityAdvertise)
}

// txLoop sends queued frames one at a time and waits for each answer.
func (p *loraLinkProto) txLoop() {
	l := p.l
	defer l.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		p.mu.Lock()
		item, _, ok := p.queue.Pop()
		p.mu.Unlock()
		if !ok {
			select {
			case <-p.kick:
				continue
			case <-l.done:
				return
			}
		}
		select { // forget a late answer to an earlier frame
		case <-p.reply:
		default:
		}
		if err := p.txPort.write(item.frame); err != nil {
			l.reportFailure(item.to, err)
			continue
		}
		l.stats.txFrames.Add(1)
		timer.Reset(l.cfg.DeliveryTimeout)
		select {
		case code := <-p.reply:
			timer.Stop()
			switch code {
			case radios.LoRaLinkAck:
			case radios.LoRaLinkNoFreeCh:
				l.reportFailure(item.to, fmt.Errorf("%w: loralink: no free channel (%w)", ErrDeliveryFailed, transport.ErrCongested))
			default:
				l.reportFailure(item.to, fmt.Errorf("%w: loralink: transmission timeout", ErrDeliveryFailed))
			}
		case <-timer.C:
			l.reportFailure(item.to, fmt.Errorf("%w: loralink: TX modem did not answer in %v", ErrDeliveryFailed, l.cfg.DeliveryTimeout))
		case <-l.done:
			timer.Stop()
			return
		}
	}
}
