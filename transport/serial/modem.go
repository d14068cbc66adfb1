package serial

import (
	"fmt"
	"time"

	"sync"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// modemProto drives an RN2483 or RUI3 modem: one goroutine owns the
// radios.Modem state machine and feeds it lines from the port, queued
// downlinks (by priority) and its response deadline.
type modemProto struct {
	l    *Link
	m    *radios.Modem
	port *portRunner
	dec  lockedDecoder

	lines  chan []byte
	events chan bool // port up (true) or down (false)
	kick   chan struct{}

	mu    sync.Mutex
	queue *radios.TxQueue[modemTx]

	inflight *modemTx // driver goroutine only
}

type modemTx struct {
	to    transport.Addr
	frame []byte // address header + MQTT-SN message
}

func newModemProto(l *Link) (*modemProto, error) {
	kind := radios.ModemRN2483
	if l.cfg.Kind == KindRAK {
		kind = radios.ModemRAK
	}
	m, err := radios.NewModem(radios.ModemConfig{
		Kind:           kind,
		LoRa:           l.cfg.LoRa,
		FrequencyHz:    l.cfg.FrequencyHz,
		PowerDBm:       l.cfg.PowerDBm,
		SyncWord:       l.cfg.SyncWord,
		CommandTimeout: l.cfg.CommandTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("serial %s: %w", l.cfg.Name, err)
	}
	b, err := radios.NewDutyCycle(l.cfg.RegionRules, l.cfg.Budget).Budget(l.cfg.FrequencyHz)
	if err != nil {
		return nil, fmt.Errorf("serial %s: %w", l.cfg.Name, err)
	}
	l.budget = b
	l.mtu = min(l.mtu, m.MaxFrame()-radios.HeaderLen)
	p := &modemProto{
		l:      l,
		m:      m,
		lines:  make(chan []byte, 16),
		events: make(chan bool, 4),
		kick:   make(chan struct{}, 1),
		queue:  radios.NewTxQueue[modemTx](l.cfg.TxQueue),
	}
	// A line holds at most "radio_rx  " or "+EVT:RXP2P:rssi:snr:" and
	// 2 hex digits per byte.
	p.dec.d = radios.NewLineDecoder(2*m.MaxFrame() + 64)
	p.port = l.addRunner(l.cfg.Device, l.cfg.Baud, p)
	l.wg.Add(1)
	go p.drive()
	return p, nil
}

func (p *modemProto) decoderStats() radios.DecoderStats { return p.dec.stats() }

func (p *modemProto) opened() {
	p.dec.reset()
	p.signal(true)
}

func (p *modemProto) closed(error) { p.signal(false) }

func (p *modemProto) signal(up bool) {
	select {
	case p.events <- up:
	case <-p.l.done:
	}
}

// data runs on the port goroutine: split lines and hand them over.
func (p *modemProto) data(b []byte) {
	p.dec.feed(b, func(line []byte) {
		select {
		case p.lines <- append([]byte(nil), line...):
		case <-p.l.done:
		}
	})
}

// drive is the goroutine that owns the state machine.
func (p *modemProto) drive() {
	l := p.l
	defer l.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-l.done:
			timer.Stop()
			p.failInflight(fmt.Errorf("serial %s: %w", l.cfg.Name, transport.ErrClosed))
			return
		case up := <-p.events:
			timer.Stop()
			if p.m.Reset() {
				p.failInflight(fmt.Errorf("%w: modem port lost during transmission", ErrDeliveryFailed))
			}
			if up {
				p.apply(p.m.Start(), timer)
			}
		case line := <-p.lines:
			out, err := p.m.Line(line)
			if err != nil {
				l.stats.rxRejected.Add(1)
				l.log.Debug("modem line rejected", "link", l.cfg.Name, "cause", err)
			}
			p.apply(out, timer)
		case <-timer.C:
			p.apply(p.m.Timeout(), timer)
		case <-p.kick:
		}
		p.trySend(timer)
	}
}

