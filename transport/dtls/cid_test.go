package dtls

import (
	"bytes"
	"testing"
)

// A client with a Connection ID whose source port changes mid-session
// keeps its association, in both directions.
func TestCIDSurvivesRebinding(t *testing.T) {
	ctx := testCtx(t)
	l, _ := startListener(t, pskConfig())
	frames := pump(t, l)

	rc := newRebindConn(t)
	port1 := rc.port()
	cc := pskClient()
	cc.ConnectionID = true
	c, err := Client(ctx, rc, udpAddr(l), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	_, _ = c.Write(pingreq)
	f := recvFrame(ctx, t, frames)
	peer := f.from
	info, _ := l.Peer(peer)
	if !info.ConnectionID || info.Remote.Port() != port1 {
		t.Fatalf("before rebinding: %+v (client port %d)", info, port1)
	}
	if err := l.WriteTo(pingresp, peer); err != nil {
		t.Fatal(err)
	}
	if got := readConn(ctx, t, c); !bytes.Equal(got, pingresp) {
		t.Fatalf("client got %x", got)
	}

	rc.rebind(t)
	port2 := rc.port()
	if port2 == port1 {
		t.Fatal("rebinding kept the port")
	}
	// The first record from the new port moves the peer: a reply written
	// as soon as it is read goes to the new port.
	m := []byte("after")
	if _, err := c.Write(m); err != nil {
		t.Fatal(err)
	}
	if f := recvFrame(ctx, t, frames); f.from != peer || !bytes.Equal(f.b, m) {
		t.Fatalf("after rebinding: frame %q from %s, want %q from %s", f.b, f.from, m, peer)
	}
	if info, _ := l.Peer(peer); info.Remote.Port() != port2 {
		t.Fatalf("peer remote %s, want port %d", info.Remote, port2)
	}
	if err := l.WriteTo([]byte("to-new-port"), peer); err != nil {
		t.Fatal(err)
	}
	if got := readConn(ctx, t, c); string(got) != "to-new-port" {
		t.Fatalf("client got %q", got)
	}
	if st := l.Stats(); st.HandshakesOK != 1 || st.Associations != 1 || st.DropUnknownSource != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Without a Connection ID the server cannot know the new port belongs to
// the association: the record is dropped as coming from nowhere.
func TestCIDRebindingWithoutConnectionIDIsDropped(t *testing.T) {
	ctx := testCtx(t)
	l, ev := startListener(t, pskConfig())
	frames := pump(t, l)

	rc := newRebindConn(t)
	c, err := Client(ctx, rc, udpAddr(l), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(pingreq)
	f := recvFrame(ctx, t, frames)
	if info, _ := l.Peer(f.from); info.ConnectionID {
		t.Fatal("Connection ID negotiated although the client did not offer it")
	}
	rc.rebind(t)
	_, _ = c.Write(pingreq)
	ev.wait(ctx, t, "unknown")
	if st := l.Stats(); st.DropUnknownSource != 1 || st.FramesIn != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// With Connection IDs disabled, a client offering them gets none.
func TestCIDsDisabled(t *testing.T) {
	ctx := testCtx(t)
	cfg := pskConfig()
	cfg.ConnectionIDLength = -1
	l, _ := startListener(t, cfg)
	frames := pump(t, l)
	cc := pskClient()
	cc.ConnectionID = true
	c, err := Dial(ctx, l.LocalAddr().String(), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(pingreq)
	f := recvFrame(ctx, t, frames)
	if info, _ := l.Peer(f.from); info.ConnectionID {
		t.Fatal("Connection ID negotiated while disabled")
	}
}
