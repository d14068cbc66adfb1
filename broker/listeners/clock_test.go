package listeners

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
)

// fakeClock is a manual broker.Clock: timers fire in the goroutine that
// calls Advance.
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

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) broker.Timer {
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

// Advance moves the clock and runs the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, rest []*fakeTimer
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.when.After(c.now):
			due = append(due, t)
		default:
			rest = append(rest, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].when.Before(due[j].when) })
	for _, t := range due {
		t.mu()
	}
}

func (t *fakeTimer) mu() {
	t.c.mu.Lock()
	stopped := t.stopped
	t.stopped = true
	t.c.mu.Unlock()
	if !stopped {
		t.f()
	}
}

// setupClock starts a broker and a TCP listener that share a fake clock.
func setupClock(t *testing.T, cfg Config) (*broker.Server, string, *fakeClock) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	bc := broker.DefaultConfig()
	bc.SysInterval = 0
	srv, err := broker.New(bc, broker.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	l, err := New(cfg, srv, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.now = clk.Now
	l.parkAfter = testParkAfter
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	go l.Serve()
	t.Cleanup(func() { l.Close() })
	return srv, l.Addr().String(), clk
}
