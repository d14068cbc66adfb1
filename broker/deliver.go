package broker

// Outbound delivery: offering messages to a session, the queue and the
// in-flight window, and the pump that calls the Sink.
//
// At most one goroutine at a time calls a session's Sink.Deliver: the one
// that set session.draining. Others that have a message for the session
// queue it and leave; the draining goroutine delivers it before it stops.
// This keeps the delivery order and lets Deliver run with no lock held.

// persistBatch collects the store changes of one publish, and the
// sessions whose delivery waits for them to be durable.
type persistBatch struct {
	changes  []Change
	sessions []*session
}

// blockedLocked reports whether deliveries must wait in the queue.
// Caller holds s.mu.
func (s *session) blockedLocked() bool {
	return s.cur == nil || s.held || s.refused || s.ended
}

// offer gives message m to s for target t. With pb non-nil (a store is
// configured) QoS 1/2 messages of persistent sessions are only queued
// and recorded in pb: the publisher delivers them once they are durable.
func (s *session) offer(m *Message, t *target, pb *persistBatch) {
	it := qitem{msg: m, ids: t.ids, qos: min(m.QoS, t.qos), retain: t.rap && m.Retain}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	if pb != nil && it.qos > 0 && s.expiry > 0 {
		s.msgSeq++
		it.seq = s.msgSeq
		if s.enqueueLocked(it) {
			pb.changes = append(pb.changes, Change{Kind: PutMessage, ClientID: s.id, Message: it.stored()})
			pb.sessions = append(pb.sessions, s)
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
func (s *session) enqueueLocked(it qitem) bool {
	st := &s.srv.stats
	if it.qos == 0 && !s.queueQoS0 && (s.cur == nil || s.refused) {
		st.droppedQoS0.Add(1)
		return false
	}
	if s.queue.len() >= s.srv.cfg.MaxQueuedMessages {
		if !s.evictLocked() {
			st.droppedQueueFull.Add(1)
			s.srv.dropLog(s.id, "queue full: message refused")
			return false
		}
	}
	s.queue.pushBack(it)
	st.queued.Add(1)
	return true
}

// evictLocked makes room in a full queue: it drops the oldest expired
// message, else the oldest QoS 0 one. It reports whether it made room.
func (s *session) evictLocked() bool {
	st := &s.srv.stats
	now := s.srv.clock.Now
	for i := 0; i < s.queue.len(); i++ {
		if s.queue.at(i).expired(now) {
			s.dropQueuedLocked(i)
			st.droppedExpired.Add(1)
			return true
		}
	}
	for i := 0; i < s.queue.len(); i++ {
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
	s.srv.stats.queued.Add(-1)
	s.forgetLocked(it.seq)
}

// nextLocked picks the next delivery: in-flight messages to resend first,
// then first (a message that bypasses the empty queue) or the queue head,
// if the window allows. It marks the choice as sent, optimistically; the
// caller reverts a refusal with refusedLocked, using item for QoS 0. ok is
// false when nothing can be delivered now. Caller holds s.mu.
func (s *session) nextLocked(first *qitem) (d Delivery, item qitem, ok bool) {
	if s.resendN > 0 {
		for i := range s.inflight {
			f := &s.inflight[i]
			if f.resend {
				d = f.delivery()
				f.resend, f.sent = false, true
				s.resendN--
				return d, item, true
			}
		}
	}
	now := s.srv.clock.Now
	for {
		switch {
		case first != nil:
			item = *first
		case s.queue.len() > 0:
			item = *s.queue.at(0)
		default:
			return d, item, false
		}
		if item.expired(now) {
			s.srv.stats.droppedExpired.Add(1)
			if first != nil {
				s.forgetLocked(item.seq)
				return d, item, false
			}
			s.dropQueuedLocked(0)
			continue
		}
		if item.qos > 0 && len(s.inflight) >= int(s.window) {
			if first != nil {
				s.queue.pushBack(item) // offer checks the window: defensive only
				s.srv.stats.queued.Add(1)
			}
			return d, item, false
		}
		if first == nil {
			s.queue.popFront()
			s.srv.stats.queued.Add(-1)
		}
		if item.qos == 0 {
			return Delivery{Msg: item.msg, Retain: item.retain, SubscriptionIDs: item.ids}, item, true
		}
		s.inflight = append(s.inflight, inflight{msg: item.msg, ids: item.ids, seq: item.seq,
			id: s.allocIDLocked(), qos: item.qos, retain: item.retain})
		f := &s.inflight[len(s.inflight)-1]
		d = f.delivery()
		f.sent = true
		s.srv.stats.inflight.Add(1)
		return d, item, true
	}
}

// forgetLocked records that stored message seq of s is gone. Caller holds
// s.mu.
func (s *session) forgetLocked(seq uint64) {
	if seq != 0 {
		s.pendingChanges = append(s.pendingChanges, Change{Kind: DeleteMessage, ClientID: s.id, Message: StoredMessage{Seq: seq}})
	}
}

// allocIDLocked returns a packet identifier not in flight. The window is
// below 65535, so there is always one. Caller holds s.mu.
func (s *session) allocIDLocked() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if s.findInflightLocked(s.nextID) < 0 {
			return s.nextID
		}
	}
}

func (s *session) findInflightLocked(id uint16) int {
	for i := range s.inflight {
		if s.inflight[i].id == id {
			return i
		}
	}
	return -1
}

// refusedLocked undoes a delivery the sink refused: an in-flight message
// is offered again later (its packet ID kept), a QoS 0 one goes back to
// the head of the queue or is dropped. Caller holds s.mu.
func (s *session) refusedLocked(d Delivery, item qitem, wasSent bool) {
	if d.QoS == 0 {
		if s.queueQoS0 {
			s.queue.pushFront(item)
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

// pumpLocked delivers what can be delivered now, starting with first
// (a message that bypasses the empty queue) if non-nil. It is called with
// s.mu held and returns with it released. It calls Sink.Deliver with no
// lock held.
func (s *session) pumpLocked(first *qitem) {
	if s.draining || s.blockedLocked() {
		if first != nil {
			s.enqueueLocked(*first)
		}
		s.unlockAndFlush()
		return
	}
	s.draining = true
	for !s.blockedLocked() {
		d, item, ok := s.nextLocked(first)
		first = nil
		if !ok {
			break
		}
		cur, resumes := s.cur, s.resumes
		wasSent := d.Dup || d.Release
		s.mu.Unlock()
		accepted := cur.sink.Deliver(d)
		s.mu.Lock()
		if accepted {
			s.srv.stats.sent.Add(1)
			continue
		}
		s.refusedLocked(d, item, wasSent)
		if s.cur == cur && s.resumes == resumes {
			s.refused = true
			s.ready.Store(false)
		}
	}
	s.draining = false
	s.unlockAndFlush()
}

// unlockAndFlush releases s.mu and writes the store changes gathered
// under it.
func (s *session) unlockAndFlush() {
	if len(s.pendingChanges) == 0 {
		s.mu.Unlock()
		return
	}
	ch := s.pendingChanges
	s.pendingChanges = nil
	s.mu.Unlock()
	s.srv.apply(ch)
}

// pump delivers what can be delivered now.
func (s *session) pump() {
	s.mu.Lock()
	s.pumpLocked(nil)
}
