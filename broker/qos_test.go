package broker

import (
	"fmt"
	"testing"
	"time"
)

func TestInflightWindowAndAck(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c", func(i *ConnectInfo) { i.ReceiveMaximum = 2 })
	sub(t, s, subQ("a", 1))
	p, _ := conn(t, srv, "p")
	for i := range 5 {
		pub(t, p, "a", fmt.Sprint(i), 1, false)
	}
	d0, d1 := sink.next(t), sink.next(t)
	sink.none(t)
	if s.Pending() != 5 {
		t.Fatalf("pending %d", s.Pending())
	}
	if d0.PacketID == 0 || d0.PacketID == d1.PacketID {
		t.Fatalf("ids %d %d", d0.PacketID, d1.PacketID)
	}
	s.Ack(d1.PacketID) // out of order is fine
	d2 := sink.next(t)
	sink.none(t)
	s.Ack(d0.PacketID)
	s.Ack(d2.PacketID)
	d3, d4 := sink.next(t), sink.next(t)
	for i, d := range []Delivery{d0, d1, d2, d3, d4} {
		if string(d.Msg.Payload) != fmt.Sprint(i) {
			t.Errorf("order: %d got %q", i, d.Msg.Payload)
		}
	}
	s.Ack(d3.PacketID)
	s.Ack(d4.PacketID)
	s.Ack(d4.PacketID) // unknown: ignored
	s.Ack(999)
	if s.Pending() != 0 || srv.Stats().Inflight != 0 {
		t.Errorf("pending %d", s.Pending())
	}
}

func TestQoS0PassesFullWindow(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c", func(i *ConnectInfo) { i.ReceiveMaximum = 1 })
	sub(t, s, subQ("a", 1))
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "q0", 0, false)
	pub(t, p, "a", "q1", 1, false)
	pub(t, p, "a", "q1b", 1, false) // window full: queued
	pub(t, p, "a", "q0b", 0, false) // behind q1b: queued, in order
	if a, b := sink.next(t), sink.next(t); string(a.Msg.Payload) != "q0" || string(b.Msg.Payload) != "q1" {
		t.Fatal("order")
	}
	sink.none(t)
	s.Ack(1)
	if a, b := sink.next(t), sink.next(t); string(a.Msg.Payload) != "q1b" || string(b.Msg.Payload) != "q0b" {
		t.Fatal("order after ack")
	}
	// With the queue empty, QoS 0 goes out even when the window is full.
	pub(t, p, "a", "q0c", 0, false)
	if d := sink.next(t); string(d.Msg.Payload) != "q0c" {
		t.Fatal("QoS 0 held behind a full window")
	}
}

func TestQoS2Flow(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c", persistent, func(i *ConnectInfo) { i.ReceiveMaximum = 1 })
	sub(t, s, subQ("a", 2))
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "1", 2, false)
	pub(t, p, "a", "2", 2, false)
	d := sink.next(t)
	sink.none(t)
	s.Ack(d.PacketID) // wrong flow for QoS 2: ignored
	s.Complete(d.PacketID)
	sink.none(t)
	if s.Pending() != 2 {
		t.Fatalf("pending %d", s.Pending())
	}
	s.Received(d.PacketID)
	sink.none(t) // still in flight until PUBCOMP
	// Reconnect: PUBREL is resent, not the PUBLISH.
	s.Disconnect(false)
	s2, sink2 := conn(t, srv, "c", resumeOld, func(i *ConnectInfo) { i.ReceiveMaximum = 1 })
	r := sink2.next(t)
	if !r.Release || r.PacketID != d.PacketID || r.Dup {
		t.Fatalf("resend %+v", r)
	}
	sink2.none(t)
	s2.Complete(d.PacketID)
	d2 := sink2.next(t)
	if string(d2.Msg.Payload) != "2" || d2.Dup {
		t.Fatalf("got %+v", d2)
	}
	s2.Received(d2.PacketID)
	s2.Complete(d2.PacketID)
	if s2.Pending() != 0 {
		t.Fatal("pending")
	}
}

