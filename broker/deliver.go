package broker

import "slices"

// Outbound delivery: offering messages to a session, the queue and the
// in-flight window, and the pump that calls the Sink.
//
// At most one goroutine at a time calls a session's Sink.Deliver: the one
// that set session.draining. Others that have a message for the session
// queue it and leave; the draining goroutine delivers it before it stops.
// This keeps the delivery order and lets Deliver run with no lock held.

// persistBatch follows the store changes staged by one publish (or
// subscribe): the last commit to wait for, and the messages whose
// delivery waits for it.
type persistBatch struct {
	last    Commit
	waiting []waitingMsg
}

// add records that c (nil: nothing staged) holds changes of the batch.
// Stores commit in staging order, so waiting for the last one is enough.
func (pb *persistBatch) add(c Commit) {
	if c != nil {
		pb.last = c
	}
}

// finish waits until the batch is durable, then releases its messages.
func (pb *persistBatch) finish(srv *Server) error {
	if pb.last == nil {
		return nil
	}
	err := srv.wait(pb.last)
	pb.synced()
	return err
}

// waitingMsg is a queued message of session s (store key seq) that waits
// for a batch to be durable.
type waitingMsg struct {
	s   *session
	seq uint64
}

// synced releases the messages of pb once its changes are durable (or
// failed to be: the message is then delivered from memory).
func (pb *persistBatch) synced() {
	for _, w := range pb.waiting {
		s := w.s
		s.mu.Lock()
		for i := 0; i < s.queue.len(); i++ {
			if it := s.queue.at(i); it.seq == w.seq {
				it.unsynced = false
				break
			}
		}
		s.pumpLocked(nil)
	}
}

// blockedLocked reports whether deliveries must wait in the queue.
// Caller holds s.mu.
func (s *session) blockedLocked() bool {
	return s.cur == nil || s.held || s.refused || s.ended
}

