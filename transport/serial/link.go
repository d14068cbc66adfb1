// Package serial is a transport.Link over a serial port (go.bug.st/serial)
// speaking one of the radio framings of package radios:
//
//   - xbee: Digi XBee API mode (AP=1/2). Addr = the 8-byte 64-bit source
//     address; Broadcast goes to 0x000000000000FFFF. Unicasts carry a
//     frame ID; failed Transmit Status frames are counted and reported on
//     TxFailures so the gateway can retransmit.
//   - loralink: Paho LoRaLink modems. Addr = the 1-byte node address; RSSI
//     and SNR of every frame are kept per address (Signal). A separate TX
//     modem may be given (Config.TxDevice).
//   - slip, cobs: a bridge MCU. Every frame comes from and goes to one
//     fixed address, BridgeAddr; forwarder-encapsulated frames (0xFE)
//     pass through for the gateway to decapsulate.
//   - rn2483, rak: LoRa P2P modems driven by ASCII commands. Addr = the
//     2-byte node ID of the raw-LoRa address header (radios package doc).
//     Every downlink is charged to a duty-cycle budget per priority
//     (transport.PriorityWriter); when it is spent, writes fail with
//     transport.ErrCongested.
//
// A device that fails (read error, unplugged, a modem that stops
// answering) is logged with its cause and reopened with exponential
// back-off; ReadFrom keeps blocking meanwhile and only Close ends the
// link. Every queue fed from the device is bounded by Config.
package serial

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// BridgeAddr returns the one address of a slip or cobs link: the bridge
// MCU at the other end of the wire ("serial" in ASCII).
func BridgeAddr() transport.Addr {
	a, _ := transport.AddrFromBytes([]byte("serial"))
	return a
}

// XBeeAddr returns the Addr of a 64-bit XBee address.
func XBeeAddr(addr64 uint64) transport.Addr {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], addr64)
	a, _ := transport.AddrFromBytes(b[:])
	return a
}

// LoRaLinkAddr returns the Addr of a LoRaLink node address.
func LoRaLinkAddr(node uint8) transport.Addr {
	a, _ := transport.AddrFromBytes([]byte{node})
	return a
}

// NodeAddr returns the Addr of a raw-LoRa node ID (rn2483, rak).
func NodeAddr(node uint16) transport.Addr {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], node)
	a, _ := transport.AddrFromBytes(b[:])
	return a
}

// Signal is the last reception quality of one peer.
type Signal struct {
	RSSI int // dBm
	SNR  int // dB
	At   time.Time
}

// TxFailure reports a frame the radio could not deliver (XBee Transmit
// Status, LoRaLink NFC/TOT or no answer, an ASCII modem's radio error).
// It is transport.TxFailure, so the link is a transport.DeliveryNotifier.
type TxFailure = transport.TxFailure

// Stats are the link counters.
type Stats struct {
	RxFrames    uint64 // frames handed to ReadFrom
	RxDropped   uint64 // frames dropped at a full receive queue
	RxTooLong   uint64 // frames dropped because ReadFrom's buffer was short
	RxRejected  uint64 // frames not for us: LoRaWAN, other network, bad header
	RxIgnored   uint64 // device frames of no interest (modem status, unknown types)
	TxFrames    uint64 // frames written to the device
	TxFailures  uint64 // delivery failures reported by the radio
	TxCongested uint64 // writes refused by the budget or a full queue
	Opens       uint64 // successful device opens (1 + reopens)
	Failures    uint64 // device failures (each followed by a reopen)
	Decoder     radios.DecoderStats
}

type counters struct {
	rxFrames, rxDropped, rxTooLong, rxRejected, rxIgnored atomic.Uint64
	txFrames, txFailures, txCongested, opens, failures    atomic.Uint64
}

type rxFrame struct {
	from transport.Addr
	buf  *[]byte
}

// Link is a serial transport.Link. Create it with Open.
type Link struct {
	cfg   Config
	log   *slog.Logger
	mtu   int
	stats counters

	rx       chan rxFrame
	pool     sync.Pool
	failures chan TxFailure

	sigMu   sync.Mutex
	signals map[transport.Addr]Signal

	proto  protocol
	budget *radios.Budget // rn2483, rak

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	runners   []*portRunner
}

// protocol is one framer kind's half of the link.
type protocol interface {
	writeTo(p []byte, to transport.Addr, prio radios.Priority) error
	broadcast(p []byte) error
	decoderStats() radios.DecoderStats
}

