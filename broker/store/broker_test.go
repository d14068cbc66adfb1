package store

import (
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
)

// chanSink records deliveries on a channel; it refuses them while asleep.
type chanSink struct {
	ch     chan broker.Delivery
	mu     sync.Mutex
	asleep bool
}

func newChanSink() *chanSink { return &chanSink{ch: make(chan broker.Delivery, 10000)} }

func (s *chanSink) Deliver(d broker.Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.asleep {
		return false
	}
	select {
	case s.ch <- d:
		return true
	default:
		return false
	}
}

func (s *chanSink) Closed(error) {}

func (s *chanSink) next(t testing.TB) broker.Delivery {
	t.Helper()
	select {
	case d := <-s.ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
		return broker.Delivery{}
	}
}

func (s *chanSink) none(t testing.TB) {
	t.Helper()
	select {
	case d := <-s.ch:
		t.Fatalf("unexpected delivery %q", d.Msg.Payload)
	default:
	}
}

// manualClock is a broker.Clock whose time moves only by Advance. Timers
// already due when set run at once (in a goroutine; fired gets a signal
// after each); the others never fire.
type manualClock struct {
	mu    sync.Mutex
	now   time.Time
	fired chan struct{}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type idleTimer struct{}

func (idleTimer) Stop() bool { return true }

func (c *manualClock) AfterFunc(d time.Duration, f func()) broker.Timer {
	if d <= 0 && c.fired != nil {
		go func() {
			f()
			c.fired <- struct{}{}
		}()
	}
	return idleTimer{}
}

func testConfig() broker.Config {
	c := broker.DefaultConfig()
	c.SysInterval = 0
	return c
}

// reopen closes srv and st (if set) and opens a new store and broker on
// dir.
func reopen(t testing.TB, dir string, srv *broker.Server, st *Store, opts ...broker.Option) (*broker.Server, *Store) {
	t.Helper()
	if srv != nil {
		srv.Close()
	}
	if st != nil {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err = broker.New(testConfig(), append(opts, broker.WithStore(st))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); _ = st.Close() })
	return srv, st
}

func connect(t testing.TB, srv *broker.Server, id string, persistent bool) (*broker.Session, *chanSink, bool) {
	t.Helper()
	info := broker.ConnectInfo{ClientID: id, CleanStart: !persistent}
	if persistent {
		info.SessionExpiry = broker.NoExpiry
	}
	sink := newChanSink()
	sess, present, err := srv.Connect(info, sink)
	if err != nil {
		t.Fatal(err)
	}
	sess.Resume()
	return sess, sink, present
}

func publish(t testing.TB, s *broker.Session, topic, payload string, qos byte, retain bool) {
	t.Helper()
	if err := s.Publish(&broker.Message{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}); err != nil {
		t.Fatal(err)
	}
}

// TestBrokerRestart runs a broker on the store, "restarts" it and checks
// that persistent sessions, their queues, in-flight QoS 2 state, front-end
// state and retained messages come back, and that acked messages leave
// the store.
func TestBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	srv, st := reopen(t, dir, nil, nil)
	sub, sink, _ := connect(t, srv, "sub", true)
	if codes := sub.Subscribe([]broker.Subscription{{Filter: "a/#", QoS: 2}}); codes[0] != 2 {
		t.Fatalf("suback %v", codes)
	}
	sub.Resume()
	if err := sub.SetFrontendState([]byte("topic-ids")).Wait(); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := connect(t, srv, "pub", false)
	publish(t, pub, "a/1", "q2", 2, false)
	d := sink.next(t)
	sub.Received(d.PacketID) // PUBREC: only PUBREL is resent after the restart
	sink.mu.Lock()
	sink.asleep = true // an MQTT-SN client asleep: messages queue
	sink.mu.Unlock()
	publish(t, pub, "a/2", "q1", 1, false)
	publish(t, pub, "a/3", "q0", 0, false) // QoS 0: not stored
	publish(t, pub, "r", "kept", 1, true)

	srv, st = reopen(t, dir, srv, st)
	if s := srv.Stats(); s.Sessions != 1 || s.Retained != 1 {
		t.Fatalf("restored %+v", s)
	}
	sub, sink, present := connect(t, srv, "sub", true)
	if !present || string(sub.FrontendState()) != "topic-ids" {
		t.Fatalf("present %v, front-end state %q", present, sub.FrontendState())
	}
	rel := sink.next(t)
	if !rel.Release || rel.PacketID != d.PacketID {
		t.Fatalf("first delivery %+v, want PUBREL %d", rel, d.PacketID)
	}
	q1 := sink.next(t)
	if string(q1.Msg.Payload) != "q1" || q1.QoS != 1 {
		t.Fatalf("queued delivery %+v", q1)
	}
	sink.none(t)
	sub.Complete(rel.PacketID)
	sub.Ack(q1.PacketID)
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, st, bucketMessages); n != 0 {
		t.Fatalf("%d messages left after the acks", n)
	}
	// Ending the session removes it.
	sub.SetSessionExpiry(0)
	sub.Disconnect(false)
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, st, bucketSessions); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	// Deleting a retained message deletes it from the store.
	pub, _, _ = connect(t, srv, "pub", false)
	publish(t, pub, "r", "", 0, true)
	if n := countKeys(t, st, bucketRetained); n != 0 {
		t.Fatalf("%d retained left", n)
	}
}

