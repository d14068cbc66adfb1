package dtls

import (
	"bytes"
	"testing"
	"time"
)

// Silent peers, stopped before and after the cookie exchange, do not delay
// an honest client's handshake: it completes while they are still
// pending (HandshakeTimeout is far away, so nothing timed out for it).
func TestSilentPeersDoNotBlockHandshakes(t *testing.T) {
	ctx := testCtx(t)
	cfg := pskConfig()
	cfg.MaxPending = 4
	cfg.MaxUnverified = 64
	cfg.HandshakeTimeout = 10 * time.Minute
	l, _ := startListener(t, cfg)
	frames := pump(t, l)

	const unverified, verified = 20, 3
	for range unverified {
		newRawPeer(t, l).hello(ctx) // one ClientHello, then silence
	}
	for range verified {
		newRawPeer(t, l).verified(ctx) // cookie echoed, then silence
	}
	if st := l.Stats(); st.Pending != verified || st.Unverified != unverified {
		t.Fatalf("before: %+v", st)
	}

	c, err := Dial(ctx, l.LocalAddr().String(), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(pingreq)
	if f := recvFrame(ctx, t, frames); !bytes.Equal(f.b, pingreq) {
		t.Fatalf("frame %x", f.b)
	}
	st := l.Stats()
	if st.HandshakesOK != 1 || st.Pending != verified || st.Unverified != unverified || st.HandshakesFailed != 0 {
		t.Fatalf("after: %+v", st)
	}
}

// ClientHellos whose sender never echoes the cookie (what spoofed sources
// send) never take a pending slot: with MaxPending 1 and a flood larger
// than MaxUnverified, the oldest are evicted and an honest client still
// gets the one slot.
func TestSpoofedHellosTakeNoSlot(t *testing.T) {
	ctx := testCtx(t)
	cfg := pskConfig()
	cfg.MaxPending = 1
	cfg.MaxUnverified = 8
	cfg.HandshakeTimeout = 10 * time.Minute
	l, ev := startListener(t, cfg)

	const flood = 30
	var last *rawPeer
	for range flood {
		last = newRawPeer(t, l)
		last.hello(ctx)
	}
	st := l.Stats()
	if st.Pending != 0 || st.Unverified != 8 || st.UnverifiedEvicted != flood-8 {
		t.Fatalf("after flood: %+v", st)
	}

	// A guessed cookie is dropped before pion sees it.
	wrong := bytes.Clone(last.cookie)
	wrong[0] ^= 0xff
	last.echo(wrong)
	ev.wait(ctx, t, "bad-cookie")

	c, err := Dial(ctx, l.LocalAddr().String(), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev.wait(ctx, t, "established")
	st = l.Stats()
	// The honest client's own ClientHello evicted one more.
	if st.HandshakesOK != 1 || st.DropBadCookie != 1 || st.DropPendingFull != 0 || st.Pending != 0 ||
		st.UnverifiedEvicted != flood-8+1 {
		t.Fatalf("after honest client: %+v", st)
	}
}

// Beyond MaxPending a verified ClientHello is dropped and counted; when a
// slot frees, the client's retransmission gets in.
func TestPendingBound(t *testing.T) {
	ctx := testCtx(t)
	cfg := pskConfig()
	cfg.MaxPending = 1
	cfg.HandshakeTimeout = 10 * time.Minute
	l, ev := startListener(t, cfg)

	b := newRawPeer(t, l)
	b.verified(ctx) // holds the only slot

	c := newRawPeer(t, l)
	c.echo(c.hello(ctx))
	ev.wait(ctx, t, "pending-full")
	if st := l.Stats(); st.DropPendingFull != 1 || st.Pending != 1 || st.Unverified != 1 {
		t.Fatalf("at bound: %+v", st)
	}

	b.abort() // b gives up: its slot frees
	ev.wait(ctx, t, "failed-other")

	c.echo(c.cookie) // c's retransmission
	typ, _, _, ok := plainHandshake(c.recv(ctx))
	if !ok || typ != 2 {
		t.Fatalf("want ServerHello, got type %d", typ)
	}
	if st := l.Stats(); st.Pending != 1 || st.Unverified != 0 || st.FailedOther != 1 {
		t.Fatalf("after retry: %+v", st)
	}
}

// A pending handshake that goes silent ends at HandshakeTimeout and is
// counted as such.
func TestHandshakeTimeout(t *testing.T) {
	ctx := testCtx(t)
	cfg := pskConfig()
	cfg.HandshakeTimeout = 100 * time.Millisecond
	l, ev := startListener(t, cfg)
	newRawPeer(t, l).verified(ctx)
	ev.wait(ctx, t, "failed-timeout")
	newRawPeer(t, l).hello(ctx)
	ev.wait(ctx, t, "unverified-ended")
	if st := l.Stats(); st.FailedTimeout != 1 || st.UnverifiedExpired != 1 || st.Pending != 0 || st.Unverified != 0 {
		t.Fatalf("stats %+v", st)
	}
}
