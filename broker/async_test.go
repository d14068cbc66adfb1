package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedStore is a memStore whose commits, while hold is set, become
// durable only when the test calls release: every commit staged before
// it then completes, in staging order, like a group commit.
type gatedStore struct {
	*memStore
	hold    atomic.Bool
	mu      sync.Mutex
	pending []chan struct{}
}

func newGatedStore() *gatedStore { return &gatedStore{memStore: newMemStore()} }

type gatedCommit chan struct{}

func (c gatedCommit) Wait() error { <-c; return nil }

func (g *gatedStore) Stage(batch []Change) Commit {
	_ = g.Apply(batch)
	if !g.hold.Load() {
		return doneCommit{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	g.pending = append(g.pending, ch)
	return gatedCommit(ch)
}

// release makes every commit staged so far durable.
func (g *gatedStore) release() {
	g.mu.Lock()
	p := g.pending
	g.pending = nil
	g.mu.Unlock()
	for _, ch := range p {
		close(ch)
	}
}

// publishes is an Observer that records SessionPublished calls.
type publishes struct {
	mu     sync.Mutex
	topics []string
}

func (o *publishes) SessionConnected(ConnectInfo, bool)               {}
func (o *publishes) SessionSubscribed(string, []Subscription, []byte) {}
func (o *publishes) SessionUnsubscribed(string, []string, []byte)     {}
func (o *publishes) SessionWill(string, *Will)                        {}
func (o *publishes) SessionDisconnected(string, bool)                 {}
func (o *publishes) SessionPublished(_ string, m *Message) {
	o.mu.Lock()
	o.topics = append(o.topics, m.Topic)
	o.mu.Unlock()
}

func (o *publishes) got() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprint(o.topics)
}

// doneLog collects PublishAsync results in the order done was called.
type doneLog struct {
	mu   sync.Mutex
	errs []error
	name []string
	ch   chan struct{}
}

func newDoneLog() *doneLog { return &doneLog{ch: make(chan struct{}, 100)} }

func (l *doneLog) done(name string) func(error) {
	return func(err error) {
		l.mu.Lock()
		l.name = append(l.name, name)
		l.errs = append(l.errs, err)
		l.mu.Unlock()
		l.ch <- struct{}{}
	}
}

func (l *doneLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.name)
}

func (l *doneLog) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-l.ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("done not called; so far %v", l.name)
		}
	}
}

func TestPublishAsyncWaitsForStore(t *testing.T) {
	st := newGatedStore()
	srv := newServer(t, testConfig(), WithStore(st))
	obs := &publishes{}
	srv.SetObserver(obs, nil)
	s, _ := conn(t, srv, "sub", persistent)
	sub(t, s, subQ("a/#", 1))
	s.Disconnect(false)
	p, _ := conn(t, srv, "pub")

	st.hold.Store(true)
	l := newDoneLog()
	p.PublishAsync(&Message{Topic: "a/1", Payload: []byte("1"), QoS: 1}, l.done("1"))
	p.PublishAsync(&Message{Topic: "a/0", Payload: []byte("0")}, l.done("0")) // nothing to wait for, but after 1
	p.PublishAsync(&Message{Topic: "a/2", Payload: []byte("2"), QoS: 2}, l.done("2"))
	p.PublishAsync(&Message{Topic: "a/+", Payload: []byte("x"), QoS: 1}, l.done("bad"))
	if n := l.count(); n != 0 {
		t.Fatalf("%d done calls before the store commit", n)
	}
	// The observer hears of routed messages at once, in order.
	if got := obs.got(); got != "[a/1 a/0 a/2]" {
		t.Errorf("observed %s", got)
	}
	st.release()
	l.wait(t, 4)
	if got := fmt.Sprint(l.name); got != "[1 0 2 bad]" {
		t.Fatalf("done order %s", got)
	}
	for i, err := range l.errs[:3] {
		if err != nil {
			t.Errorf("done %s: %v", l.name[i], err)
		}
	}
	mustIs(t, l.errs[3], ErrBadTopic)

	st.hold.Store(false)
	pub(t, p, "a/3", "3", 1, false)
	_, sink := conn(t, srv, "sub", resumeOld)
	for _, want := range []string{"1", "2", "3"} { // "0": QoS 0 is not queued for it
		d := sink.next(t)
		if string(d.Msg.Payload) != want {
			t.Fatalf("got %q, want %q", d.Msg.Payload, want)
		}
		if d.QoS > 0 {
			sinkAck(d, srv, "sub")
		}
	}
}

// sinkAck acknowledges delivery d of session id.
func sinkAck(d Delivery, srv *Server, id string) {
	srv.mu.Lock()
	s := srv.sessions[id]
	srv.mu.Unlock()
	s.mu.Lock()
	h := s.cur
	s.mu.Unlock()
	if d.QoS == 1 {
		h.Ack(d.PacketID)
		return
	}
	h.Received(d.PacketID)
	h.Complete(d.PacketID)
}

