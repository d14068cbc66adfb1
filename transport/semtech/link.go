// Package semtech is a transport.Link for LoRa concentrators: the server
// side of the Semtech UDP packet-forwarder protocol (versions 1 and 2),
// carrying MQTT-SN frames behind the raw-LoRa address header
// (docs/RADIO_HEADER.md).
//
// One Link listens on one UDP port and is fed by any number of packet
// forwarders, tracked by gateway EUI (bounded). It answers PUSH_DATA with
// PUSH_ACK and PULL_DATA with PULL_ACK, and remembers where each
// forwarder's last PULL_DATA came from: that is where its downlinks
// (PULL_RESP) go.
//
// Uplinks: rxpk entries with a good CRC are decoded, frames of other
// networks, LoRaWAN frames and malformed entries are counted and
// dropped, and the MQTT-SN frame is returned by ReadFrom from the node's
// address, NodeAddr(node ID) (the form transport/serial uses for the same
// header). A frame heard by several forwarders within Config.DedupWindow
// is delivered once; the copy with the best SNR decides the route back.
//
// Downlinks follow the Class-A pattern: a battery node listens only in a
// receive window Config.RXDelay after each of its uplinks. WriteTo queues
// the frame for the node (bounded); it goes out as a PULL_RESP timed for
// the window (tmst = uplink tmst + RXDelay, the uplink's frequency, data
// rate and coding rate) through the forwarder that heard the uplink best.
// One frame fits in one window (a node's receiver stops after one
// packet); the rest of the queue waits, in order, for the node's next
// uplinks. The queue is FIFO per node, not by priority: the gateway emits
// a node's frames in protocol order (buffered PUBLISHes, then PINGRESP),
// and reordering them would end an awake period early. Two rules keep
// the queue fresh: an acknowledgement (transport.PriorityAck) still
// queued when the node sends a new uplink is dropped, since it answered
// a request the node has moved on from (a retried request is answered
// again); and a frame identical to one already queued is coalesced.
// Frames that wait longer than Config.FrameTTL are dropped and reported
// on TxFailures. A node that wants everything the gateway holds keeps
// sending (PINGREQ, acknowledgements) until it receives PINGRESP.
//
// Every downlink is charged to the duty-cycle budget of a forwarder's
// transmitter (each forwarder is one transmitter with a ledger per
// sub-band, radios.DutyCycle), within the share of its transport.Priority
// (acknowledgements may use the whole budget, ADVERTISE half): when that
// share is spent, WriteToPriority returns transport.ErrCongested. The
// charge is made when the frame is accepted, on the forwarder and
// sub-band of the node's last uplink, and again if the window's differ;
// it is not refunded when a frame is dropped, which errs on the safe
// side. A downlink that would overlap one already booked on the best
// forwarder's transmitter goes through the next best, or waits. TX_ACK
// errors (version 2) are counted and reported on TxFailures.
package semtech

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// Errors of the link. TxFailure.Err wraps them; callers test with
// errors.Is.
var (
	// ErrUnknownNode: WriteTo to a node never heard (or evicted).
	ErrUnknownNode = errors.New("semtech: node not heard yet, no receive window to use")
	// ErrNoForwarder: no forwarder has sent PULL_DATA, so nothing can be
	// transmitted.
	ErrNoForwarder = errors.New("semtech: no packet forwarder with a downlink path")
	// ErrExpired: a downlink waited longer than Config.FrameTTL for a
	// receive window.
	ErrExpired = errors.New("semtech: downlink expired waiting for a receive window")
	// ErrEvicted: the node was dropped from the full node table with
	// downlinks queued.
	ErrEvicted = errors.New("semtech: node evicted with downlinks queued")
	// ErrTxAck: the forwarder refused a downlink in its TX_ACK. The
	// failure also wraps one of the specific errors below.
	ErrTxAck = errors.New("semtech: forwarder refused the downlink")

	// ErrTooLate: TX_ACK TOO_LATE, the PULL_RESP reached the forwarder
	// after the window (raise Config.TxLead).
	ErrTooLate = errors.New("semtech: TX_ACK TOO_LATE: the window had passed when the forwarder got the frame")
	// ErrTooEarly: TX_ACK TOO_EARLY, the window is too far ahead.
	ErrTooEarly = errors.New("semtech: TX_ACK TOO_EARLY: the window is too far ahead for the forwarder")
	// ErrCollisionPacket: TX_ACK COLLISION_PACKET, the transmitter is
	// booked by another downlink then.
	ErrCollisionPacket = errors.New("semtech: TX_ACK COLLISION_PACKET: the transmitter is busy with another downlink")
	// ErrCollisionBeacon: TX_ACK COLLISION_BEACON, a Class-B beacon is due.
	ErrCollisionBeacon = errors.New("semtech: TX_ACK COLLISION_BEACON: the window overlaps a beacon")
	// ErrTxFreq: TX_ACK TX_FREQ, the frequency is outside the radio's range.
	ErrTxFreq = errors.New("semtech: TX_ACK TX_FREQ: the frequency is not supported by the transmitter")
	// ErrTxPower: TX_ACK TX_POWER, the power is not supported.
	ErrTxPower = errors.New("semtech: TX_ACK TX_POWER: the power is not supported by the transmitter")
	// ErrGPSUnlocked: TX_ACK GPS_UNLOCKED, GPS-timed downlink without GPS.
	ErrGPSUnlocked = errors.New("semtech: TX_ACK GPS_UNLOCKED: the forwarder has no GPS time")
)

