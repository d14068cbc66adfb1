// Package simradio adapts the simulated radio medium of package radios to
// transport.Link, so the gateway can be tested and benchmarked over a
// lossy, slow, duty-cycled radio without hardware. The core radios
// package stays free of transport imports; this test-support package
// bridges the two.
//
//	m := radios.NewSimMedium(radios.SimConfig{LossRate: 0.1, Seed: 1, MTU: 64})
//	link := simradio.New(m)          // the gateway side, a transport.Link
//	node, _ := m.Node(7)             // a sensor
//	node.Send(radios.SimGateway, frame, radios.PriorityDelivery)
//	n, from, _ := link.ReadFrom(buf) // from == simradio.Addr(7)
package simradio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// Link is the gateway side of a simulated medium as a transport.Link, a
// transport.PriorityWriter, a transport.RetryAdvisor (retry intervals grow
// with airtime and the duty cycle, as on a serial LoRa modem) and a
// transport.DeliveryNotifier (with Options.ReportLoss, unicasts lost on
// the medium are reported, as an XBee reports a failed Transmit Status).
// Addresses are 2-byte big-endian node IDs.
type Link struct {
	m        *radios.SimMedium
	ep       *radios.SimEndpoint
	name     string
	report   bool
	failures chan transport.TxFailure
	unread   atomic.Uint64
}

var (
	_ transport.Link             = (*Link)(nil)
	_ transport.PriorityWriter   = (*Link)(nil)
	_ transport.RetryAdvisor     = (*Link)(nil)
	_ transport.DeliveryNotifier = (*Link)(nil)
)

// Options tune a Link. The zero value is New's behaviour.
type Options struct {
	// Name labels the link; default "sim".
	Name string
	// ReportLoss reports every unicast the medium loses on TxFailures.
	ReportLoss bool
	// FailureQueue bounds the unread TxFailures; default 64. Failures
	// beyond it are dropped and counted (DroppedFailures).
	FailureQueue int
}

// New returns the Link over m's gateway endpoint.
func New(m *radios.SimMedium) *Link { return NewWithOptions(m, Options{}) }

// NewWithOptions returns the Link over m's gateway endpoint, tuned by o.
func NewWithOptions(m *radios.SimMedium, o Options) *Link {
	if o.Name == "" {
		o.Name = "sim"
	}
	if o.FailureQueue <= 0 {
		o.FailureQueue = 64
	}
	return &Link{m: m, ep: m.Gateway(), name: o.Name, report: o.ReportLoss,
		failures: make(chan transport.TxFailure, o.FailureQueue)}
}

// Addr returns the transport address of simulated node id.
func Addr(id uint16) transport.Addr {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], id)
	a, _ := transport.AddrFromBytes(b[:])
	return a
}

// NodeID returns the node ID held by a, if a is a simulated address.
func NodeID(a transport.Addr) (uint16, bool) {
	if a.Len() != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(a.Bytes()), true
}

// Medium returns the simulated medium.
func (l *Link) Medium() *radios.SimMedium { return l.m }

// ReadFrom blocks until a node's frame arrives.
func (l *Link) ReadFrom(p []byte) (int, transport.Addr, error) {
	f, err := l.ep.Recv()
	if err != nil {
		return 0, transport.Addr{}, fmt.Errorf("simradio: read: %w", transport.ErrClosed)
	}
	return copy(p, f.Data), Addr(f.From), nil
}

// WriteTo sends a frame to one node at delivery priority.
func (l *Link) WriteTo(p []byte, to transport.Addr) error {
	return l.WriteToPriority(p, to, transport.PriorityDelivery)
}

// WriteToPriority sends a frame to one node, charged to the gateway's
// duty-cycle budget at priority prio.
func (l *Link) WriteToPriority(p []byte, to transport.Addr, prio transport.Priority) error {
	id, ok := NodeID(to)
	if !ok || id == radios.SimGateway {
		return fmt.Errorf("simradio: bad node address %s", to)
	}
	if !l.report {
		return mapErr(l.ep.Send(id, p, radios.Priority(prio)))
	}
	acked, err := l.ep.SendAcked(id, p, radios.Priority(prio))
	if err == nil && !acked {
		select {
		case l.failures <- transport.TxFailure{To: to, Err: ErrLost}:
		default:
			l.unread.Add(1)
		}
	}
	return mapErr(err)
}

// ErrLost is the TxFailure.Err of a unicast lost on the medium.
var ErrLost = errors.New("simradio: frame lost on the medium")

// TxFailures delivers the unicasts lost on the medium when the Link was
// made with Options.ReportLoss (never otherwise).
func (l *Link) TxFailures() <-chan transport.TxFailure { return l.failures }

// DroppedFailures counts the failures dropped because nobody read
// TxFailures.
func (l *Link) DroppedFailures() uint64 { return l.unread.Load() }

// RetryInterval suggests a retransmission timer for an n-byte request:
// the duty-cycle ledger's advice (radios.Budget.RetryInterval) when the
// medium has a duty cycle, else 0 (the gateway's own T_RETRY applies).
func (l *Link) RetryInterval(n int) time.Duration {
	b := l.ep.Budget()
	if b == nil {
		return 0
	}
	return b.RetryInterval(l.ep.Airtime(n), l.m.Config().Now())
}

// Broadcast sends a frame to every node at ADVERTISE priority.
func (l *Link) Broadcast(p []byte) error {
	return mapErr(l.ep.Send(radios.NodeBroadcast, p, radios.PriorityAdvertise))
}

// MTU returns the medium's MTU.
func (l *Link) MTU() int { return l.m.Config().MTU }

// Name returns the link's label (Options.Name, default "sim").
func (l *Link) Name() string { return l.name }

// Close closes the gateway endpoint; ReadFrom returns ErrClosed.
func (l *Link) Close() error {
	l.ep.Close()
	return nil
}

// SharedAirtime reports true: every downlink is charged to the gateway
// endpoint's one duty-cycle budget, so a refusal concerns every node.
func (l *Link) SharedAirtime() bool { return true }

// Airtime returns the time on air of an n-byte frame.
func (l *Link) Airtime(n int) time.Duration { return l.ep.Airtime(n) }

// Budget returns the gateway's duty-cycle ledger (nil without one).
func (l *Link) Budget() *radios.Budget { return l.ep.Budget() }

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, radios.ErrFrameTooLarge):
		return fmt.Errorf("simradio: %w: %w", transport.ErrTooLarge, err)
	case errors.Is(err, radios.ErrDutyCycle), errors.Is(err, radios.ErrDwellTime):
		return fmt.Errorf("simradio: %w: %w", transport.ErrCongested, err)
	case errors.Is(err, radios.ErrSimClosed):
		return fmt.Errorf("simradio: %w", transport.ErrClosed)
	}
	return fmt.Errorf("simradio: %w", err)
}
