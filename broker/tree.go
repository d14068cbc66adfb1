package broker

import (
	"slices"
	"sync"
	"sync/atomic"
)

// subRecord is one subscription of one session, as stored in the tree. It
// is immutable once inserted, except idx, which only the tree's writer
// touches: a changed subscription gets a new record.
type subRecord struct {
	sess  *session
	sub   Subscription // Filter is the full filter, with any $share prefix
	node  *node
	group *shareGroup // nil unless shared
	idx   int         // index in node.subs or group.members
	ids   []uint32    // []uint32{sub.ID}, or nil; shared by deliveries
}

// shareGroup is one $share group on one filter.
type shareGroup struct {
	name    string
	members []*subRecord
	next    atomic.Uint32 // round-robin cursor
}

// smallKids is how many children a node keeps in a slice before it
// switches to a map.
const smallKids = 8

// node is one level of the subscription tree. What most nodes lack (many
// children, wildcard children, share groups) lives in x, to keep idle
// subscriptions small.
type node struct {
	name   string
	parent *node
	kids   []*node // children while there are few
	subs   []*subRecord
	x      *nodeExt
}

type nodeExt struct {
	kidMap map[string]*node // children once there are many
	plus   *node            // the "+" child
	hash   *node            // the "#" child
	groups []*shareGroup
}

func (n *node) ext() *nodeExt {
	if n.x == nil {
		n.x = &nodeExt{}
	}
	return n.x
}

func (n *node) plus() *node {
	if n.x == nil {
		return nil
	}
	return n.x.plus
}

func (n *node) hash() *node {
	if n.x == nil {
		return nil
	}
	return n.x.hash
}

func (n *node) groups() []*shareGroup {
	if n.x == nil {
		return nil
	}
	return n.x.groups
}

// tidy drops an empty extension.
func (n *node) tidy() {
	if x := n.x; x != nil && len(x.kidMap) == 0 && x.plus == nil && x.hash == nil && len(x.groups) == 0 {
		n.x = nil
	}
}

