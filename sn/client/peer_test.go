package client

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/sngate/sngate/sn"
)

// hangGuard bounds every wait in these tests so that a bug fails the test
// instead of hanging it. No test depends on how fast anything happens.
const hangGuard = 10 * time.Second

// peer is a scripted gateway on 127.0.0.1:0: the test reads what the
// client sent and answers by hand, using the sn codec.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr // the client's address, learnt from its first datagram
	buf  []byte
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &peer{t: t, conn: conn, buf: make([]byte, 70000)}
}

func (p *peer) addr() string { return p.conn.LocalAddr().String() }

// recv returns the next datagram from the client, decoded.
func (p *peer) recv() *sn.Packet {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(hangGuard))
	n, from, err := p.conn.ReadFromUDP(p.buf)
	if err != nil {
		p.t.Fatalf("peer: read: %v", err)
	}
	p.to = from
	frame := append([]byte(nil), p.buf[:n]...)
	pkt := new(sn.Packet)
	if err := sn.Decode(frame, pkt); err != nil {
		p.t.Fatalf("peer: client sent undecodable %x: %v", frame, err)
	}
	return pkt
}

// expect receives the next datagram and checks its type.
func (p *peer) expect(t sn.MsgType) *sn.Packet {
	p.t.Helper()
	pkt := p.recv()
	if pkt.Type != t {
		p.t.Fatalf("peer: got %s, want %s", pkt.String(), t)
	}
	return pkt
}

// expectNothingQueued checks that no datagram is waiting. Loopback UDP
// delivers during the sender's write, so once the client call that would
// have sent something has returned, it would already be queued here.
func (p *peer) expectNothingQueued() {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	n, _, err := p.conn.ReadFromUDP(p.buf)
	if err == nil {
		p.t.Fatalf("peer: unexpected datagram %x", p.buf[:n])
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		p.t.Fatalf("peer: read: %v", err)
	}
}

// send encodes m and sends it to the client.
func (p *peer) send(m sn.Message) {
	p.t.Helper()
	if p.to == nil {
		p.t.Fatal("peer: client address unknown (nothing received yet)")
	}
	b, err := m.Append(nil)
	if err != nil {
		p.t.Fatalf("peer: encode %s: %v", m, err)
	}
	if _, err := p.conn.WriteToUDP(b, p.to); err != nil {
		p.t.Fatalf("peer: write: %v", err)
	}
}

// dial returns a client of p, closed at the end of the test.
func dial(t *testing.T, p *peer, opts Options) *Client {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "test-client"
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = -1 // keep-alive tests turn it on explicitly
	}
	c, err := Dial(context.Background(), "udp", p.addr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// async runs f on a goroutine and returns its result channel.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// wait returns the result of an async call.
func wait(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(hangGuard):
		t.Fatal("client call did not return")
		return nil
	}
}

// mustWait fails the test unless the async call succeeded.
func mustWait(t *testing.T, ch <-chan error) {
	t.Helper()
	if err := wait(t, ch); err != nil {
		t.Fatal(err)
	}
}

// connect runs a plain CONNECT/CONNACK exchange.
func connect(t *testing.T, p *peer, c *Client) *sn.Connect {
	t.Helper()
	done := async(func() error { return c.Connect(context.Background()) })
	pkt := p.expect(sn.TypeConnect)
	p.send(&sn.Connack{ReturnCode: sn.Accepted})
	mustWait(t, done)
	return &pkt.Connect
}

// collector gathers OnPublish deliveries.
type collector chan Message

func newCollector() collector { return make(collector, 64) }

func (col collector) onPublish(m Message) { col <- m }

func (col collector) next(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-col:
		return m
	case <-time.After(hangGuard):
		t.Fatal("no message delivered")
		return Message{}
	}
}
