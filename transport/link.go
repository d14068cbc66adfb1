// Package transport defines the datagram links that carry MQTT-SN frames
// between sensors and the gateway. Concrete links live in subpackages:
// transport/udp, transport/dtls and transport/serial.
package transport

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"time"
)

// Errors a Link may return. Callers test them with errors.Is.
var (
	// ErrNoBroadcast is returned by Broadcast on links that cannot broadcast.
	ErrNoBroadcast = errors.New("transport: link cannot broadcast")
	// ErrCongested is returned by WriteTo when a metered link has no budget
	// (airtime, duty cycle, queue) for the frame. The gateway answers the
	// client with "rejected: congestion" where the protocol allows it.
	ErrCongested = errors.New("transport: link congested")
	// ErrTooLarge is returned by WriteTo when the frame exceeds the link MTU.
	ErrTooLarge = errors.New("transport: frame exceeds link MTU")
	// ErrClosed is returned by operations on a closed link.
	ErrClosed = errors.New("transport: link closed")
)

// addrCap is the largest link address an Addr holds: an IPv6 address,
// a port and a 4-byte zone/association index, or a 64-bit radio address
// plus a forwarder node id, all fit.
const addrCap = 22

// Addr is the address of one peer on one link: a UDP ip:port, a DTLS
// association, or a radio node address. It is a small comparable value, so
// it can key maps and be passed without allocation. The link that produced
// an Addr is the one that knows how to interpret it.
type Addr struct {
	b  [addrCap]byte
	n  uint8
	ip bool // built by AddrFromAddrPort: b holds an IP address and a port
}

// AddrFromBytes returns an Addr holding b. It reports false when b is
// empty or longer than the Addr capacity.
func AddrFromBytes(b []byte) (Addr, bool) {
	var a Addr
	if len(b) == 0 || len(b) > addrCap {
		return a, false
	}
	a.n = uint8(copy(a.b[:], b))
	return a, true
}

// AddrFromAddrPort returns the Addr for a UDP endpoint. IPv4-mapped IPv6
// addresses are unmapped first, so one endpoint always has one Addr.
func AddrFromAddrPort(ap netip.AddrPort) Addr {
	var a Addr
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		v := ip.As4()
		copy(a.b[:], v[:])
		a.b[4], a.b[5] = byte(ap.Port()>>8), byte(ap.Port())
		a.n, a.ip = 6, true
		return a
	}
	v := ip.As16()
	copy(a.b[:], v[:])
	a.b[16], a.b[17] = byte(ap.Port()>>8), byte(ap.Port())
	a.n, a.ip = 18, true
	return a
}

// AddrPort returns the UDP endpoint held by a, if a was built by
// AddrFromAddrPort.
func (a Addr) AddrPort() (netip.AddrPort, bool) {
	if !a.ip {
		return netip.AddrPort{}, false
	}
	switch a.n {
	case 6:
		ip := netip.AddrFrom4([4]byte(a.b[:4]))
		return netip.AddrPortFrom(ip, uint16(a.b[4])<<8|uint16(a.b[5])), true
	case 18:
		ip := netip.AddrFrom16([16]byte(a.b[:16]))
		return netip.AddrPortFrom(ip, uint16(a.b[16])<<8|uint16(a.b[17])), true
	}
	return netip.AddrPort{}, false
}

// Bytes returns the raw address bytes. The slice aliases a copy of a.
func (a Addr) Bytes() []byte { return a.b[:a.n] }

// Len returns the number of address bytes; 0 means the zero Addr.
func (a Addr) Len() int { return int(a.n) }

// IsZero reports whether a is the zero Addr.
func (a Addr) IsZero() bool { return a.n == 0 }

// String formats a UDP endpoint as ip:port and any other address as hex.
func (a Addr) String() string {
	if ap, ok := a.AddrPort(); ok {
		return ap.String()
	}
	return hex.EncodeToString(a.b[:a.n])
}

// Link moves datagrams (one MQTT-SN frame each) between the gateway and
// its peers. ReadFrom is called from one goroutine; WriteTo and Broadcast
// may be called from several at once. Implementations reuse buffers: the
// caller owns p in both directions and the link never retains it.
type Link interface {
	// ReadFrom blocks until a frame arrives, copies it into p and returns
	// its length and sender. A frame longer than p is truncated and
	// reported with n == len(p) and a nil error only if it fits exactly;
	// otherwise the link drops it and counts it. After Close it returns
	// an error wrapping ErrClosed.
	ReadFrom(p []byte) (n int, from Addr, err error)
	// WriteTo sends one frame to a peer.
	WriteTo(p []byte, to Addr) error
	// Broadcast sends one frame to every listening peer (UDP multicast,
	// radio broadcast), or returns ErrNoBroadcast.
	Broadcast(p []byte) error
	// MTU is the largest frame the link carries.
	MTU() int
	// Name is a short label for logs and metrics, such as "udp" or "xbee".
	Name() string
	// Close stops the link and unblocks ReadFrom.
	Close() error
}

// Priority orders downlinks on metered links. Lower values go first.
type Priority uint8

// Downlink priorities, highest first, as DESIGN.md orders them.
const (
	PriorityAck       Priority = iota // CONNACK, PUBACK, PUBREC/REL/COMP, SUBACK, PINGRESP ...
	PriorityDelivery                  // PUBLISH to a client
	PriorityRegister                  // gateway-initiated REGISTER
	PriorityAdvertise                 // ADVERTISE, GWINFO
)

// PriorityWriter is implemented by metered links (LoRa) that schedule
// downlinks by priority against an airtime budget. The gateway uses it
// when present and falls back to WriteTo otherwise.
type PriorityWriter interface {
	WriteToPriority(p []byte, to Addr, prio Priority) error
}

// Identifier is implemented by links that authenticate peers (DTLS). It
// returns the authenticated identity (PSK identity or certificate subject)
// bound to a peer address, so the gateway can check which client IDs that
// peer may use.
type Identifier interface {
	PeerIdentity(a Addr) (identity string, ok bool)
}

// TxFailure reports that a frame the link accepted was not delivered to
// its peer (an XBee Transmit Status failure, a concentrator TX_ACK error,
// a modem radio error). The gateway treats it like a lost frame and
// retransmits or gives up on the client.
type TxFailure struct {
	To  Addr
	Err error
}

// DeliveryNotifier is implemented by links that learn about delivery
// failures after WriteTo returned.
type DeliveryNotifier interface {
	TxFailures() <-chan TxFailure
}

// RetryAdvisor is implemented by slow links whose retry interval must
// grow with the airtime of a frame of n bytes.
type RetryAdvisor interface {
	RetryInterval(n int) time.Duration
}
