// Package udp implements transport.Link over UDP, for IPv4 and IPv6.
//
// On Linux the link receives with recvmmsg into a ring of reused buffers and
// serves ReadFrom from that batch, so a busy link costs one system call per
// batch instead of one per datagram, and no allocation per datagram. It can
// also send many datagrams in one sendmmsg call (WriteBatch). Elsewhere, or
// with Config.DisableBatch, it falls back to plain reads and writes.
//
// For gateway discovery the link can join a multicast group (SEARCHGW from
// clients arrives there) and Broadcast sends to that group, from the link's
// unicast port, as MQTT-SN gateways do.
package udp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/transport"
)

// Defaults applied by Listen to zero Config fields.
const (
	DefaultMTU       = 1500
	DefaultBatchSize = 64
	// MaxMTU is the largest UDP payload over IPv4.
	MaxMTU = 65507
)

// Config configures a UDP link. The zero value of every field but Addr has
// a sensible default.
type Config struct {
	// Addr is the local address to listen on, such as ":1884",
	// "127.0.0.1:0" or "[::1]:0". An unspecified host listens on every
	// address, dual stack where the OS allows it.
	Addr string
	// Network is "udp" (default), "udp4" or "udp6".
	Network string
	// Name labels the link in logs and metrics; default "udp".
	Name string
	// MTU is the largest frame carried; larger datagrams are dropped and
	// counted. Default DefaultMTU.
	MTU int
	// MulticastGroup is the discovery group as ip:port, such as
	// "225.1.1.1:1883" (Paho's default). When set, the link joins the
	// group, receives SEARCHGW sent to it, and Broadcast sends to it.
	// A unicast address is accepted too: Broadcast then sends there, and
	// nothing is joined (useful in tests without multicast).
	MulticastGroup string
	// MulticastInterface names the interface used to join the group and
	// to send to it; empty lets the OS choose.
	MulticastInterface string
	// MulticastTTL is the hop limit of Broadcast frames; default 1.
	MulticastTTL int
	// BatchSize is how many datagrams one recvmmsg call may return.
	// Default DefaultBatchSize.
	BatchSize int
	// ReadBuffer and WriteBuffer set the socket buffer sizes in bytes
	// (SO_RCVBUF, SO_SNDBUF); 0 keeps the OS default.
	ReadBuffer  int
	WriteBuffer int
	// DisableBatch turns recvmmsg/sendmmsg off even where available.
	DisableBatch bool
}

// Datagram is one frame and its peer, for WriteBatch.
type Datagram struct {
	Data []byte
	Addr transport.Addr
}

// Stats are a link's counters.
type Stats struct {
	Received  uint64 // datagrams handed to ReadFrom callers
	Sent      uint64 // datagrams sent (WriteTo, WriteBatch, Broadcast)
	Oversize  uint64 // datagrams dropped because they exceed the MTU or the caller's buffer
	Batches   uint64 // recvmmsg calls that returned data
	SendBatch uint64 // sendmmsg calls
	Errors    uint64 // read or write errors other than close
}

// Link is a transport.Link over a UDP socket. ReadFrom must be called
// from one goroutine; the other methods are safe for concurrent use.
type Link struct {
	cfg   Config
	conn  *net.UDPConn
	mconn *net.UDPConn // multicast listener, when the group port differs
	group netip.AddrPort
	mtu   int
	name  string

	batch *batcher // nil when batching is off or unsupported
	wb    *sendBatcher

	// Frames read on the multicast socket wait here for ReadFrom.
	mmu     sync.Mutex
	mqueue  []mframe
	mfree   [][]byte
	mwaking atomic.Bool
	mdone   chan struct{}

	closed atomic.Bool

	received, sent, oversize, batches, sendBatches, errs atomic.Uint64
}

type mframe struct {
	buf  []byte
	from transport.Addr
}

var _ transport.Link = (*Link)(nil)

// maxMQueue bounds the multicast frames waiting for ReadFrom.
const maxMQueue = 32