func (n *node) child(name string) *node {
	if n.x != nil && n.x.kidMap != nil {
		return n.x.kidMap[name]
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

func (n *node) addChild(name string) *node {
	switch name {
	case "+":
		x := n.ext()
		if x.plus == nil {
			x.plus = &node{name: name, parent: n}
		}
		return x.plus
	case "#":
		x := n.ext()
		if x.hash == nil {
			x.hash = &node{name: name, parent: n}
		}
		return x.hash
	}
	if k := n.child(name); k != nil {
		return k
	}
	k := &node{name: name, parent: n}
	if n.x != nil && n.x.kidMap != nil {
		n.x.kidMap[name] = k
		return k
	}
	if len(n.kids) < smallKids {
		n.kids = append(n.kids, k)
		return k
	}
	m := make(map[string]*node, 2*smallKids)
	for _, c := range n.kids {
		m[c.name] = c
	}
	m[name] = k
	n.kids = nil
	n.ext().kidMap = m
	return k
}

func (n *node) removeChild(k *node) {
	switch x := n.x; {
	case x != nil && x.plus == k:
		x.plus = nil
	case x != nil && x.hash == k:
		x.hash = nil
	case x != nil && x.kidMap != nil:
		delete(x.kidMap, k.name)
	default:
		if i := slices.Index(n.kids, k); i >= 0 {
			n.kids = slices.Delete(n.kids, i, i+1)
			if len(n.kids) == 0 {
				n.kids = nil
			}
		}
	}
	n.tidy()
}

func (n *node) empty() bool {
	return len(n.subs) == 0 && len(n.kids) == 0 && n.x == nil
}

// tree is the subscription tree. Its lock also guards every session's
// subscription list (session.subs, session.nsubs).
type tree struct {
	mu   sync.RWMutex
	root node
	// count and shared are gauges for Stats.
	count  atomic.Int64
	shared atomic.Int64
}

// insert adds or replaces the subscription rec.sub.Filter of rec.sess,
// whose filter proper (no $share prefix) is filter. It returns whether the
// subscription is new. Caller holds t.mu for writing.
func (t *tree) insert(rec *subRecord, group, filter string) (isNew bool) {
	n := &t.root
	for rest, more := filter, true; more; {
		var level string
		level, rest, more = nextLevel(rest)
		n = n.addChild(level)
	}
	rec.node = n
	s := rec.sess
	if old := s.findSub(rec.sub.Filter); old != nil {
		// Replace in place, keeping the position.
		rec.idx, rec.group = old.idx, old.group
		if old.group != nil {
			old.group.members[old.idx] = rec
		} else {
			n.subs[old.idx] = rec
		}
		s.replaceSub(old, rec)
		return false
	}
	if group != "" {
		var g *shareGroup
		for _, x := range n.groups() {
			if x.name == group {
				g = x
				break
			}
		}
		if g == nil {
			g = &shareGroup{name: group}
			n.ext().groups = append(n.ext().groups, g)
		}
		rec.group, rec.idx = g, len(g.members)
		g.members = append(g.members, rec)
		t.shared.Add(1)
	} else {
		rec.idx = len(n.subs)
		n.subs = append(n.subs, rec)
		s.nsubs++
	}
	s.addSub(rec)
	t.count.Add(1)
	return true
}

// remove deletes rec from the tree and prunes empty nodes. Caller holds
// t.mu for writing and removes rec from its session's list.
func (t *tree) remove(rec *subRecord) {
	n := rec.node
	if g := rec.group; g != nil {
		last := len(g.members) - 1
		g.members[rec.idx] = g.members[last]
		g.members[rec.idx].idx = rec.idx
		g.members[last] = nil
		g.members = g.members[:last]
		if last == 0 {
			x := n.x
			i := slices.Index(x.groups, g)
			x.groups = slices.Delete(x.groups, i, i+1)
			if len(x.groups) == 0 {
				x.groups = nil
			}
			n.tidy()
		}
		t.shared.Add(-1)
	} else {
		last := len(n.subs) - 1
		n.subs[rec.idx] = n.subs[last]
		n.subs[rec.idx].idx = rec.idx
		n.subs[last] = nil
		n.subs = n.subs[:last]
		if last == 0 {
			n.subs = nil
		}
		rec.sess.nsubs--
	}
	t.count.Add(-1)
	for n != &t.root && n.empty() {
		p := n.parent
		p.removeChild(n)
		n = p
	}
}

// target is one session a message goes to, with the merged options of its
// matching subscriptions.
type target struct {
	sess *session
	ids  []uint32
	qos  QoS
	rap  bool // Retain As Published
}

// matchScratch holds the buffers of one match, reused through a pool so
// that matching does not allocate.
type matchScratch struct {
	recs    []*subRecord // non-shared matches of sessions with several subscriptions
	targets []target
}

var scratchPool = sync.Pool{New: func() any { return new(matchScratch) }}

// match finds the sessions that get a message on topic from client from,
// with No Local applied, overlapping subscriptions of a session merged
// (maximum QoS, all subscription identifiers) and one member picked per
// matching share group. The result is in sc.targets.
func (t *tree) match(topic, from string, sc *matchScratch) {
	sc.targets = sc.targets[:0]
	sc.recs = sc.recs[:0]
	t.mu.RLock()
	t.walk(&t.root, topic, true, from, sc)
	t.mu.RUnlock()
	if len(sc.recs) > 0 {
		sc.mergeRecs()
	}
}

func (t *tree) walk(n *node, topic string, first bool, from string, sc *matchScratch) {
	level, rest, more := nextLevel(topic)
	if k := n.child(level); k != nil {
		t.step(k, rest, more, from, sc)
	}
	x := n.x
	if x == nil || (first && level != "" && level[0] == '$') {
		return
	}
	if x.hash != nil {
		sc.collect(x.hash, from)
	}
	if x.plus != nil {
		t.step(x.plus, rest, more, from, sc)
	}
}

func (t *tree) step(k *node, rest string, more bool, from string, sc *matchScratch) {
	if more {
		t.walk(k, rest, false, from, sc)
		return
	}
	sc.collect(k, from)
	if h := k.hash(); h != nil {
		sc.collect(h, from) // "a/#" matches "a"
	}
}

// collect adds the subscriptions of n. Caller holds the tree's read lock.
func (sc *matchScratch) collect(n *node, from string) {
	for _, r := range n.subs {
		if r.sub.NoLocal && from != "" && r.sess.id == from {
			continue
		}
		if r.sess.nsubs > 1 {
			sc.recs = append(sc.recs, r) // may overlap: merged later
			continue
		}
		sc.targets = append(sc.targets, target{sess: r.sess, ids: r.ids, qos: r.sub.QoS, rap: r.sub.RetainAsPublished})
	}
	for _, g := range n.groups() {
		if r := g.pick(); r != nil {
			sc.targets = append(sc.targets, target{sess: r.sess, ids: r.ids, qos: r.sub.QoS, rap: r.sub.RetainAsPublished})
		}
	}
}

// pick chooses the next member of g round-robin, preferring members whose
// client is connected and taking deliveries. Caller holds the tree's read
// lock.
func (g *shareGroup) pick() *subRecord {
	n := uint32(len(g.members))
	if n == 0 {
		return nil
	}
	start := g.next.Add(1) - 1
	for i := range n {
		r := g.members[(start+i)%n]
		if r.sess.ready.Load() {
			if i > 0 {
				g.next.Store(start + i + 1)
			}
			return r
		}
	}
	return g.members[start%n]
}

// mergeRecs merges the subscriptions of sessions that matched more than
// once and appends one target per session.
func (sc *matchScratch) mergeRecs() {
	recs := sc.recs
	if len(recs) > 1 {
		slices.SortFunc(recs, func(a, b *subRecord) int {
			switch {
			case a.sess.seq < b.sess.seq:
				return -1
			case a.sess.seq > b.sess.seq:
				return 1
			}
			return 0
		})
	}
	for i := 0; i < len(recs); {
		r := recs[i]
		tg := target{sess: r.sess, ids: r.ids, qos: r.sub.QoS, rap: r.sub.RetainAsPublished}
		j := i + 1
		for ; j < len(recs) && recs[j].sess == r.sess; j++ {
			o := recs[j]
			tg.qos = max(tg.qos, o.sub.QoS)
			tg.rap = tg.rap || o.sub.RetainAsPublished
			if len(o.ids) > 0 {
				if len(tg.ids) == 0 {
					tg.ids = o.ids
				} else {
					merged := make([]uint32, 0, len(tg.ids)+len(o.ids))
					tg.ids = append(append(merged, tg.ids...), o.ids...)
				}
			}
		}
		sc.targets = append(sc.targets, tg)
		i = j
	}
	clear(sc.recs)
}

// release clears references and returns sc to the pool.
func (sc *matchScratch) release() {
	clear(sc.targets)
	sc.targets = sc.targets[:0]
	if cap(sc.targets) > 4096 {
		sc.targets = nil
	}
	if cap(sc.recs) > 4096 {
		sc.recs = nil
	}
	scratchPool.Put(sc)
}
