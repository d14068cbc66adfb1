package broker

import (
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testSink records deliveries on a channel. It refuses deliveries while
// refuse is set, or when its channel is full (it never blocks).
type testSink struct {
	ch      chan Delivery
	closed  chan error
	refuse  atomic.Bool
	refused atomic.Int64
	// refusals gets a signal (non-blocking) at each refusal.
	refusals chan struct{}
}

func newSink() *testSink {
	return &testSink{ch: make(chan Delivery, 100000), closed: make(chan error, 1), refusals: make(chan struct{}, 1)}
}

func (s *testSink) Deliver(d Delivery) bool {
	if !s.refuse.Load() {
		select {
		case s.ch <- d:
			return true
		default:
		}
	}
	s.refused.Add(1)
	select {
	case s.refusals <- struct{}{}:
	default:
	}
	return false
}

func (s *testSink) Closed(err error) {
	select {
	case s.closed <- err:
	default:
	}
}

// next returns the next delivery, failing the test if none comes.
func (s *testSink) next(t testing.TB) Delivery {
	t.Helper()
	select {
	case d := <-s.ch:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
		return Delivery{}
	}
}

// none fails if a delivery is waiting. Deliveries are synchronous in the
// calling goroutine, so in single-goroutine tests this is exact.
func (s *testSink) none(t testing.TB) {
	t.Helper()
	select {
	case d := <-s.ch:
		t.Fatalf("unexpected delivery %q %q qos=%d", d.Msg.Topic, d.Msg.Payload, d.QoS)
	default:
	}
}

// topics drains the waiting deliveries and returns their topics, sorted.
func (s *testSink) topics() []string {
	var out []string
	for {
		select {
		case d := <-s.ch:
			out = append(out, d.Msg.Topic)
		default:
			sort.Strings(out)
			return out
		}
	}
}

// fakeClock is a manual Clock: AfterFunc callbacks run, in deadline
// order, in the goroutine calling Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	when    time.Time
	f       func()
	stopped bool
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves the clock and runs the callbacks that became due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due *fakeTimer
		idx := -1
		for i, t := range c.timers {
			if !t.stopped && !t.when.After(c.now) && (due == nil || t.when.Before(due.when)) {
				due, idx = t, i
			}
		}
		if due == nil {
			live := c.timers[:0]
			for _, t := range c.timers {
				if !t.stopped {
					live = append(live, t)
				}
			}
			c.timers = live
			c.mu.Unlock()
			return
		}
		due.stopped = true
		c.timers = append(c.timers[:idx], c.timers[idx+1:]...)
		c.mu.Unlock()
		due.f()
	}
}

// testConfig is a config without $SYS and with anonymous access.
func testConfig() Config {
	c := DefaultConfig()
	c.SysInterval = 0
	return c
}

func newServer(t testing.TB, cfg Config, opts ...Option) *Server {
	t.Helper()
	srv, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// conn connects client id with info tweaks and resumes it (as a front end
// does after CONNACK).
func conn(t testing.TB, srv *Server, id string, tweak ...func(*ConnectInfo)) (*Session, *testSink) {
	t.Helper()
	info := ConnectInfo{ClientID: id, CleanStart: true}
	for _, f := range tweak {
		f(&info)
	}
	sink := newSink()
	sess, _, err := srv.Connect(info, sink)
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	sess.Resume()
	return sess, sink
}

func persistent(i *ConnectInfo) { i.CleanStart = false; i.SessionExpiry = NoExpiry }

func resumeOld(i *ConnectInfo) { i.CleanStart = false; i.SessionExpiry = NoExpiry }

func sub(t testing.TB, s *Session, subs ...Subscription) []byte {
	t.Helper()
	codes := s.Subscribe(subs)
	s.Resume()
	return codes
}

func subQ(filter string, qos QoS) Subscription { return Subscription{Filter: filter, QoS: qos} }

func pub(t testing.TB, s *Session, topic, payload string, qos QoS, retain bool) {
	t.Helper()
	if err := s.Publish(&Message{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

func mustIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}