func (p *modemProto) trySend(timer *time.Timer) {
	for p.m.Ready() && p.inflight == nil {
		p.mu.Lock()
		item, _, ok := p.queue.Pop()
		p.mu.Unlock()
		if !ok {
			return
		}
		out, err := p.m.Send(item.frame)
		if err != nil {
			p.l.reportFailure(item.to, fmt.Errorf("%w: %w", ErrDeliveryFailed, err))
			continue
		}
		p.inflight = &item
		p.apply(out, timer)
	}
}

func (p *modemProto) failInflight(err error) {
	if p.inflight != nil {
		p.l.reportFailure(p.inflight.to, err)
		p.inflight = nil
	}
}

// apply carries out one output of the state machine.
func (p *modemProto) apply(out radios.ModemOutput, timer *time.Timer) {
	l := p.l
	switch {
	case out.Timer > 0:
		timer.Reset(out.Timer)
	case out.Timer < 0:
		timer.Stop()
	}
	if out.Rx != nil {
		p.uplink(out)
	}
	if out.TxDone {
		if out.TxErr != nil {
			p.failInflight(fmt.Errorf("%w: %w", ErrDeliveryFailed, out.TxErr))
		} else if p.inflight != nil {
			l.stats.txFrames.Add(1)
			p.inflight = nil
		}
	}
	if out.Failed != nil {
		timer.Stop()
		p.failInflight(fmt.Errorf("%w: %w", ErrDeliveryFailed, out.Failed))
		l.log.Error("modem failed, reopening", "link", l.cfg.Name, "device", l.cfg.Device, "cause", out.Failed)
		p.port.fail(out.Failed)
		return
	}
	if p.m.Ready() {
		p.port.markHealthy()
	}
	if out.Write != nil {
		// A failed write closes the port; the runner reports and reopens.
		_ = p.port.write(out.Write)
	}
}

func (p *modemProto) uplink(out radios.ModemOutput) {
	l := p.l
	node, payload, err := radios.DecodeUplink(out.Rx, l.cfg.NetworkID)
	if err != nil {
		l.stats.rxRejected.Add(1)
		l.log.Debug("radio frame ignored", "link", l.cfg.Name, "cause", err)
		return
	}
	a := NodeAddr(node)
	if out.HasSignal {
		l.recordSignal(a, out.RSSI, out.SNR)
	}
	l.deliver(a, payload)
}

func (p *modemProto) enqueue(payload []byte, node uint16, to transport.Addr, prio radios.Priority) error {
	l := p.l
	frame := radios.AppendHeader(make([]byte, 0, radios.HeaderLen+len(payload)), radios.Header{Downlink: true, Network: l.cfg.NetworkID, Node: node})
	frame = append(frame, payload...)
	airtime := l.cfg.LoRa.Airtime(len(frame))
	p.mu.Lock()
	if p.queue.Len() >= l.cfg.TxQueue {
		p.mu.Unlock()
		l.stats.txCongested.Add(1)
		return fmt.Errorf("serial %s: %w: %w", l.cfg.Name, transport.ErrCongested, radios.ErrQueueFull)
	}
	if err := l.budget.Reserve(airtime, prio, l.cfg.Now()); err != nil {
		p.mu.Unlock()
		l.stats.txCongested.Add(1)
		return fmt.Errorf("serial %s: %w: %w", l.cfg.Name, transport.ErrCongested, err)
	}
	_ = p.queue.Push(prio, modemTx{to: to, frame: frame}) // room checked above
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return nil
}

func (p *modemProto) writeTo(b []byte, to transport.Addr, prio radios.Priority) error {
	if to.Len() != 2 {
		return fmt.Errorf("serial %s: address %s is not a 2-byte node ID", p.l.cfg.Name, to)
	}
	node := uint16(to.Bytes()[0])<<8 | uint16(to.Bytes()[1])
	if node == 0 || node == radios.NodeBroadcast {
		return fmt.Errorf("serial %s: node ID 0x%04X is not a unicast address", p.l.cfg.Name, node)
	}
	return p.enqueue(b, node, to, prio)
}

func (p *modemProto) broadcast(b []byte) error {
	return p.enqueue(b, radios.NodeBroadcast, NodeAddr(radios.NodeBroadcast), radios.PriorityAdvertise)
}