func TestRedeliveryWithDupOnReconnect(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c", persistent)
	sub(t, s, subQ("a", 1))
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "1", 1, false)
	pub(t, p, "a", "2", 1, false)
	d1, d2 := sink.next(t), sink.next(t)
	s.Ack(d1.PacketID)
	// Connection lost: d2 unacknowledged.
	s.Disconnect(false)
	pub(t, p, "a", "3", 1, false)
	s2, sink2 := conn(t, srv, "c", resumeOld)
	r := sink2.next(t)
	if !r.Dup || r.PacketID != d2.PacketID || string(r.Msg.Payload) != "2" {
		t.Fatalf("resend %+v", r)
	}
	n := sink2.next(t)
	if n.Dup || string(n.Msg.Payload) != "3" || n.PacketID == d2.PacketID {
		t.Fatalf("next %+v", n)
	}
	s2.Ack(r.PacketID)
	s2.Ack(n.PacketID)
	if s2.Pending() != 0 {
		t.Fatal("pending")
	}
}

func TestPacketIDWrapSkipsInflight(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c", func(i *ConnectInfo) { i.ReceiveMaximum = 2 })
	sub(t, s, subQ("a", 1))
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "stuck", 1, false)
	stuck := sink.next(t).PacketID
	seen := map[uint16]bool{}
	for i := range 70000 {
		pub(t, p, "a", "x", 1, false)
		d := sink.next(t)
		if d.PacketID == 0 || d.PacketID == stuck {
			t.Fatalf("message %d: id %d in use", i, d.PacketID)
		}
		seen[d.PacketID] = true
		s.Ack(d.PacketID)
	}
	if len(seen) != 65534 {
		t.Errorf("%d distinct ids", len(seen))
	}
}

func TestSinkRefusalAndResume(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c", func(i *ConnectInfo) { i.QueueQoS0 = true })
	sub(t, s, subQ("a", 1))
	p, _ := conn(t, srv, "p")
	sink.refuse.Store(true)
	pub(t, p, "a", "1", 1, false)
	pub(t, p, "a", "2", 0, false)
	pub(t, p, "a", "3", 1, false)
	if sink.refused.Load() != 1 {
		t.Fatalf("offered %d times while refusing, want 1", sink.refused.Load())
	}
	if s.Pending() != 3 {
		t.Fatalf("pending %d", s.Pending())
	}
	sink.refuse.Store(false)
	s.Resume()
	for i, want := range []string{"1", "2", "3"} {
		d := sink.next(t)
		if string(d.Msg.Payload) != want || d.Dup {
			t.Errorf("%d: %q dup=%v", i, d.Msg.Payload, d.Dup)
		}
	}
}

func TestRefusedQoS0DroppedWithoutQueueQoS0(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c")
	sub(t, s, subQ("a", 1))
	p, _ := conn(t, srv, "p")
	sink.refuse.Store(true)
	pub(t, p, "a", "lost", 0, false)
	pub(t, p, "a", "lost2", 0, false)
	pub(t, p, "a", "kept", 1, false)
	sink.refuse.Store(false)
	s.Resume()
	if d := sink.next(t); string(d.Msg.Payload) != "kept" {
		t.Fatalf("got %q", d.Msg.Payload)
	}
	sink.none(t)
	if n := srv.Stats().DroppedQoS0; n != 2 {
		t.Errorf("dropped %d", n)
	}
}

func TestQueueBound(t *testing.T) {
	cfg := testConfig()
	cfg.MaxQueuedMessages = 3
	srv := newServer(t, cfg)
	s, _ := conn(t, srv, "c", persistent, func(i *ConnectInfo) { i.QueueQoS0 = true })
	sub(t, s, subQ("a", 1))
	s.Disconnect(false)
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "q0-old", 0, false)
	pub(t, p, "a", "q1-a", 1, false)
	pub(t, p, "a", "q0-new", 0, false)
	pub(t, p, "a", "q1-b", 1, false) // full: drops q0-old
	pub(t, p, "a", "q1-c", 1, false) // full: drops q0-new
	// Full, no QoS 0 to evict: the publisher is refused, nothing dropped.
	err := p.Publish(&Message{Topic: "a", Payload: []byte("q1-d"), QoS: 1})
	mustIs(t, err, ErrSubscriberQueueFull)
	mustIs(t, err, ErrQuotaExceeded)
	// QoS 0 keeps the drop policy: refused silently.
	pub(t, p, "a", "q0-refused", 0, false)
	_, sink := conn(t, srv, "c", resumeOld, func(i *ConnectInfo) { i.QueueQoS0 = true })
	for _, want := range []string{"q1-a", "q1-b", "q1-c"} {
		if d := sink.next(t); string(d.Msg.Payload) != want {
			t.Errorf("got %q, want %q", d.Msg.Payload, want)
		}
	}
	sink.none(t)
	if st := srv.Stats(); st.DroppedQueueFull != 3 || st.PublishesRefusedQueueFull != 1 {
		t.Errorf("dropped %d, refused %d", st.DroppedQueueFull, st.PublishesRefusedQueueFull)
	}
	// Room again: new messages are taken.
	pub(t, p, "a", "after", 0, false)
	if d := sink.next(t); string(d.Msg.Payload) != "after" {
		t.Errorf("got %q", d.Msg.Payload)
	}
}

