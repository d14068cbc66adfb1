package dtls

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// multiConn is a client net.PacketConn that can move to a new local port
// while keeping its old sockets open, and tells which socket each received
// datagram arrived on: a reply sent to an old port is seen, not lost.
type multiConn struct {
	t      *testing.T
	in     chan tagged
	done   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup

	mu    sync.Mutex
	socks []*net.UDPConn
	rdl   time.Time
	sent  []byte // last datagram written
	hold  bool   // gather writes into one datagram until flush
	held  []byte

	lastSock atomic.Int32 // socket of the last datagram returned by ReadFrom
}

type tagged struct {
	b    []byte
	from net.Addr
	sock int
}

func newMultiConn(t *testing.T) *multiConn {
	m := &multiConn{t: t, in: make(chan tagged, 64), done: make(chan struct{})}
	m.rebind()
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// rebind opens a new socket and writes from it from now on; the old ones
// keep receiving.
func (m *multiConn) rebind() int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	m.socks = append(m.socks, c)
	n := len(m.socks) - 1
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			buf := make([]byte, 4096)
			k, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case m.in <- tagged{b: buf[:k], from: from, sock: n}:
			case <-m.done:
				return
			}
		}
	}()
	return n
}

func (m *multiConn) cur() (*net.UDPConn, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.socks[len(m.socks)-1], len(m.socks) - 1
}

// sock returns socket i.
func (m *multiConn) sock(i int) *net.UDPConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.socks[i]
}

// lastSent returns a copy of the last datagram written.
func (m *multiConn) lastSent() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.sent)
}

