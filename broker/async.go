package broker

import (
	"fmt"
	"sync"
	"time"
)

// ErrSubscriberQueueFull is returned (wrapped) for a QoS 1/2 publish that
// a matching subscriber would get at QoS 1/2 while that subscriber's queue
// is full of messages the broker may not evict. It wraps ErrQuotaExceeded,
// so front ends that map ErrQuotaExceeded (MQTT 5 PUBACK 0x97, MQTT-SN
// "rejected: congestion") need nothing more; the publisher keeps the
// message and sends it again later.
var ErrSubscriberQueueFull = fmt.Errorf("%w: a subscriber's queue is full", ErrQuotaExceeded)

// PublishAsync is Publish without waiting for the Store: it routes m now
// (checks, retained store, queues, deliveries of what needs no waiting)
// and calls done once m is routed and, for QoS 1/2 messages to persistent
// sessions and retained messages, durable. done gets the error Publish
// would return (nil, or ErrBadTopic, ErrNotAuthorized, ErrQuotaExceeded,
// ErrSubscriberQueueFull, ErrSessionClosed or a store error, wrapped); the
// front end acknowledges the message only when done reports nil.
//
// done is called exactly once, with no broker lock held, from any
// goroutine: from the calling one, before PublishAsync returns, when there
// is nothing to wait for (no Store, QoS 0, an error, no persistent
// subscriber) and no earlier PublishAsync call of this attachment is
// pending; else from a broker goroutine. The done calls of one attachment
// come in the order of its PublishAsync calls (calls made one after the
// other; concurrent calls have no order). done must not block: it should
// hand the result to the front end's own goroutine. Messages waiting for
// the store are not delivered to persistent subscribers before they are
// durable, as with Publish.
//
// The broker bounds nothing here: the front end bounds its PublishAsync
// calls whose done has not run yet (an MQTT-SN client has at most one).
func (h *Session) PublishAsync(m *Message, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	var (
		pb  *persistBatch
		err error
	)
	switch {
	case h.closed.Load():
		err = ErrSessionClosed
	case m == nil:
		err = fmt.Errorf("publish: %w: nil message", ErrBadTopic)
	default:
		m.From = h.s.id
		pb, err = h.s.srv.stagePublish(m, h.s.id, h.username, true, true)
		h.observePublish(m, err)
	}
	if (pb == nil || pb.last == nil) && h.async.Load() == 0 {
		done(err)
		return
	}
	h.async.Add(1)
	srv := h.s.srv
	srv.lanes[h.s.seq%asyncLanes].push(srv, asyncPub{h: h, pb: pb, err: err, done: done})
}

// asyncLanes is how many goroutines at most (per server) wait for the
// store on behalf of PublishAsync calls. One session's calls always use
// the same lane, which keeps their order.
const asyncLanes = 4

// asyncPub is a PublishAsync call waiting for its store batch.
type asyncPub struct {
	h    *Session
	pb   *persistBatch // nil when there is nothing to wait for
	err  error         // the routing error, if any
	done func(error)
}

// asyncLane is a FIFO of PublishAsync calls and the goroutine that
// completes them. The goroutine runs while the FIFO has work and exits
// when it is empty, so an idle server keeps none. Stores commit in
// staging order, so waiting for the calls one after the other costs one
// wait per group commit.
type asyncLane struct {
	mu      sync.Mutex
	q       []asyncPub
	spare   []asyncPub // the previous batch's array, for reuse
	running bool
}

// push queues p and starts the lane's goroutine if it is not running.
func (l *asyncLane) push(srv *Server, p asyncPub) {
	l.mu.Lock()
	l.q = append(l.q, p)
	if l.running {
		l.mu.Unlock()
		return
	}
	l.running = true
	l.mu.Unlock()
	go l.run(srv)
}

// run completes queued calls, in order, until the FIFO is empty.
func (l *asyncLane) run(srv *Server) {
	for {
		l.mu.Lock()
		if len(l.q) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		batch := l.q
		l.q = l.spare[:0]
		l.spare = nil
		l.mu.Unlock()
		for i := range batch {
			p := &batch[i]
			err := p.err
			if err == nil && p.pb != nil {
				err = p.pb.finish(srv) // releases the queued messages too
			}
			p.done(err)
			p.h.async.Add(-1) // after done: a later call must not overtake it
			*p = asyncPub{}
		}
		if cap(batch) <= 4096 {
			l.mu.Lock()
			l.spare = batch[:0]
			l.mu.Unlock()
		}
	}
}

// checkQueues refuses a QoS 1/2 message when a session that would get it
// at QoS 1/2 has a full queue: it returns ErrSubscriberQueueFull
// (wrapped), counted and logged. sc holds the match of m, or is nil to
// match here.
func (srv *Server) checkQueues(m *Message, sc *matchScratch) error {
	if sc == nil {
		sc = scratchPool.Get().(*matchScratch)
		srv.tree.match(m.Topic, m.From, sc)
		defer sc.release()
	}
	for i := range sc.targets {
		t := &sc.targets[i]
		if min(m.QoS, t.qos) > 0 && t.sess.congested() {
			srv.refuseLog(t.sess, m)
			return fmt.Errorf("publish to %q: %w: subscriber %q", m.Topic, ErrSubscriberQueueFull, t.sess.id)
		}
	}
	return nil
}

// congested reports whether s cannot queue another QoS 1/2 message: its
// queue is at the bound and holds nothing to evict (no QoS 0 message, no
// expired one). It takes s.mu only when s.full is set.
func (s *session) congested() bool {
	if !s.full.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	if s.queue.len() < s.srv.cfg.MaxQueuedMessages {
		s.full.Store(false)
		return false
	}
	if s.queue.qos0 > 0 {
		return false
	}
	clock := s.srv.clock
	for i := 0; s.queue.expiring > 0 && i < s.queue.len(); i++ {
		if s.queue.at(i).expired(clock) {
			return false
		}
	}
	return true
}

// refuseLog counts a publish refused for subscriber s's full queue and
// logs it, at most once a second (sharing dropLog's budget).
func (srv *Server) refuseLog(s *session, m *Message) {
	n := srv.stats.refusedQueueFull.Add(1)
	now := time.Now().UnixNano()
	last := srv.dropLogAt.Load()
	if now-last < int64(time.Second) || !srv.dropLogAt.CompareAndSwap(last, now) {
		return
	}
	srv.log.Warn("queue full: QoS 1/2 publish refused (quota exceeded)", "subscriber", s.id,
		"publisher", m.From, "topic", m.Topic, "refused_total", n)
}
