package gateway

import (
	"sync"

	"github.com/sngate/sngate/transport"
)

// sourceLimiter bounds new clients per source (an IP for UDP): a token
// bucket for the rate of new clients, and a count of CONNECTs in the will
// dialogue. It tracks at most max sources; idle ones are swept out (at
// most once a second). A source that finds the table full is admitted
// untracked: MaxClients still bounds what it can take.
type sourceLimiter struct {
	mu         sync.Mutex
	perNs      float64
	burst      float64
	maxPending int32
	max        int
	m          map[transport.Addr]*srcEntry
	lastSweep  int64
}

type srcEntry struct {
	tokens  float64
	last    int64
	pending int32
}

func newSourceLimiter(rate float64, burst, maxPending, max int) *sourceLimiter {
	return &sourceLimiter{perNs: rate / 1e9, burst: float64(burst), maxPending: int32(maxPending), max: max,
		m: make(map[transport.Addr]*srcEntry)}
}

// entry returns the source's entry, creating it if there is room.
func (l *sourceLimiter) entry(a transport.Addr, now int64) *srcEntry {
	if e := l.m[a]; e != nil {
		e.tokens = min(l.burst, e.tokens+float64(now-e.last)*l.perNs)
		e.last = now
		return e
	}
	if len(l.m) >= l.max {
		if now-l.lastSweep < 1e9 {
			return nil
		}
		l.lastSweep = now
		for k, e := range l.m {
			if e.pending == 0 && e.tokens+float64(now-e.last)*l.perNs >= l.burst {
				delete(l.m, k)
			}
		}
		if len(l.m) >= l.max {
			return nil
		}
	}
	e := &srcEntry{tokens: l.burst, last: now}
	l.m[a] = e
	return e
}

// admit takes one new-client token from the source.
func (l *sourceLimiter) admit(a transport.Addr, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(a, now)
	if e == nil {
		return true // table full: untracked
	}
	if e.tokens < 1 {
		return false
	}
	e.tokens--
	return true
}

// beginPending counts one CONNECT entering the will dialogue.
func (l *sourceLimiter) beginPending(a transport.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[a]
	if e == nil {
		if e = l.entry(a, 0); e == nil {
			return true // table full: untracked
		}
	}
	if e.pending >= l.maxPending {
		return false
	}
	e.pending++
	return true
}

// endPending counts one will dialogue as finished.
func (l *sourceLimiter) endPending(a transport.Addr) {
	l.mu.Lock()
	if e := l.m[a]; e != nil && e.pending > 0 {
		e.pending--
	}
	l.mu.Unlock()
}