// TestBrokerExpiredDeleted checks that messages and retained messages
// that expire leave the store.
func TestBrokerExpiredDeleted(t *testing.T) {
	dir := t.TempDir()
	clk := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, st := reopen(t, dir, nil, nil, broker.WithClock(clk))
	sub, _, _ := connect(t, srv, "sub", true)
	sub.Subscribe([]broker.Subscription{{Filter: "#", QoS: 1}})
	sub.Resume()
	sub.Disconnect(false)
	pub, _, _ := connect(t, srv, "pub", false)
	exp := clk.Now().Add(time.Minute)
	for _, retain := range []bool{false, true} {
		if err := pub.Publish(&broker.Message{Topic: "t", Payload: []byte("x"), QoS: 1, Retain: retain, Expiry: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if n, r := countKeys(t, st, bucketMessages), countKeys(t, st, bucketRetained); n != 2 || r != 1 {
		t.Fatalf("stored %d messages, %d retained", n, r)
	}
	clk.Advance(2 * time.Minute)
	srv, st = reopen(t, dir, srv, st, broker.WithClock(clk)) // drops the expired retained message
	_, sink, _ := connect(t, srv, "sub", true)               // drops the expired queued ones
	sink.none(t)
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, r := countKeys(t, st, bucketMessages), countKeys(t, st, bucketRetained); n != 0 || r != 0 {
		t.Fatalf("%d messages, %d retained left after expiry", n, r)
	}
}

// TestBrokerDurableBeforeAck checks the rule: when Publish returns, the
// message is in the file (a second reader sees it).
func TestBrokerDurableBeforeAck(t *testing.T) {
	dir := t.TempDir()
	srv, st := reopen(t, dir, nil, nil)
	sub, _, _ := connect(t, srv, "sub", true)
	sub.Subscribe([]broker.Subscription{{Filter: "t", QoS: 1}})
	sub.Disconnect(false)
	pub, _, _ := connect(t, srv, "pub", false)
	for i := range 20 {
		publish(t, pub, "t", "m", 1, false)
		if n := countKeys(t, st, bucketMessages); n != i+1 {
			t.Fatalf("after publish %d: %d messages stored", i+1, n)
		}
	}
}

// A persistent session that expired while the server was down is deleted
// from the store at start-up.
func TestBrokerExpiredSessionDeleted(t *testing.T) {
	dir := t.TempDir()
	clk := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), fired: make(chan struct{}, 16)}
	srv, st := reopen(t, dir, nil, nil, broker.WithClock(clk))
	sink := newChanSink()
	s, _, err := srv.Connect(broker.ConnectInfo{ClientID: "c", SessionExpiry: time.Minute}, sink)
	if err != nil {
		t.Fatal(err)
	}
	s.Subscribe([]broker.Subscription{{Filter: "t", QoS: 1}})
	s.Disconnect(false)
	pub, _, _ := connect(t, srv, "pub", false)
	publish(t, pub, "t", "queued", 1, false)
	clk.Advance(2 * time.Minute)
	srv, st = reopen(t, dir, srv, st, broker.WithClock(clk))
	<-clk.fired // the expiry, due at start-up
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, m := countKeys(t, st, bucketSessions), countKeys(t, st, bucketMessages); n != 0 || m != 0 {
		t.Fatalf("expired session left %d sessions, %d messages", n, m)
	}
	if srv.Stats().Sessions != 0 {
		t.Fatalf("stats %+v", srv.Stats())
	}
}
