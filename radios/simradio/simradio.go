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
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// Link is the gateway side of a simulated medium as a transport.Link and
// transport.PriorityWriter. Addresses are 2-byte big-endian node IDs.
type Link struct {
	m    *radios.SimMedium
	ep   *radios.SimEndpoint
	name string
}

var (
	_ transport.Link           = (*Link)(nil)
	_ transport.PriorityWriter = (*Link)(nil)
)

// New returns the Link over m's gateway endpoint.
func New(m *radios.SimMedium) *Link {
	return &Link{m: m, ep: m.Gateway(), name: "sim"}
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
	return mapErr(l.ep.Send(id, p, radios.Priority(prio)))
}

// Broadcast sends a frame to every node at ADVERTISE priority.
func (l *Link) Broadcast(p []byte) error {
	return mapErr(l.ep.Send(radios.NodeBroadcast, p, radios.PriorityAdvertise))
}

// MTU returns the medium's MTU.
func (l *Link) MTU() int { return l.m.Config().MTU }

// Name returns "sim".
func (l *Link) Name() string { return l.name }

// Close closes the gateway endpoint; ReadFrom returns ErrClosed.
func (l *Link) Close() error {
	l.ep.Close()
	return nil
}

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