var (
	_ transport.Link           = (*Link)(nil)
	_ transport.PriorityWriter = (*Link)(nil)
)

// Open validates cfg and starts the link. The device need not exist
// yet: the link keeps trying to open it (with back-off), logging each
// failure, so a modem plugged in later is picked up. Configuration
// errors are returned at once.
func Open(cfg Config) (*Link, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Link{
		cfg:      cfg,
		log:      cfg.Logger,
		mtu:      cfg.PayloadLimit,
		rx:       make(chan rxFrame, cfg.RxQueue),
		failures: make(chan TxFailure, cfg.FailureQueue),
		signals:  make(map[transport.Addr]Signal),
		done:     make(chan struct{}),
	}
	l.pool.New = func() any { b := make([]byte, 0, cfg.MaxFrame); return &b }
	switch cfg.Kind {
	case KindXBee:
		l.proto = newXBeeProto(l)
	case KindLoRaLink:
		l.proto = newLoRaLinkProto(l)
	case KindSLIP, KindCOBS:
		l.proto = newBridgeProto(l)
	case KindRN2483, KindRAK:
		p, err := newModemProto(l)
		if err != nil {
			return nil, err
		}
		l.proto = p
	}
	for _, r := range l.runners {
		l.wg.Add(1)
		go r.run()
	}
	return l, nil
}

func (l *Link) addRunner(device string, baud int, h portHandler) *portRunner {
	r := newPortRunner(l, device, baud, h)
	l.runners = append(l.runners, r)
	return r
}

func (l *Link) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *Link) portEvent(e PortEvent) {
	if l.cfg.OnPortState != nil {
		l.cfg.OnPortState(e)
	}
}

// deliver queues a received frame for ReadFrom (copied); it drops and
// counts the frame when the queue is full.
func (l *Link) deliver(from transport.Addr, frame []byte) {
	if len(frame) > l.cfg.MaxFrame {
		l.stats.rxDropped.Add(1)
		return
	}
	bp := l.pool.Get().(*[]byte)
	*bp = append((*bp)[:0], frame...)
	select {
	case l.rx <- rxFrame{from: from, buf: bp}:
	default:
		l.pool.Put(bp)
		l.stats.rxDropped.Add(1)
		l.log.Warn("serial receive queue full, frame dropped", "link", l.cfg.Name, "from", from)
	}
}

// recordSignal stores the reception quality of a peer (bounded table).
func (l *Link) recordSignal(a transport.Addr, rssi, snr int) {
	l.sigMu.Lock()
	defer l.sigMu.Unlock()
	if _, ok := l.signals[a]; !ok && len(l.signals) >= l.cfg.MaxNodes {
		for k := range l.signals { // evict an arbitrary entry
			delete(l.signals, k)
			break
		}
	}
	l.signals[a] = Signal{RSSI: rssi, SNR: snr, At: l.cfg.Now()}
}

// reportFailure counts a delivery failure and offers it on TxFailures.
func (l *Link) reportFailure(to transport.Addr, err error) {
	l.stats.txFailures.Add(1)
	l.log.Warn("radio delivery failed", "link", l.cfg.Name, "to", to, "cause", err)
	select {
	case l.failures <- TxFailure{To: to, Err: err}:
	default:
	}
}

// ReadFrom blocks until a frame arrives (across device reopens) or the
// link is closed.
func (l *Link) ReadFrom(p []byte) (int, transport.Addr, error) {
	for {
		select {
		case f := <-l.rx:
			b := *f.buf
			if len(b) > len(p) {
				l.pool.Put(f.buf)
				l.stats.rxTooLong.Add(1)
				continue
			}
			n := copy(p, b)
			l.pool.Put(f.buf)
			l.stats.rxFrames.Add(1)
			return n, f.from, nil
		case <-l.done:
			return 0, transport.Addr{}, fmt.Errorf("serial %s: %w", l.cfg.Name, transport.ErrClosed)
		}
	}
}

// WriteTo sends a frame to one peer (at delivery priority on metered
// links).
func (l *Link) WriteTo(p []byte, to transport.Addr) error {
	return l.WriteToPriority(p, to, transport.PriorityDelivery)
}

