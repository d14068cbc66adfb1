package gateway

// timerKind says which client deadline a timerSlot carries.
type timerKind uint8

const (
	timerSupervise timerKind = iota // keep-alive or sleep supervision
	timerRetry                      // retransmission of the client's outstanding request
)

// timerSlot is one deadline of one client, kept in its shard's heap. A
// client has two, embedded in it, so arming a timer allocates nothing.
type timerSlot struct {
	when int64 // gateway clock, nanoseconds
	idx  int32 // position in the heap, -1 when not armed
	kind timerKind
	c    *client
}

func (t *timerSlot) armed() bool { return t.idx >= 0 }

// timerHeap is a min-heap of deadlines, one per shard. The shard keeps a
// single runtime timer armed to the earliest one.
type timerHeap struct {
	h []*timerSlot
}

func (th *timerHeap) len() int { return len(th.h) }

// peek returns the earliest slot, or nil.
func (th *timerHeap) peek() *timerSlot {
	if len(th.h) == 0 {
		return nil
	}
	return th.h[0]
}

// set arms t for when, or moves it there.
func (th *timerHeap) set(t *timerSlot, when int64) {
	if t.idx >= 0 {
		old := t.when
		t.when = when
		if when < old {
			th.up(int(t.idx))
		} else {
			th.down(int(t.idx))
		}
		return
	}
	t.when = when
	t.idx = int32(len(th.h))
	th.h = append(th.h, t)
	th.up(int(t.idx))
}

// stop disarms t.
func (th *timerHeap) stop(t *timerSlot) {
	i := int(t.idx)
	if i < 0 {
		return
	}
	last := len(th.h) - 1
	if i != last {
		th.swap(i, last)
	}
	th.h[last] = nil
	th.h = th.h[:last]
	t.idx = -1
	if i != last {
		th.down(i)
		th.up(i)
	}
	if cap(th.h) > 1024 && len(th.h) < cap(th.h)/4 {
		th.h = append([]*timerSlot(nil), th.h...)
	}
}

// pop removes and returns the earliest slot if it is due at now.
func (th *timerHeap) pop(now int64) *timerSlot {
	t := th.peek()
	if t == nil || t.when > now {
		return nil
	}
	th.stop(t)
	return t
}

func (th *timerHeap) swap(i, j int) {
	th.h[i], th.h[j] = th.h[j], th.h[i]
	th.h[i].idx = int32(i)
	th.h[j].idx = int32(j)
}

func (th *timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if th.h[p].when <= th.h[i].when {
			return
		}
		th.swap(i, p)
		i = p
	}
}

func (th *timerHeap) down(i int) {
	n := len(th.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && th.h[r].when < th.h[l].when {
			m = r
		}
		if th.h[i].when <= th.h[m].when {
			return
		}
		th.swap(i, m)
		i = m
	}
}