// offer gives message m to s for target t. With pb non-nil (a store is
// configured) QoS 1/2 messages of persistent sessions are only queued
// and recorded in pb: the publisher delivers them once they are durable.
// admitted says that the publisher passed the queue check (checkQueues):
// a QoS 1/2 delivery is then queued even when the queue is full.
func (s *session) offer(m *Message, t *target, pb *persistBatch, admitted bool) {
	it := qitem{msg: m, ids: t.ids, qos: min(m.QoS, t.qos), retain: t.rap && m.Retain}
	it.admitted = admitted && it.qos > 0
	if !it.admitted && s.full.Load() {
		s.srv.stats.droppedQueueFull.Add(1)
		return
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	if pb != nil && it.qos > 0 && s.expiry > 0 {
		if s.ps == nil {
			s.ps = &persistState{}
		}
		s.ps.msgSeq++
		it.seq = s.ps.msgSeq
		it.unsynced = true
		if s.enqueueLocked(it) {
			pb.add(s.stageLocked(Change{Kind: PutMessage, ClientID: s.id, Message: it.stored()}))
			pb.waiting = append(pb.waiting, waitingMsg{s: s, seq: it.seq})
		}
		s.mu.Unlock()
		return
	}
	if s.blockedLocked() || s.draining || s.queue.len() > 0 || s.resendN > 0 ||
		(it.qos > 0 && len(s.inflight) >= int(s.window)) {
		s.enqueueLocked(it)
		s.pumpLocked(nil)
		return
	}
	s.pumpLocked(&it)
}

// enqueueLocked appends it to the queue, applying the QoS 0 policy and
// the queue bound. It reports whether it was queued. Caller holds s.mu.
//
// An admitted item (a QoS 1/2 message whose publisher passed
// checkQueues, and may be acknowledged) is never refused: if the queue
// filled up between the check and now (a concurrent publisher), it goes
// above the bound. The overshoot is small: once the queue is full,
// s.full is set and checkQueues refuses new QoS 1/2 publishes, so only
// publishes already past the check overshoot.
func (s *session) enqueueLocked(it qitem) bool {
	st := &s.srv.stats
	if it.qos == 0 && !s.queueQoS0 && (s.cur == nil || s.refused) {
		st.droppedQoS0.Add(1)
		return false
	}
	max := s.srv.cfg.MaxQueuedMessages
	if s.queue.len() >= max && !s.evictLocked() {
		s.full.Store(true)
		if !it.admitted {
			st.droppedQueueFull.Add(1)
			s.srv.dropLog(s.id, "queue full: message refused")
			return false
		}
	}
	s.queue.pushBack(it)
	st.queued.Add(1)
	if s.queue.len() >= max && s.queue.qos0 == 0 && s.queue.expiring == 0 {
		// Full with nothing to evict: refuse QoS 1/2 publishes from now.
		s.full.Store(true)
	}
	return true
}

// evictLocked makes room in a full queue: it drops the oldest expired
// message, else the oldest QoS 0 one. It reports whether it made room.
func (s *session) evictLocked() bool {
	st := &s.srv.stats
	clock := s.srv.clock
	for i := 0; s.queue.expiring > 0 && i < s.queue.len(); i++ {
		if s.queue.at(i).expired(clock) {
			s.dropQueuedLocked(i)
			st.droppedExpired.Add(1)
			return true
		}
	}
	for i := 0; s.queue.qos0 > 0 && i < s.queue.len(); i++ {
		if s.queue.at(i).qos == 0 {
			s.dropQueuedLocked(i)
			st.droppedQueueFull.Add(1)
			s.srv.dropLog(s.id, "queue full: oldest QoS 0 message dropped")
			return true
		}
	}
	return false
}

func (s *session) dropQueuedLocked(i int) {
	it := s.queue.removeAt(i)
	s.full.Store(false)
	s.srv.stats.queued.Add(-1)
	s.forgetLocked(it.seq)
}

// nextLocked picks the next delivery: in-flight messages to resend first,
// then first (a message that bypasses the empty queue) or the queue head,
// if the window allows. It marks the choice as sent, optimistically; the
// caller reverts a refusal with refusedLocked, using item for QoS 0. ok is
// false when nothing can be delivered now. Caller holds s.mu.
func (s *session) nextLocked(first *qitem, d *Delivery, item *qitem) bool {
	if s.resendN > 0 {
		for i := range s.inflight {
			f := &s.inflight[i]
			if f.resend {
				if f.syncGen != 0 {
					return false // wait for its packet ID to be durable, keeping the order
				}
				*d = f.delivery()
				f.resend, f.sent = false, true
				s.resendN--
				return true
			}
		}
	}
	clock := s.srv.clock
	for {
		var it *qitem
		switch {
		case first != nil:
			it = first
		case s.queue.len() > 0:
			it = s.queue.at(0)
		default:
			return false
		}
		if it.expired(clock) {
			s.srv.stats.droppedExpired.Add(1)
			if first != nil {
				s.forgetLocked(it.seq)
				return false
			}
			s.dropQueuedLocked(0)
			continue
		}
		if it.unsynced || (it.qos > 0 && len(s.inflight) >= int(s.window)) {
			if first != nil {
				s.queue.pushBack(*it) // offer checks the window: defensive only
				s.srv.stats.queued.Add(1)
			}
			return false
		}
		*item = *it
		if first == nil {
			s.queue.popFront()
			if s.full.Load() {
				s.full.Store(false)
			}
			s.srv.stats.queued.Add(-1)
		}
		if item.qos == 0 {
			*d = Delivery{Msg: item.msg, Retain: item.retain, SubscriptionIDs: item.ids}
			return true
		}
		s.inflight = append(s.inflight, inflight{msg: item.msg, ids: item.ids, seq: item.seq,
			id: s.allocIDLocked(), qos: item.qos, retain: item.retain})
		s.srv.stats.inflight.Add(1)
		f := &s.inflight[len(s.inflight)-1]
		if f.qos == 2 && f.seq != 0 {
			s.syncLocked(f)
			return false
		}
		*d = f.delivery()
		f.sent = true
		return true
	}
}

// syncLocked makes the packet ID of stored QoS 2 message f durable before
// f is offered, so that a crash cannot make the broker send it again as a
// new message (under a new packet ID, without Dup), which the client would
// deliver twice. f waits as a resend entry; a goroutine waits for the
// commit, then pumps. The caller stops picking deliveries (order). Caller
// holds s.mu.
func (s *session) syncLocked(f *inflight) {
	sm := f.stored()
	sm.Sent = true // after a crash: resent with Dup and the same packet ID
	c := s.stageLocked(Change{Kind: PutMessage, ClientID: s.id, Message: sm})
	s.ps.syncGen++
	gen := s.ps.syncGen
	f.syncGen, f.resend = gen, true
	s.resendN++
	go func() {
		_ = s.srv.wait(c) // on failure, deliver anyway: the store has failed for good
		s.mu.Lock()
		for i := range s.inflight {
			if g := s.inflight[i].syncGen; g != 0 && g <= gen {
				s.inflight[i].syncGen = 0
			}
		}
		s.pumpLocked(nil)
	}()
}

// forgetLocked stages the removal of stored message seq of s (acked,
// expired or dropped); it is not waited for: if it is lost, the message is
// delivered again (with Dup) after a restart. Caller holds s.mu.
func (s *session) forgetLocked(seq uint64) {
	if seq != 0 && !s.ended {
		s.stageLocked(Change{Kind: DeleteMessage, ClientID: s.id, Message: StoredMessage{Seq: seq}})
	}
}

// allocIDLocked returns a packet identifier not in flight; there is
// always one, since fewer than 65535 messages are in flight when it is
// called. IDs are handed out in sequence and s.inflight is kept in
// allocation order, so every ID in flight lies on the arc from the oldest
// entry's ID to the newest one's: a candidate off that arc is free without
// a search. Caller holds s.mu.
func (s *session) allocIDLocked() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		n := len(s.inflight)
		if n == 0 {
			return s.nextID
		}
		first, last := s.inflight[0].id, s.inflight[n-1].id
		if s.nextID-first > last-first || s.findInflightLocked(s.nextID) < 0 {
			return s.nextID
		}
	}
}