func TestPublishAsyncInlineAndClosed(t *testing.T) {
	srv := newServer(t, testConfig())
	p, _ := conn(t, srv, "pub")
	var got []error
	p.PublishAsync(&Message{Topic: "a", QoS: 1}, func(err error) { got = append(got, err) })
	p.PublishAsync(nil, func(err error) { got = append(got, err) })
	p.PublishAsync(&Message{Topic: "a", QoS: 1}, nil) // a nil done is allowed
	p.Disconnect(false)
	p.PublishAsync(&Message{Topic: "a", QoS: 1}, func(err error) { got = append(got, err) })
	if len(got) != 3 || got[0] != nil {
		t.Fatalf("got %v", got)
	}
	mustIs(t, got[1], ErrBadTopic)
	mustIs(t, got[2], ErrSessionClosed)
}

func TestPublishRefusedWhileSubscriberQueueFull(t *testing.T) {
	cfg := testConfig()
	cfg.MaxQueuedMessages = 2
	srv := newServer(t, cfg)
	s, _ := conn(t, srv, "full", persistent)
	sub(t, s, subQ("t", 1))
	s.Disconnect(false)
	q0, _ := conn(t, srv, "q0sub", persistent) // a QoS 0 subscription never refuses
	sub(t, q0, subQ("t", 0))
	q0.Disconnect(false)
	p, _ := conn(t, srv, "pub")
	pub(t, p, "t", "1", 1, false)
	pub(t, p, "t", "2", 2, false)
	err := p.Publish(&Message{Topic: "t", Payload: []byte("3"), QoS: 1})
	mustIs(t, err, ErrSubscriberQueueFull)
	mustIs(t, err, ErrQuotaExceeded)
	l := newDoneLog()
	p.PublishAsync(&Message{Topic: "t", Payload: []byte("3"), QoS: 2, Retain: true}, l.done("async"))
	l.wait(t, 1)
	mustIs(t, l.errs[0], ErrSubscriberQueueFull)
	if srv.Stats().Retained != 0 {
		t.Error("a refused retained message was stored")
	}
	pub(t, p, "t", "qos0", 0, false) // QoS 0: dropped for "full", no error
	mustIs(t, srv.DeliverTo("full", &Message{Topic: "t", Payload: []byte("x"), QoS: 1}, 1), ErrSubscriberQueueFull)
	if err := srv.DeliverTo("full", &Message{Topic: "t", Payload: []byte("x")}, 0); err != nil {
		t.Errorf("QoS 0 DeliverTo: %v", err)
	}
	st := srv.Stats()
	if st.PublishesRefusedQueueFull != 3 || st.DroppedQueueFull != 2 {
		t.Errorf("refused %d, dropped %d", st.PublishesRefusedQueueFull, st.DroppedQueueFull)
	}
	if st.MessagesReceived != 3 {
		t.Errorf("received %d, want 3 (refused publishes do not count)", st.MessagesReceived)
	}
	// The subscriber drains: publishes are taken again.
	_, sink := conn(t, srv, "full", resumeOld)
	for _, want := range []string{"1", "2"} {
		d := sink.next(t)
		if string(d.Msg.Payload) != want {
			t.Fatalf("got %q, want %q", d.Msg.Payload, want)
		}
		sinkAck(d, srv, "full")
	}
	pub(t, p, "t", "3", 1, false)
	if d := sink.next(t); string(d.Msg.Payload) != "3" {
		t.Fatalf("got %q", d.Msg.Payload)
	}
}

// TestQueueFullConcurrentPublishers checks that every publish that
// returned nil is delivered, however publishers race for the last places
// of a full queue (they may overshoot the bound a little).
func TestQueueFullConcurrentPublishers(t *testing.T) {
	cfg := testConfig()
	cfg.MaxQueuedMessages = 8
	srv := newServer(t, cfg)
	s, _ := conn(t, srv, "sub", persistent)
	sub(t, s, subQ("t/#", 1))
	s.Disconnect(false)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		p, _ := conn(t, srv, fmt.Sprintf("p%d", i))
		wg.Go(func() {
			for j := range 20 {
				err := p.Publish(&Message{Topic: fmt.Sprintf("t/%d", i), Payload: []byte{byte(j)}, QoS: 1})
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, ErrSubscriberQueueFull):
					t.Errorf("publish: %v", err)
				}
			}
		})
	}
	wg.Wait()
	st := srv.Stats()
	if st.DroppedQueueFull != 0 {
		t.Fatalf("%d QoS 1 messages dropped", st.DroppedQueueFull)
	}
	if st.Queued != ok.Load() {
		t.Fatalf("%d queued, %d acknowledged", st.Queued, ok.Load())
	}
	_, sink := conn(t, srv, "sub", resumeOld)
	for range ok.Load() {
		sinkAck(sink.next(t), srv, "sub")
	}
	sink.none(t)
}
