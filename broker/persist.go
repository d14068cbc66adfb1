package broker

// saveSession writes the session record of s to the store: PutSession for
// a persistent session, DeleteSession for one that stopped being
// persistent. Without a store it does nothing.
func (srv *Server) saveSession(s *session) {
	if srv.store == nil {
		return
	}
	srv.tree.mu.RLock()
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		srv.tree.mu.RUnlock()
		return
	}
	var ch Change
	if s.ps == nil {
		s.ps = &persistState{}
	}
	switch {
	case s.expiry > 0:
		rec := &SessionRecord{ClientID: s.id, Username: s.username, Expiry: s.expiry,
			QueueQoS0: s.queueQoS0}
		if s.off != nil {
			rec.DisconnectedAt = s.off.disconnectedAt
		}
		rec.Subscriptions = make([]Subscription, len(s.subs))
		for i, r := range s.subs {
			rec.Subscriptions[i] = r.sub
		}
		switch {
		case s.cur != nil && s.will != nil:
			rec.Will = cloneWill(s.will)
		case s.cur == nil && s.off != nil && s.off.pendingWill != nil:
			rec.Will = cloneWill(s.off.pendingWill)
		}
		ch = Change{Kind: PutSession, ClientID: s.id, Session: rec}
		s.ps.persisted = true
	case s.ps.persisted:
		ch = Change{Kind: DeleteSession, ClientID: s.id}
		s.ps.persisted = false
	default:
		s.mu.Unlock()
		srv.tree.mu.RUnlock()
		return
	}
	s.mu.Unlock()
	srv.tree.mu.RUnlock()
	srv.apply([]Change{ch})
}

// restore rebuilds the state saved in snap: every session comes back
// offline, with its subscriptions, queue and in-flight messages; its
// expiry and will delay count from its disconnection (or from now if it
// was connected when the state was saved).
func (srv *Server) restore(snap Snapshot) {
	now := srv.clock.Now()
	for _, m := range snap.Retained {
		if m != nil && m.Topic != "" && len(m.Payload) > 0 {
			srv.retained.restore(m)
		}
	}
	for i := range snap.Sessions {
		rec := &snap.Sessions[i]
		if checkClientID(rec.ClientID) != nil || rec.Expiry <= 0 || srv.sessions[rec.ClientID] != nil {
			continue
		}
		srv.nextSeq++
		s := &session{srv: srv, id: rec.ClientID, seq: srv.nextSeq, username: rec.Username,
			expiry: rec.Expiry, queueQoS0: rec.QueueQoS0, window: srv.cfg.MaxInflight,
			ps: &persistState{persisted: true}, off: &offState{}}
		since := rec.DisconnectedAt
		if since.IsZero() {
			since = now
		}
		s.off.disconnectedAt = since
		srv.tree.mu.Lock()
		for _, sub := range rec.Subscriptions {
			group, filter, err := srv.limits.checkFilter(sub.Filter)
			if err != nil {
				continue
			}
			srv.tree.insert(&subRecord{sess: s, sub: sub, ids: idsFor(sub.ID)}, group, filter)
		}
		srv.tree.mu.Unlock()
		for _, sm := range rec.Messages {
			if sm.Msg == nil {
				continue
			}
			s.ps.msgSeq = max(s.ps.msgSeq, sm.Seq)
			if sm.PacketID != 0 && sm.QoS > 0 {
				s.inflight = append(s.inflight, inflight{msg: sm.Msg, ids: sm.SubIDs, seq: sm.Seq, id: sm.PacketID,
					qos: sm.QoS, retain: sm.Retain, sent: sm.Sent, released: sm.Released})
				s.nextID = sm.PacketID // messages come in delivery order
				srv.stats.inflight.Add(1)
				continue
			}
			s.queue.pushBack(qitem{msg: sm.Msg, ids: sm.SubIDs, seq: sm.Seq, qos: sm.QoS, retain: sm.Retain})
			srv.stats.queued.Add(1)
		}
		if w := rec.Will; w != nil {
			s.off.pendingWill = cloneWill(w)
			if w.Delay < s.expiry {
				s.off.willTimer = srv.sched.add(since.Add(w.Delay), func(e *timerEntry) { srv.willDue(s, e) })
			}
		}
		if s.expiry != NoExpiry {
			s.off.expiryTimer = srv.sched.add(since.Add(s.expiry), func(e *timerEntry) { srv.expire(s, e) })
		}
		srv.sessions[s.id] = s
		srv.stats.sessions.Add(1)
	}
}