// Listen opens a UDP link.
func Listen(cfg Config) (*Link, error) {
	if cfg.Network == "" {
		cfg.Network = "udp"
	}
	if cfg.Name == "" {
		cfg.Name = "udp"
	}
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU > MaxMTU {
		cfg.MTU = MaxMTU
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MulticastTTL <= 0 {
		cfg.MulticastTTL = 1
	}
	laddr, err := net.ResolveUDPAddr(cfg.Network, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("udp: resolve %q: %w", cfg.Addr, err)
	}
	conn, err := net.ListenUDP(cfg.Network, laddr)
	if err != nil {
		return nil, fmt.Errorf("udp: listen %q: %w", cfg.Addr, err)
	}
	l := &Link{cfg: cfg, conn: conn, mtu: cfg.MTU, name: cfg.Name}
	if err := l.setBuffers(conn); err != nil {
		conn.Close()
		return nil, err
	}
	if !cfg.DisableBatch {
		l.batch, err = newBatcher(conn, cfg.BatchSize, cfg.MTU)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("udp: batch receive: %w", err)
		}
		l.wb, err = newSendBatcher(conn, cfg.BatchSize)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("udp: batch send: %w", err)
		}
	}
	if cfg.MulticastGroup != "" {
		if err := l.setupMulticast(); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

func (l *Link) setBuffers(c *net.UDPConn) error {
	if l.cfg.ReadBuffer > 0 {
		if err := c.SetReadBuffer(l.cfg.ReadBuffer); err != nil {
			return fmt.Errorf("udp: set read buffer: %w", err)
		}
	}
	if l.cfg.WriteBuffer > 0 {
		if err := c.SetWriteBuffer(l.cfg.WriteBuffer); err != nil {
			return fmt.Errorf("udp: set write buffer: %w", err)
		}
	}
	return nil
}

// LocalAddr returns the unicast address the link listens on.
func (l *Link) LocalAddr() netip.AddrPort {
	return l.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Batching reports whether recvmmsg/sendmmsg are in use.
func (l *Link) Batching() bool { return l.batch != nil }

// MTU implements transport.Link.
func (l *Link) MTU() int { return l.mtu }

// Name implements transport.Link.
func (l *Link) Name() string { return l.name }

// Stats returns a snapshot of the link's counters.
func (l *Link) Stats() Stats {
	return Stats{
		Received:  l.received.Load(),
		Sent:      l.sent.Load(),
		Oversize:  l.oversize.Load(),
		Batches:   l.batches.Load(),
		SendBatch: l.sendBatches.Load(),
		Errors:    l.errs.Load(),
	}
}

// ReadFrom implements transport.Link. Datagrams larger than the MTU or
// than p are dropped and counted in Stats.Oversize.
func (l *Link) ReadFrom(p []byte) (int, transport.Addr, error) {
	for {
		if l.mwaking.Load() {
			if n, from, ok := l.takeMulticast(p); ok {
				return n, from, nil
			}
		}
		var (
			n    int
			from transport.Addr
			err  error
		)
		if l.batch != nil {
			n, from, err = l.readBatch(p)
		} else {
			n, from, err = l.readPlain(p)
		}
		if err == nil {
			if n < 0 { // dropped
				continue
			}
			l.received.Add(1)
			return n, from, nil
		}
		if l.closed.Load() || errors.Is(err, net.ErrClosed) {
			return 0, transport.Addr{}, fmt.Errorf("udp %s: read: %w", l.name, transport.ErrClosed)
		}
		if isTimeout(err) && l.mwaking.Load() {
			continue // woken to serve a multicast frame
		}
		l.errs.Add(1)
		return 0, transport.Addr{}, fmt.Errorf("udp %s: read: %w", l.name, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readPlain reads one datagram with a plain system call. n < 0 reports a
// dropped datagram.
func (l *Link) readPlain(p []byte) (int, transport.Addr, error) {
	n, _, flags, ap, err := l.conn.ReadMsgUDPAddrPort(p, nil)
	if err != nil {
		return 0, transport.Addr{}, err
	}
	if flags&msgTrunc != 0 || n > l.mtu || (n == len(p) && truncUnknown) {
		l.oversize.Add(1)
		return -1, transport.Addr{}, nil
	}
	return n, transport.AddrFromAddrPort(ap), nil
}

// readBatch serves one datagram from the current batch, refilling it with
// one recvmmsg call when it is empty. n < 0 reports a dropped datagram.
func (l *Link) readBatch(p []byte) (int, transport.Addr, error) {
	b := l.batch
	if b.next >= b.count {
		if err := b.fill(); err != nil {
			return 0, transport.Addr{}, err
		}
		l.batches.Add(1)
	}
	data, from, trunc := b.take()
	if trunc || len(data) > l.mtu || len(data) > len(p) {
		l.oversize.Add(1)
		return -1, transport.Addr{}, nil
	}
	return copy(p, data), from, nil
}

// WriteTo implements transport.Link.
func (l *Link) WriteTo(p []byte, to transport.Addr) error {
	if len(p) > l.mtu {
		return fmt.Errorf("udp %s: write %d bytes: %w", l.name, len(p), transport.ErrTooLarge)
	}
	ap, ok := to.AddrPort()
	if !ok {
		return fmt.Errorf("udp %s: write to %v: not a UDP address", l.name, to)
	}
	if _, err := l.conn.WriteToUDPAddrPort(p, ap); err != nil {
		return l.writeErr(err)
	}
	l.sent.Add(1)
	return nil
}

func (l *Link) writeErr(err error) error {
	if l.closed.Load() || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("udp %s: write: %w", l.name, transport.ErrClosed)
	}
	l.errs.Add(1)
	return fmt.Errorf("udp %s: write: %w", l.name, err)
}

// WriteBatch sends several datagrams, with as few sendmmsg calls as
// possible where batching is on, one by one otherwise. It returns how
// many were sent; a datagram larger than the MTU or with a non-UDP
// address stops the batch with an error.
func (l *Link) WriteBatch(ds []Datagram) (int, error) {
	for i := range ds {
		if len(ds[i].Data) > l.mtu {
			return 0, fmt.Errorf("udp %s: batch item %d: %w", l.name, i, transport.ErrTooLarge)
		}
	}
	if l.wb == nil {
		for i := range ds {
			if err := l.WriteTo(ds[i].Data, ds[i].Addr); err != nil {
				return i, err
			}
		}
		return len(ds), nil
	}
	n, calls, err := l.wb.send(ds)
	l.sent.Add(uint64(n))
	l.sendBatches.Add(uint64(calls))
	if err != nil {
		return n, l.writeErr(err)
	}
	return n, nil
}

// Broadcast implements transport.Link: it sends p to the multicast group,
// or returns transport.ErrNoBroadcast when no group is configured.
func (l *Link) Broadcast(p []byte) error {
	if !l.group.IsValid() {
		return fmt.Errorf("udp %s: %w", l.name, transport.ErrNoBroadcast)
	}
	if len(p) > l.mtu {
		return fmt.Errorf("udp %s: broadcast %d bytes: %w", l.name, len(p), transport.ErrTooLarge)
	}
	if _, err := l.conn.WriteToUDPAddrPort(p, l.group); err != nil {
		return l.writeErr(err)
	}
	l.sent.Add(1)
	return nil
}

// Close implements transport.Link. It unblocks ReadFrom.
func (l *Link) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	err := l.conn.Close()
	if l.mconn != nil {
		if merr := l.mconn.Close(); err == nil {
			err = merr
		}
		<-l.mdone
	}
	if err != nil {
		return fmt.Errorf("udp %s: close: %w", l.name, err)
	}
	return nil
}

// wakeReader makes a blocked ReadFrom return so it serves queued
// multicast frames: an expired deadline interrupts the read at once.
func (l *Link) wakeReader() {
	l.mwaking.Store(true)
	_ = l.conn.SetReadDeadline(time.Unix(1, 0))
}

// takeMulticast copies the oldest queued multicast frame into p.
func (l *Link) takeMulticast(p []byte) (int, transport.Addr, bool) {
	l.mmu.Lock()
	defer l.mmu.Unlock()
	if len(l.mqueue) == 0 {
		l.mwaking.Store(false)
		_ = l.conn.SetReadDeadline(time.Time{})
		if len(l.mqueue) == 0 {
			return 0, transport.Addr{}, false
		}
	}
	for len(l.mqueue) > 0 {
		f := l.mqueue[0]
		copy(l.mqueue, l.mqueue[1:])
		l.mqueue = l.mqueue[:len(l.mqueue)-1]
		l.mfree = append(l.mfree, f.buf[:cap(f.buf)])
		if len(f.buf) > len(p) {
			l.oversize.Add(1)
			continue
		}
		l.received.Add(1)
		return copy(p, f.buf), f.from, true
	}
	return 0, transport.Addr{}, false
}