// removeInflightLocked removes entry i, keeping the order. Acks usually
// come in order, so removing the first entry is O(1). Caller holds s.mu.
func (s *session) removeInflightLocked(i int) {
	switch {
	case len(s.inflight) == 1:
		s.inflight[0] = inflight{}
		s.inflight = s.inflight[:0] // keep the array: no allocation per message
		if cap(s.inflight) > 64 {
			s.inflight = nil
		}
	case i == 0:
		s.inflight[0] = inflight{}
		s.inflight = s.inflight[1:]
	default:
		s.inflight = slices.Delete(s.inflight, i, i+1)
	}
	s.srv.stats.inflight.Add(-1)
}

func (s *session) findInflightLocked(id uint16) int {
	for i := range s.inflight {
		if s.inflight[i].id == id {
			return i
		}
	}
	return -1
}

// refusedLocked undoes a delivery the sink refused (or one of the same
// batch that was not offered, refused false): an in-flight message is
// offered again later (its packet ID kept), a QoS 0 one goes back to the
// head of the queue, or is dropped if the session does not queue QoS 0
// and the sink refused it. Caller holds s.mu.
func (s *session) refusedLocked(d *Delivery, item *qitem, wasSent, refused bool) {
	if d.QoS == 0 {
		if s.queueQoS0 || !refused {
			s.queue.pushFront(*item)
			s.srv.stats.queued.Add(1)
		} else {
			s.srv.stats.droppedQoS0.Add(1)
		}
		return
	}
	if i := s.findInflightLocked(d.PacketID); i >= 0 {
		f := &s.inflight[i]
		if !f.resend {
			f.resend, f.sent = true, wasSent
			s.resendN++
		}
	}
}

// pumpBatch is how many deliveries the pump takes per lock acquisition.
const pumpBatch = 16

// offered is one delivery taken by the pump.
type offered struct {
	d       Delivery
	item    qitem // the queue item, to re-queue a refused QoS 0 message
	wasSent bool  // for QoS 1/2: accepted by a sink before this offer
}

// pumpLocked delivers what can be delivered now, starting with first
// (a message that bypasses the empty queue) if non-nil. It is called with
// s.mu held and returns with it released. It calls Sink.Deliver with no
// lock held, taking up to pumpBatch deliveries per lock acquisition.
func (s *session) pumpLocked(first *qitem) {
	if s.draining || s.blockedLocked() {
		if first != nil {
			s.enqueueLocked(*first)
		}
		s.mu.Unlock()
		return
	}
	s.draining = true
	var batch [pumpBatch]offered
	for !s.blockedLocked() {
		n := 0
		for ; n < pumpBatch; n++ {
			o := &batch[n]
			if !s.nextLocked(first, &o.d, &o.item) {
				break
			}
			first = nil
			o.wasSent = o.d.Dup || o.d.Release
		}
		first = nil
		if n == 0 {
			break
		}
		cur, resumes := s.cur, s.resumes
		s.mu.Unlock()
		taken := 0
		for taken < n && cur.sink.Deliver(batch[taken].d) {
			taken++
		}
		s.mu.Lock()
		s.srv.stats.sent.Add(uint64(taken))
		if taken < n && !s.ended {
			// Undo the refused delivery and those not offered, last first
			// so that re-queued QoS 0 messages keep their order.
			for i := n - 1; i >= taken; i-- {
				s.refusedLocked(&batch[i].d, &batch[i].item, batch[i].wasSent, i == taken)
			}
			if s.cur == cur && s.resumes == resumes {
				s.refused = true
				s.ready.Store(false)
			}
		}
		clear(batch[:n])
		if s.ended {
			break
		}
	}
	s.draining = false
	s.mu.Unlock()
}