// NodeAddr returns the transport address of a raw-LoRa node ID: its two
// bytes, big endian, as transport/serial.NodeAddr, so a node has the same
// address on a concentrator and on a P2P modem.
func NodeAddr(node uint16) transport.Addr {
	a, _ := transport.AddrFromBytes([]byte{byte(node >> 8), byte(node)})
	return a
}

// NodeID returns the node ID held by a NodeAddr address.
func NodeID(a transport.Addr) (uint16, bool) {
	if a.Len() != 2 {
		return 0, false
	}
	b := a.Bytes()
	return uint16(b[0])<<8 | uint16(b[1]), true
}

type rxFrame struct {
	from transport.Addr
	b    []byte
}

// Link is the concentrator transport.Link. Create it with Listen.
type Link struct {
	cfg     Config
	log     *slog.Logger
	conn    *net.UDPConn
	allowed map[[8]byte]bool
	bcast   radios.LoRaParams
	stats   counters
	gates   logGates

	rx       chan rxFrame
	failures chan transport.TxFailure

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	fwds     map[[8]byte]*forwarder
	nodes    map[uint16]*node
	queued   int
	gen      uint64
	token    uint16
	inflight map[uint16]inflight
	ring     []uint16 // tokens in send order, for eviction
	ringPos  int
	slow     slowRef // slowest recent uplink, for RetryInterval
}

var (
	_ transport.Link             = (*Link)(nil)
	_ transport.PriorityWriter   = (*Link)(nil)
	_ transport.DeliveryNotifier = (*Link)(nil)
	_ transport.RetryAdvisor     = (*Link)(nil)
)

// Listen validates cfg, binds the UDP port and starts the link.
func Listen(cfg Config) (*Link, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("semtech %s: listen address %q: %w", cfg.Name, cfg.Listen, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("semtech %s: %w", cfg.Name, err)
	}
	l := &Link{
		cfg:      cfg,
		log:      cfg.Logger,
		conn:     conn,
		allowed:  make(map[[8]byte]bool, len(cfg.Forwarders)),
		rx:       make(chan rxFrame, cfg.RxQueue),
		failures: make(chan transport.TxFailure, cfg.FailureQueue),
		done:     make(chan struct{}),
		fwds:     make(map[[8]byte]*forwarder),
		nodes:    make(map[uint16]*node),
		token:    uint16(rand.Uint32()),
		inflight: make(map[uint16]inflight),
		ring:     make([]uint16, 0, cfg.MaxInflight),
	}
	for _, s := range cfg.Forwarders {
		e, _ := ParseEUI(s) // checked by withDefaults
		l.allowed[e] = true
	}
	if cfg.BroadcastFreqHz != 0 {
		l.bcast, _ = loraParams(radios.DataRate{LoRa: cfg.BroadcastDataRate}, cfg.BroadcastCodingRate, cfg.Preamble, cfg.NoCRC)
	}
	l.wg.Add(2)
	go l.readLoop()
	go l.janitor()
	l.log.Info("packet-forwarder link listening", "link", cfg.Name, "addr", conn.LocalAddr().String(), "network_id", cfg.NetworkID)
	return l, nil
}

// LocalAddr returns the UDP address the link listens on.
func (l *Link) LocalAddr() netip.AddrPort {
	return l.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (l *Link) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *Link) readLoop() {
	defer l.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("packet-forwarder socket read failed", "link", l.cfg.Name, "err", err)
			select {
			case <-l.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		l.handle(buf[:n], from)
	}
}

// janitor drops downlinks that waited too long for a window and keeps
// the RetryInterval reference current.
func (l *Link) janitor() {
	defer l.wg.Done()
	t := time.NewTicker(min(max(l.cfg.FrameTTL/4, time.Second), 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			l.sweep()
		}
	}
}

// deliver queues an uplink for ReadFrom (copied); l.mu is held.
func (l *Link) deliver(from transport.Addr, msg []byte) {
	select {
	case l.rx <- rxFrame{from: from, b: append([]byte(nil), msg...)}:
	default:
		l.stats.rxDropped.Add(1)
		l.warn(&l.gates.rxFull, "receive queue full, uplink dropped", "from", from)
	}
}

// fail counts a delivery failure and offers it on TxFailures.
func (l *Link) fail(to transport.Addr, err error) {
	l.stats.txFailures.Add(1)
	l.log.Debug("downlink not delivered", "link", l.cfg.Name, "to", to, "cause", err)
	select {
	case l.failures <- transport.TxFailure{To: to, Err: err}:
	default:
		l.stats.failuresDropped.Add(1)
	}
}

