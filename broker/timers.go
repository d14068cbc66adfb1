package broker

import (
	"sync"
	"time"
)

// timerEntry is one scheduled call in the scheduler's heap.
type timerEntry struct {
	when time.Time
	fn   func(*timerEntry)
	idx  int // heap index, -1 when not scheduled
}

// scheduler runs the broker's timed work (will delays, session expiry,
// $SYS) from one min-heap and a single Clock timer armed for the earliest
// entry: idle sessions cost no goroutine and no polling.
type scheduler struct {
	clock Clock

	mu      sync.Mutex
	heap    []*timerEntry
	timer   Timer
	armedAt time.Time // deadline of timer
	gen     uint64    // identifies the armed timer; stale ones do nothing
	closed  bool
}

// add schedules fn(e) at when and returns e, the handle for cancel.
func (sc *scheduler) add(when time.Time, fn func(*timerEntry)) *timerEntry {
	e := &timerEntry{when: when, fn: fn, idx: -1}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.closed {
		return e
	}
	e.idx = len(sc.heap)
	sc.heap = append(sc.heap, e)
	sc.up(e.idx)
	sc.armLocked()
	return e
}

// cancel removes e if it is still scheduled and reports whether it was.
func (sc *scheduler) cancel(e *timerEntry) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if e.idx < 0 {
		return false
	}
	i := e.idx
	last := len(sc.heap) - 1
	sc.swap(i, last)
	sc.heap[last] = nil
	sc.heap = sc.heap[:last]
	e.idx = -1
	if i < last {
		sc.down(i)
		sc.up(i)
	}
	if len(sc.heap) == 0 && cap(sc.heap) > 1024 {
		sc.heap = nil
	}
	return true
}

// len returns the number of scheduled entries.
func (sc *scheduler) len() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.heap)
}

// close stops the timer and drops every entry.
func (sc *scheduler) close() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.closed = true
	for _, e := range sc.heap {
		e.idx = -1
	}
	sc.heap = nil
	if sc.timer != nil {
		sc.timer.Stop()
		sc.timer = nil
	}
}

// armLocked makes sure the clock timer fires no later than the earliest
// entry. Caller holds sc.mu.
func (sc *scheduler) armLocked() {
	if len(sc.heap) == 0 || sc.closed {
		return
	}
	when := sc.heap[0].when
	if sc.timer != nil && !sc.armedAt.After(when) {
		return
	}
	if sc.timer != nil {
		sc.timer.Stop()
	}
	sc.armedAt = when
	sc.gen++
	gen := sc.gen
	sc.timer = sc.clock.AfterFunc(max(when.Sub(sc.clock.Now()), 0), func() { sc.fire(gen) })
}

// fire runs the due entries. A timer replaced by an earlier one, but
// stopped too late, does nothing: the newer timer fires first.
func (sc *scheduler) fire(gen uint64) {
	sc.mu.Lock()
	if sc.closed || gen != sc.gen {
		sc.mu.Unlock()
		return
	}
	sc.timer = nil
	now := sc.clock.Now()
	var due []*timerEntry
	for len(sc.heap) > 0 && !sc.heap[0].when.After(now) {
		e := sc.heap[0]
		last := len(sc.heap) - 1
		sc.swap(0, last)
		sc.heap[last] = nil
		sc.heap = sc.heap[:last]
		e.idx = -1
		if last > 0 {
			sc.down(0)
		}
		due = append(due, e)
	}
	sc.armLocked()
	sc.mu.Unlock()
	for _, e := range due {
		e.fn(e)
	}
}

func (sc *scheduler) less(i, j int) bool { return sc.heap[i].when.Before(sc.heap[j].when) }

func (sc *scheduler) swap(i, j int) {
	sc.heap[i], sc.heap[j] = sc.heap[j], sc.heap[i]
	sc.heap[i].idx = i
	sc.heap[j].idx = j
}

func (sc *scheduler) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !sc.less(i, p) {
			return
		}
		sc.swap(i, p)
		i = p
	}
}

func (sc *scheduler) down(i int) {
	n := len(sc.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && sc.less(r, l) {
			m = r
		}
		if !sc.less(m, i) {
			return
		}
		sc.swap(i, m)
		i = m
	}
}
