package broker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// rnode is one level of the retained-message tree.
type rnode struct {
	name   string
	parent *rnode
	kids   map[string]*rnode
	msg    *Message
}

// retainedStore holds the retained messages in a tree of topic levels, so
// that a subscription finds its matches without scanning them all.
type retainedStore struct {
	mu    sync.RWMutex
	root  rnode
	bytes int64
	count atomic.Int64 // read by Stats without the lock
}

func (r *retainedStore) lookup(topic string) *rnode {
	n := &r.root
	for rest, more := topic, true; more && n != nil; {
		var level string
		level, rest, more = nextLevel(rest)
		n = n.kids[level]
	}
	return n
}

// create returns the node of topic, creating the path. Caller holds r.mu
// for writing.
func (r *retainedStore) create(topic string) *rnode {
	n := &r.root
	for rest, more := topic, true; more; {
		var level string
		level, rest, more = nextLevel(rest)
		k := n.kids[level]
		if k == nil {
			k = &rnode{name: level, parent: n}
			if n.kids == nil {
				n.kids = make(map[string]*rnode, 1)
			}
			n.kids[level] = k
		}
		n = k
	}
	return n
}

// set stores m as the retained message of its topic, or deletes it when
// the payload is empty. Beyond the bounds of cfg, a new topic is refused
// with ErrQuotaExceeded. With a store, the change is staged under r.mu
// (so that concurrent sets reach the store in order) and added to pb.
func (r *retainedStore) set(m *Message, cfg Config, st *counters, store Store, pb *persistBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.lookup(m.Topic)
	if len(m.Payload) == 0 {
		if n != nil && n.msg != nil {
			r.dropLocked(n)
			if store != nil {
				pb.add(store.Stage([]Change{{Kind: DeleteRetained, Topic: m.Topic}}))
			}
		}
		return nil
	}
	var oldSize int64
	if n != nil && n.msg != nil {
		oldSize = int64(len(n.msg.Payload))
	} else if max := cfg.MaxRetainedMessages; max > 0 && r.count.Load() >= int64(max) {
		st.retainedRejected.Add(1)
		return fmt.Errorf("retain %q: %w: %d retained messages", m.Topic, ErrQuotaExceeded, max)
	}
	size := int64(len(m.Payload))
	if max := cfg.MaxRetainedBytes; max > 0 && r.bytes-oldSize+size > max {
		st.retainedRejected.Add(1)
		return fmt.Errorf("retain %q: %w: %d bytes retained", m.Topic, ErrQuotaExceeded, max)
	}
	if n == nil {
		n = r.create(m.Topic)
	}
	if n.msg == nil {
		r.count.Add(1)
	}
	r.bytes += size - oldSize
	n.msg = m
	if store != nil {
		pb.add(store.Stage([]Change{{Kind: PutRetained, Topic: m.Topic,
			Message: StoredMessage{Msg: m, QoS: m.QoS, Retain: true}}}))
	}
	return nil
}

// dropLocked removes the message of n and prunes empty nodes. Caller holds
// r.mu for writing.
func (r *retainedStore) dropLocked(n *rnode) {
	r.bytes -= int64(len(n.msg.Payload))
	r.count.Add(-1)
	n.msg = nil
	for n != &r.root && n.msg == nil && len(n.kids) == 0 {
		p := n.parent
		delete(p.kids, n.name)
		if len(p.kids) == 0 {
			p.kids = nil
		}
		n = p
	}
}

// each returns the unexpired retained messages matching filter (without a
// $share prefix) and deletes the expired ones it meets (staging their
// deletion in store, if not nil).
func (r *retainedStore) each(filter string, now time.Time, store Store) []*Message {
	var out, expired []*Message
	visit := func(m *Message) {
		if !m.Expiry.IsZero() && !now.Before(m.Expiry) {
			expired = append(expired, m)
			return
		}
		out = append(out, m)
	}
	r.mu.RLock()
	r.walk(&r.root, filter, true, visit)
	r.mu.RUnlock()
	if len(expired) > 0 {
		r.mu.Lock()
		for _, m := range expired {
			if n := r.lookup(m.Topic); n != nil && n.msg == m {
				r.dropLocked(n)
				if store != nil {
					store.Stage([]Change{{Kind: DeleteRetained, Topic: m.Topic}})
				}
			}
		}
		r.mu.Unlock()
	}
	return out
}

// walk visits the messages under n that match filter.
func (r *retainedStore) walk(n *rnode, filter string, first bool, visit func(*Message)) {
	level, rest, more := nextLevel(filter)
	switch level {
	case "#":
		for _, k := range n.kids {
			if first && len(k.name) > 0 && k.name[0] == '$' {
				continue
			}
			r.all(k, visit)
		}
	case "+":
		for _, k := range n.kids {
			if first && len(k.name) > 0 && k.name[0] == '$' {
				continue
			}
			r.step(k, rest, more, visit)
		}
	default:
		if k := n.kids[level]; k != nil {
			r.step(k, rest, more, visit)
		}
	}
}

func (r *retainedStore) step(k *rnode, rest string, more bool, visit func(*Message)) {
	if more {
		if rest == "#" && k.msg != nil {
			visit(k.msg) // "a/#" matches "a"
		}
		r.walk(k, rest, false, visit)
		return
	}
	if k.msg != nil {
		visit(k.msg)
	}
}

// all visits every message at or under n.
func (r *retainedStore) all(n *rnode, visit func(*Message)) {
	if n.msg != nil {
		visit(n.msg)
	}
	for _, k := range n.kids {
		r.all(k, visit)
	}
}

// restore puts a stored retained message back, ignoring bounds.
func (r *retainedStore) restore(m *Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.create(m.Topic)
	if n.msg == nil {
		r.count.Add(1)
	} else {
		r.bytes -= int64(len(n.msg.Payload))
	}
	r.bytes += int64(len(m.Payload))
	n.msg = m
}
