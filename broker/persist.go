package broker

import (
	"fmt"
	"time"
)

// stageLocked stages one store change of s and returns its commit. Caller
// holds s.mu and srv.store is set. Staging under s.mu keeps a session's
// changes in the order they happened.
func (s *session) stageLocked(c Change) Commit {
	if s.ps == nil {
		s.ps = &persistState{}
	}
	s.ps.one[0] = c
	cm := s.srv.store.Stage(s.ps.one[:])
	s.ps.one[0] = Change{}
	return cm
}

// wait waits until commit c is durable (nil: nothing was staged). A
// failure is counted, logged (at most once a second) and returned.
func (srv *Server) wait(c Commit) error {
	if c == nil {
		return nil
	}
	err := c.Wait()
	if err == nil {
		return nil
	}
	srv.stats.storeErrors.Add(1)
	now := time.Now().UnixNano()
	if last := srv.storeLogAt.Load(); now-last >= int64(time.Second) && srv.storeLogAt.CompareAndSwap(last, now) {
		srv.log.Error("store write failed: state changes are not durable", "err", err,
			"errors_total", srv.stats.storeErrors.Load())
	}
	return fmt.Errorf("broker: store: %w", err)
}

// doneCommit is a Commit that has already ended with err.
type doneCommit struct{ err error }

// Wait returns the commit's error at once.
func (c doneCommit) Wait() error { return c.err }

// countedCommit is a store Commit handed to a front end: a failure is
// counted and logged like the broker's own.
type countedCommit struct {
	srv *Server
	c   Commit
}

// Wait waits for the commit (see Server.wait).
func (c countedCommit) Wait() error { return c.srv.wait(c.c) }

// saveSession stages the session record of s: PutSession for a
// persistent session, DeleteSession for one that stopped being
// persistent. It returns the commit to wait for, nil when nothing was
// staged (no store, or nothing to write).
func (srv *Server) saveSession(s *session) Commit {
	if srv.store == nil {
		return nil
	}
	srv.tree.mu.RLock()
	defer srv.tree.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	if s.ps == nil {
		s.ps = &persistState{}
	}
	switch {
	case s.expiry > 0:
		rec := &SessionRecord{ClientID: s.id, Username: s.username, Expiry: s.expiry,
			QueueQoS0: s.queueQoS0, FrontendState: s.fe}
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
		s.ps.persisted = true
		return s.stageLocked(Change{Kind: PutSession, ClientID: s.id, Session: rec})
	case s.ps.persisted:
		s.ps.persisted = false
		return s.stageLocked(Change{Kind: DeleteSession, ClientID: s.id})
	}
	return nil
}

// restore rebuilds the state saved in snap: every session comes back
// offline, with its subscriptions, queue and in-flight messages; its
// expiry and will delay count from its disconnection (or from now if it
// was connected when the state was saved). Retained messages that expired
// meanwhile are dropped from the store.
func (srv *Server) restore(snap Snapshot) {
	now := srv.clock.Now()
	var gone []Change
	for _, m := range snap.Retained {
		if m == nil || m.Topic == "" || len(m.Payload) == 0 {
			continue
		}
		if !m.Expiry.IsZero() && !now.Before(m.Expiry) {
			gone = append(gone, Change{Kind: DeleteRetained, Topic: m.Topic})
			continue
		}
		srv.retained.restore(m)
	}
	if len(gone) > 0 {
		srv.store.Stage(gone)
	}
	var restored []*session
	for i := range snap.Sessions {
		rec := &snap.Sessions[i]
		if checkClientID(rec.ClientID) != nil || rec.Expiry <= 0 || srv.sessions[rec.ClientID] != nil {
			continue
		}
		srv.nextSeq++
		s := &session{srv: srv, id: rec.ClientID, seq: srv.nextSeq, username: rec.Username,
			expiry: rec.Expiry, queueQoS0: rec.QueueQoS0, window: srv.cfg.MaxInflight,
			ps: &persistState{persisted: true}, off: &offState{}, fe: rec.FrontendState}
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
		}
		srv.sessions[s.id] = s
		srv.stats.sessions.Add(1)
		restored = append(restored, s)
	}
	// Timers last, under s.mu: one already due fires at once, in another
	// goroutine, which must find the session complete.
	for _, s := range restored {
		s.mu.Lock()
		since := s.off.disconnectedAt
		if w := s.off.pendingWill; w != nil && w.Delay < s.expiry {
			s.off.willTimer = srv.sched.add(since.Add(w.Delay), func(e *timerEntry) { srv.willDue(s, e) })
		}
		if s.expiry != NoExpiry {
			s.off.expiryTimer = srv.sched.add(since.Add(s.expiry), func(e *timerEntry) { srv.expire(s, e) })
		}
		s.mu.Unlock()
	}
}