// ReadFrom blocks until a node's frame arrives or the link is closed.
// The address is NodeAddr(node ID).
func (l *Link) ReadFrom(p []byte) (int, transport.Addr, error) {
	for {
		select {
		case f := <-l.rx:
			if len(f.b) > len(p) {
				l.stats.rxTooLong.Add(1)
				continue
			}
			l.stats.rxFrames.Add(1)
			return copy(p, f.b), f.from, nil
		case <-l.done:
			return 0, transport.Addr{}, fmt.Errorf("semtech %s: %w", l.cfg.Name, transport.ErrClosed)
		}
	}
}

// WriteTo queues a frame for a node's next receive window at delivery
// priority.
func (l *Link) WriteTo(p []byte, to transport.Addr) error {
	return l.WriteToPriority(p, to, transport.PriorityDelivery)
}

// WriteToPriority queues a frame for the node's receive window. The
// frame's airtime is charged at once to the budget of the forwarder and
// sub-band of the node's last uplink, within the share of prio; the
// error wraps transport.ErrCongested when that share or the node's
// queue is full, and ErrUnknownNode when the node was never heard. A
// frame identical to one already queued for the node is accepted
// without being queued twice.
func (l *Link) WriteToPriority(p []byte, to transport.Addr, prio transport.Priority) error {
	if l.isClosed() {
		return fmt.Errorf("semtech %s: %w", l.cfg.Name, transport.ErrClosed)
	}
	if len(p) == 0 || len(p) > l.cfg.PayloadLimit {
		return fmt.Errorf("semtech %s: %d bytes, MTU %d: %w", l.cfg.Name, len(p), l.cfg.PayloadLimit, transport.ErrTooLarge)
	}
	id, ok := NodeID(to)
	if !ok || id == 0 || id == radios.NodeBroadcast {
		return fmt.Errorf("semtech %s: address %s is not a node ID", l.cfg.Name, to)
	}
	frame := radios.AppendHeader(make([]byte, 0, radios.HeaderLen+len(p)), radios.Header{Downlink: true, Network: l.cfg.NetworkID, Node: id})
	frame = append(frame, p...)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enqueue(id, frame, radios.Priority(prio))
}

// Broadcast sends a frame to every node at once ("imme") through every
// forwarder with a downlink path, on Config.BroadcastFreqHz, at the
// lowest priority. It returns transport.ErrNoBroadcast when broadcasts
// are disabled, an error wrapping transport.ErrCongested when no
// forwarder's budget could take it, and ErrNoForwarder when no
// forwarder can transmit.
func (l *Link) Broadcast(p []byte) error {
	if l.cfg.BroadcastFreqHz == 0 {
		return fmt.Errorf("semtech %s: broadcast disabled: %w", l.cfg.Name, transport.ErrNoBroadcast)
	}
	if l.isClosed() {
		return fmt.Errorf("semtech %s: %w", l.cfg.Name, transport.ErrClosed)
	}
	if len(p) == 0 || len(p) > l.cfg.PayloadLimit {
		return fmt.Errorf("semtech %s: %d bytes, MTU %d: %w", l.cfg.Name, len(p), l.cfg.PayloadLimit, transport.ErrTooLarge)
	}
	frame := radios.AppendHeader(make([]byte, 0, radios.HeaderLen+len(p)), radios.Header{Downlink: true, Network: l.cfg.NetworkID, Node: radios.NodeBroadcast})
	frame = append(frame, p...)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.broadcast(frame)
}

// MTU returns the largest MQTT-SN frame the link carries.
func (l *Link) MTU() int { return l.cfg.PayloadLimit }

// Name returns the link's label (Config.Name).
func (l *Link) Name() string { return l.cfg.Name }

// Close stops the link: the socket is closed, ReadFrom returns
// transport.ErrClosed and the goroutines end before Close returns.
func (l *Link) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.conn.Close()
		l.mu.Lock()
		for _, n := range l.nodes {
			if n.stop != nil {
				n.stop()
				n.stop = nil
			}
		}
		l.mu.Unlock()
	})
	l.wg.Wait()
	if err != nil {
		return fmt.Errorf("semtech %s: close: %w", l.cfg.Name, err)
	}
	return nil
}

// TxFailures delivers downlinks that were accepted but not delivered: a
// TX_ACK error from the forwarder, expiry after Config.FrameTTL, or the
// node's eviction. The channel is bounded (Config.FailureQueue);
// failures nobody reads are dropped and counted (Stats.FailuresDropped).
func (l *Link) TxFailures() <-chan transport.TxFailure { return l.failures }

// Stats returns the link counters.
func (l *Link) Stats() Stats { return l.stats.snapshot() }

// logGates rate-limit warnings caused by the network: the first of each
// kind in ten seconds is a warning, the rest debug lines.
type logGates struct {
	version, packet, json, data, refused, rxFull, evict logGate
}

type logGate struct{ next atomic.Int64 }

func (l *Link) warn(g *logGate, msg string, args ...any) {
	args = append([]any{"link", l.cfg.Name}, args...)
	now := time.Now().UnixNano()
	if n := g.next.Load(); now >= n && g.next.CompareAndSwap(n, now+int64(10*time.Second)) {
		l.log.Warn(msg, args...)
		return
	}
	l.log.Debug(msg, args...)
}
