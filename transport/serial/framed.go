package serial

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// ErrDeliveryFailed wraps the radio's reason in TxFailure.Err.
var ErrDeliveryFailed = errors.New("serial: radio delivery failed")

// lockedDecoder guards a streaming decoder so its counters can be read
// while the port goroutine feeds it.
type lockedDecoder struct {
	mu sync.Mutex
	d  radios.FrameDecoder
}

func (d *lockedDecoder) feed(p []byte, emit func([]byte)) {
	d.mu.Lock()
	d.d.Feed(p, emit)
	d.mu.Unlock()
}

func (d *lockedDecoder) reset() {
	d.mu.Lock()
	d.d.Reset()
	d.mu.Unlock()
}

func (d *lockedDecoder) stats() radios.DecoderStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.d.Stats()
}

func addStats(a, b radios.DecoderStats) radios.DecoderStats {
	a.Frames += b.Frames
	a.BadChecksum += b.BadChecksum
	a.Oversize += b.Oversize
	a.Truncated += b.Truncated
	a.BadEscape += b.BadEscape
	a.Garbage += b.Garbage
	return a
}

// ---- XBee ----

type xbeeProto struct {
	l    *Link
	mode radios.APIMode
	dec  lockedDecoder
	port *portRunner

	mu      sync.Mutex
	nextID  uint8
	pending [256]transport.Addr // destination by frame ID
}

func newXBeeProto(l *Link) *xbeeProto {
	x := &xbeeProto{l: l, mode: radios.APIMode(l.cfg.APIMode)}
	x.dec.d = radios.NewXBeeDecoder(x.mode, l.cfg.MaxFrame)
	x.port = l.addRunner(l.cfg.Device, l.cfg.Baud, x)
	return x
}

func (x *xbeeProto) opened()                           { x.dec.reset() }
func (x *xbeeProto) closed(error)                      {}
func (x *xbeeProto) decoderStats() radios.DecoderStats { return x.dec.stats() }

func (x *xbeeProto) data(p []byte) { x.dec.feed(p, x.frame) }

func (x *xbeeProto) frame(fd []byte) {
	l := x.l
	switch fd[0] {
	case radios.XBeeTypeReceivePacket:
		p, err := radios.ParseXBeeRxPacket(fd)
		if err != nil {
			l.stats.rxRejected.Add(1)
			return
		}
		x.port.markHealthy()
		l.deliver(XBeeAddr(p.Src64), p.Data)
	case radios.XBeeTypeTransmitStatus:
		s, err := radios.ParseXBeeTxStatus(fd)
		if err != nil {
			l.stats.rxRejected.Add(1)
			return
		}
		x.port.markHealthy()
		if s.OK() {
			return
		}
		x.mu.Lock()
		to := x.pending[s.FrameID]
		x.mu.Unlock()
		l.reportFailure(to, fmt.Errorf("%w: xbee frame %d: %s", ErrDeliveryFailed, s.FrameID, radios.XBeeDeliveryText(s.Delivery)))
	case radios.XBeeTypeModemStatus:
		x.port.markHealthy()
		l.stats.rxIgnored.Add(1)
		if len(fd) > 1 {
			l.log.Info("xbee modem status", "link", l.cfg.Name, "status", fmt.Sprintf("0x%02X", fd[1]))
		}
	default:
		l.stats.rxIgnored.Add(1)
	}
}

func (x *xbeeProto) send(p []byte, dest64 uint64, to transport.Addr, track bool) error {
	req := radios.XBeeTxRequest{Dest64: dest64, Dest16: radios.XBeeUnknown16, Data: p}
	if track {
		x.mu.Lock()
		x.nextID++
		if x.nextID == 0 {
			x.nextID = 1
		}
		req.FrameID = x.nextID
		x.pending[req.FrameID] = to
		x.mu.Unlock()
	} else {
		req.Radius = x.l.cfg.XBeeRadius
	}
	fd := req.AppendFrameData(make([]byte, 0, len(p)+16))
	frame, err := radios.AppendXBeeFrame(make([]byte, 0, 2*len(fd)+8), x.mode, fd)
	if err != nil {
		return fmt.Errorf("serial %s: %w", x.l.cfg.Name, err)
	}
	if err := x.port.write(frame); err != nil {
		return err
	}
	x.l.stats.txFrames.Add(1)
	return nil
}

func (x *xbeeProto) writeTo(p []byte, to transport.Addr, _ radios.Priority) error {
	if to.Len() != 8 {
		return fmt.Errorf("serial %s: address %s is not a 64-bit XBee address", x.l.cfg.Name, to)
	}
	return x.send(p, binary.BigEndian.Uint64(to.Bytes()), to, true)
}

func (x *xbeeProto) broadcast(p []byte) error {
	return x.send(p, radios.XBeeBroadcast64, XBeeAddr(radios.XBeeBroadcast64), false)
}

// ---- SLIP / COBS bridge ----

type bridgeProto struct {
	l    *Link
	cobs bool
	dec  lockedDecoder
	port *portRunner
	addr transport.Addr
}

func newBridgeProto(l *Link) *bridgeProto {
	b := &bridgeProto{l: l, cobs: l.cfg.Kind == KindCOBS, addr: BridgeAddr()}
	if b.cobs {
		b.dec.d = radios.NewCOBSDecoder(l.cfg.MaxFrame)
	} else {
		b.dec.d = radios.NewSLIPDecoder(l.cfg.MaxFrame)
	}
	b.port = l.addRunner(l.cfg.Device, l.cfg.Baud, b)
	return b
}

func (b *bridgeProto) opened()                           { b.dec.reset() }
func (b *bridgeProto) closed(error)                      {}
func (b *bridgeProto) decoderStats() radios.DecoderStats { return b.dec.stats() }

func (b *bridgeProto) data(p []byte) {
	b.dec.feed(p, func(f []byte) {
		b.port.markHealthy()
		b.l.deliver(b.addr, f)
	})
}

func (b *bridgeProto) encode(p []byte) []byte {
	if b.cobs {
		return radios.AppendCOBS(make([]byte, 0, len(p)+len(p)/254+2), p)
	}
	return radios.AppendSLIP(make([]byte, 0, len(p)+8), p)
}

func (b *bridgeProto) writeTo(p []byte, to transport.Addr, _ radios.Priority) error {
	if to != b.addr {
		return fmt.Errorf("serial %s: address %s is not the bridge address", b.l.cfg.Name, to)
	}
	return b.broadcast(p)
}

// broadcast writes the frame to the bridge, which decides how to send it.
func (b *bridgeProto) broadcast(p []byte) error {
	if err := b.port.write(b.encode(p)); err != nil {
		return err
	}
	b.l.stats.txFrames.Add(1)
	return nil
}