// WriteToPriority sends a frame to one peer. On rn2483/rak links the
// frame is charged to the airtime budget at prio and queued for the
// modem; the error is transport.ErrCongested when the budget or the queue
// is full. Other kinds ignore prio.
func (l *Link) WriteToPriority(p []byte, to transport.Addr, prio transport.Priority) error {
	if l.isClosed() {
		return fmt.Errorf("serial %s: %w", l.cfg.Name, transport.ErrClosed)
	}
	if len(p) == 0 || len(p) > l.mtu {
		return fmt.Errorf("serial %s: %d bytes, MTU %d: %w", l.cfg.Name, len(p), l.mtu, transport.ErrTooLarge)
	}
	return l.proto.writeTo(p, to, radios.Priority(prio))
}

// Broadcast sends a frame to every node (ADVERTISE priority).
func (l *Link) Broadcast(p []byte) error {
	if l.isClosed() {
		return fmt.Errorf("serial %s: %w", l.cfg.Name, transport.ErrClosed)
	}
	if len(p) == 0 || len(p) > l.mtu {
		return fmt.Errorf("serial %s: %d bytes, MTU %d: %w", l.cfg.Name, len(p), l.mtu, transport.ErrTooLarge)
	}
	return l.proto.broadcast(p)
}

// MTU returns the largest MQTT-SN frame the link carries.
func (l *Link) MTU() int { return l.mtu }

// Name returns the link's label (Config.Name, default the kind).
func (l *Link) Name() string { return l.cfg.Name }

// Close stops the link: the devices are closed, ReadFrom returns
// ErrClosed and the goroutines end before Close returns.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		for _, r := range l.runners {
			r.shutdown()
		}
	})
	l.wg.Wait()
	return nil
}

// Signal returns the last RSSI/SNR heard from a (loralink, rn2483, rak).
func (l *Link) Signal(a transport.Addr) (Signal, bool) {
	l.sigMu.Lock()
	defer l.sigMu.Unlock()
	s, ok := l.signals[a]
	return s, ok
}

// Signals returns a copy of the whole signal table, for metrics.
func (l *Link) Signals() map[transport.Addr]Signal {
	l.sigMu.Lock()
	defer l.sigMu.Unlock()
	m := make(map[transport.Addr]Signal, len(l.signals))
	for k, v := range l.signals {
		m[k] = v
	}
	return m
}

// TxFailures delivers radio delivery failures, so the gateway can
// retransmit early or mark a client unreachable. The channel is bounded
// (Config.FailureQueue); failures nobody reads are dropped but counted in
// Stats.TxFailures.
func (l *Link) TxFailures() <-chan TxFailure { return l.failures }

// Budget returns the duty-cycle ledger of the link's sub-band (rn2483,
// rak; nil otherwise): Used, Remaining and Limit are the metrics.
func (l *Link) Budget() *radios.Budget { return l.budget }

// Airtime returns the time on air of an MQTT-SN frame of n bytes
// (header included) on rn2483/rak links; 0 on others.
func (l *Link) Airtime(n int) time.Duration {
	if l.budget == nil {
		return 0
	}
	return l.cfg.LoRa.Airtime(n + radios.HeaderLen)
}

// RetryInterval suggests the gateway's retransmission timer for a
// request of n bytes: it grows with airtime and the duty cycle (see
// radios.Budget.RetryInterval). Without a budget it returns 0: use the
// gateway default.
func (l *Link) RetryInterval(n int) time.Duration {
	if l.budget == nil {
		return 0
	}
	return l.budget.RetryInterval(l.Airtime(n), l.cfg.Now())
}

// SharedAirtime reports true: the link is one radio (or bridge) with one
// transmit queue and, on rn2483/rak, one airtime budget, so a write
// refused with transport.ErrCongested means every peer must wait. The
// gateway then holds deliveries and answers "congestion" link-wide.
func (l *Link) SharedAirtime() bool { return true }

// Stats returns the link counters.
func (l *Link) Stats() Stats {
	return Stats{
		RxFrames:    l.stats.rxFrames.Load(),
		RxDropped:   l.stats.rxDropped.Load(),
		RxTooLong:   l.stats.rxTooLong.Load(),
		RxRejected:  l.stats.rxRejected.Load(),
		RxIgnored:   l.stats.rxIgnored.Load(),
		TxFrames:    l.stats.txFrames.Load(),
		TxFailures:  l.stats.txFailures.Load(),
		TxCongested: l.stats.txCongested.Load(),
		Opens:       l.stats.opens.Load(),
		Failures:    l.stats.failures.Load(),
		Decoder:     l.proto.decoderStats(),
	}
}

// The serial link reports delivery failures to the gateway and advises
// its retransmission timers.
var (
	_ transport.DeliveryNotifier = (*Link)(nil)
	_ transport.RetryAdvisor     = (*Link)(nil)
)