func TestExpiredQueuedMessagesDropped(t *testing.T) {
	clk := newClock()
	srv := newServer(t, testConfig(), WithClock(clk))
	s, _ := conn(t, srv, "c", persistent)
	sub(t, s, subQ("a", 1))
	s.Disconnect(false)
	p, _ := conn(t, srv, "p")
	p.Publish(&Message{Topic: "a", Payload: []byte("short"), QoS: 1, Expiry: clk.Now().Add(time.Second)})
	p.Publish(&Message{Topic: "a", Payload: []byte("long"), QoS: 1, Expiry: clk.Now().Add(time.Hour)})
	clk.Advance(2 * time.Second)
	_, sink := conn(t, srv, "c", resumeOld)
	d := sink.next(t)
	if string(d.Msg.Payload) != "long" {
		t.Fatalf("got %q", d.Msg.Payload)
	}
	if rem := d.Msg.Expiry.Sub(clk.Now()); rem != time.Hour-2*time.Second {
		t.Errorf("remaining expiry %v", rem)
	}
	sink.none(t)
	if srv.Stats().DroppedExpired != 1 {
		t.Error("expiry drop not counted")
	}
}

func TestHeldUntilResumeAfterConnect(t *testing.T) {
	srv := newServer(t, testConfig())
	s, _ := conn(t, srv, "c", persistent)
	sub(t, s, subQ("a", 0))
	sink := newSink()
	s2, _, _ := srv.Connect(ConnectInfo{ClientID: "c", SessionExpiry: NoExpiry}, sink)
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "live", 0, false) // QoS 0 while held: queued, not dropped
	sink.none(t)
	s2.Resume()
	sink.next(t)
}

func TestMaxSubscriptions(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSubscriptionsPerSession = 2
	srv := newServer(t, cfg)
	s, _ := conn(t, srv, "c")
	codes := sub(t, s, subQ("a", 0), subQ("b", 0), subQ("c", 0), subQ("a", 1))
	if string(codes) != string([]byte{0, 0, 0x97, 1}) {
		t.Fatalf("codes %x", codes)
	}
	if srv.Stats().SubscriptionsRejected != 1 {
		t.Error("not counted")
	}
}

// resumeRaceSink refuses its first delivery, but before returning false
// the client "wakes up": another goroutine calls Resume and finishes.
type resumeRaceSink struct {
	*testSink
	sess  *Session
	calls int
}

func (r *resumeRaceSink) Deliver(d Delivery) bool {
	r.calls++
	if r.calls == 1 {
		done := make(chan struct{})
		go func() { r.sess.Resume(); close(done) }()
		<-done
		return false
	}
	return r.testSink.Deliver(d)
}

// TestResumeDuringRefusedDeliver: a Resume that lands while the refused
// Deliver is still running must not be lost.
func TestResumeDuringRefusedDeliver(t *testing.T) {
	srv := newServer(t, testConfig())
	rs := &resumeRaceSink{testSink: newSink()}
	s, _, err := srv.Connect(ConnectInfo{ClientID: "c"}, rs)
	if err != nil {
		t.Fatal(err)
	}
	rs.sess = s
	s.Resume()
	sub(t, s, subQ("a", 1))
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "x", 1, false)
	d := rs.next(t)
	if string(d.Msg.Payload) != "x" || d.Dup {
		t.Fatalf("got %+v", d)
	}
	if rs.calls != 2 {
		t.Errorf("%d offers", rs.calls)
	}
}