func (m *multiConn) ReadFrom(b []byte) (int, net.Addr, error) {
	m.mu.Lock()
	dl := m.rdl
	m.mu.Unlock()
	var expire <-chan time.Time
	if !dl.IsZero() {
		tm := time.NewTimer(time.Until(dl))
		defer tm.Stop()
		expire = tm.C
	}
	select {
	case d := <-m.in:
		m.lastSock.Store(int32(d.sock))
		return copy(b, d.b), d.from, nil
	case <-m.done:
		return 0, nil, net.ErrClosed
	case <-expire:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (m *multiConn) WriteTo(b []byte, a net.Addr) (int, error) {
	c, _ := m.cur()
	m.mu.Lock()
	m.sent = bytes.Clone(b)
	if m.hold {
		m.held = append(m.held, b...)
		m.mu.Unlock()
		return len(b), nil
	}
	m.mu.Unlock()
	return c.WriteTo(b, a)
}

// gather makes later writes accumulate until flush sends them as one
// datagram, as a client that packs records together does.
func (m *multiConn) gather() {
	m.mu.Lock()
	m.hold = true
	m.mu.Unlock()
}

// flush sends what gather accumulated, from the current socket.
func (m *multiConn) flush(to net.Addr) {
	c, _ := m.cur()
	m.mu.Lock()
	d := m.held
	m.hold, m.held = false, nil
	m.mu.Unlock()
	if _, err := c.WriteTo(d, to); err != nil {
		m.t.Fatal(err)
	}
}

func (m *multiConn) Close() error {
	m.closed.Do(func() {
		close(m.done)
		m.mu.Lock()
		for _, c := range m.socks {
			_ = c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
	return nil
}

func (m *multiConn) LocalAddr() net.Addr {
	c, _ := m.cur()
	return c.LocalAddr()
}

func (m *multiConn) SetDeadline(t time.Time) error { return m.SetReadDeadline(t) }

func (m *multiConn) SetReadDeadline(t time.Time) error {
	m.mu.Lock()
	m.rdl = t
	m.mu.Unlock()
	return nil
}

func (m *multiConn) SetWriteDeadline(time.Time) error { return nil }

// readFrame calls ReadFrom directly, so a reply can follow a frame with
// as little delay as the listener allows.
func readFrame(t *testing.T, l *Listener) rxFrame {
	t.Helper()
	buf := make([]byte, 2048)
	n, from, err := l.ReadFrom(buf)
	if err != nil {
		t.Fatalf("listener read: %v", err)
	}
	return rxFrame{b: bytes.Clone(buf[:n]), from: from}
}

// The reply to the first record a client with a Connection ID sends from
// a new port goes to the new port, however soon it is written: the
// listener returns that record only once pion has moved the peer's
// address.
func TestCIDReplyAfterRebindingGoesToNewPort(t *testing.T) {
	ctx := testCtx(t)
	l, _ := startListener(t, pskConfig())
	mc := newMultiConn(t)
	cc := pskClient()
	cc.ConnectionID = true
	c, err := Client(ctx, mc, udpAddr(l), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Write(pingreq); err != nil {
		t.Fatal(err)
	}
	peer := readFrame(t, l).from
	if info, _ := l.Peer(peer); !info.ConnectionID {
		t.Fatalf("no Connection ID: %+v", info)
	}

	const rounds = 50
	for i := range rounds {
		sock := mc.rebind()
		port := mc.sock(sock).LocalAddr().(*net.UDPAddr).AddrPort().Port()
		msg := fmt.Appendf(nil, "after-%d", i)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		f := readFrame(t, l)
		if f.from != peer || !bytes.Equal(f.b, msg) {
			t.Fatalf("round %d: frame %q from %s, want %q from %s", i, f.b, f.from, msg, peer)
		}
		reply := fmt.Appendf(nil, "reply-%d", i)
		if err := l.WriteTo(reply, peer); err != nil {
			t.Fatal(err)
		}
		if got := readConn(ctx, t, c); !bytes.Equal(got, reply) {
			t.Fatalf("round %d: client got %q, want %q", i, got, reply)
		}
		if got := int(mc.lastSock.Load()); got != sock {
			t.Fatalf("round %d: reply arrived on socket %d (an old port), want %d", i, got, sock)
		}
		if info, _ := l.Peer(peer); info.Remote.Port() != port {
			t.Fatalf("round %d: peer remote %s, want port %d", i, info.Remote, port)
		}
	}
	if st := l.Stats(); st.HandshakesOK != 1 || st.Associations != 1 || st.DropUnknownSource != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Datagrams from another address that carry the association's Connection
// ID but fail authentication (a replayed record, a forged one) do not move
// it: replies keep going to the client's real port.
func TestCIDSpoofedRecordsDoNotMovePeer(t *testing.T) {
	ctx := testCtx(t)
	l, _ := startListener(t, pskConfig())
	mc := newMultiConn(t)
	cc := pskClient()
	cc.ConnectionID = true
	c, err := Client(ctx, mc, udpAddr(l), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := mc.sock(0).LocalAddr().(*net.UDPAddr).AddrPort().Port()

	if _, err := c.Write(pingreq); err != nil {
		t.Fatal(err)
	}
	peer := readFrame(t, l).from
	genuine := mc.lastSent()
	if _, ok := recordCID(genuine, l.cfg.cidLen); !ok {
		t.Fatalf("client record %x carries no Connection ID", genuine)
	}

	spoof, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer spoof.Close()
	forged := bytes.Clone(genuine)
	copy(forged[5:11], []byte{0, 0, 0, 0, 0x10, 0}) // a later sequence number
	forged[len(forged)-1] ^= 0xff                   // and a broken tag
	for _, d := range [][]byte{genuine, forged} {
		if _, err := spoof.WriteTo(d, udpAddr(l)); err != nil {
			t.Fatal(err)
		}
	}

	// The client's next record follows the spoofed ones through the same
	// queue, so pion has judged them when it comes out.
	if _, err := c.Write([]byte("real")); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, l); string(f.b) != "real" || f.from != peer {
		t.Fatalf("frame %q from %s", f.b, f.from)
	}
	if err := l.WriteTo(pingresp, peer); err != nil {
		t.Fatal(err)
	}
	if got := readConn(ctx, t, c); !bytes.Equal(got, pingresp) {
		t.Fatalf("client got %x", got)
	}
	if got := mc.lastSock.Load(); got != 0 {
		t.Fatalf("reply arrived on socket %d", got)
	}
	if info, _ := l.Peer(peer); info.Remote.Port() != port {
		t.Fatalf("peer remote %s, want port %d", info.Remote, port)
	}
	if st := l.Stats(); st.FramesIn != 2 || st.Associations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A datagram packing several records, sent from a new port, yields every
// frame, in order, and moves the peer before the first is returned.
func TestCIDPackedRecordsAfterRebinding(t *testing.T) {
	ctx := testCtx(t)
	l, _ := startListener(t, pskConfig())
	mc := newMultiConn(t)
	cc := pskClient()
	cc.ConnectionID = true
	c, err := Client(ctx, mc, udpAddr(l), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pingreq); err != nil {
		t.Fatal(err)
	}
	peer := readFrame(t, l).from

	for round := range 20 {
		sock := mc.rebind()
		mc.gather()
		const n = 5
		for i := range n {
			if _, err := c.Write(fmt.Appendf(nil, "packed-%d-%d", round, i)); err != nil {
				t.Fatal(err)
			}
		}
		mc.flush(udpAddr(l))
		for i := range n {
			f := readFrame(t, l)
			if want := fmt.Sprintf("packed-%d-%d", round, i); string(f.b) != want || f.from != peer {
				t.Fatalf("frame %q from %s, want %q from %s", f.b, f.from, want, peer)
			}
			if i == 0 {
				if err := l.WriteTo(pingresp, peer); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := readConn(ctx, t, c); !bytes.Equal(got, pingresp) {
			t.Fatalf("client got %x", got)
		}
		if got := int(mc.lastSock.Load()); got != sock {
			t.Fatalf("round %d: reply arrived on socket %d, want %d", round, got, sock)
		}
	}
	if st := l.Stats(); st.DatagramsIn == 0 || st.FramesIn != 1+20*5 {
		t.Fatalf("stats %+v", st)
	}
}
