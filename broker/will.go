package broker

// willDue publishes the pending will of s when its delay timer e fires.
func (srv *Server) willDue(s *session, e *timerEntry) {
	s.mu.Lock()
	o := s.off
	if o == nil || o.willTimer != e || s.cur != nil || s.ended {
		s.mu.Unlock()
		return
	}
	w, username := o.pendingWill, s.username
	o.pendingWill, o.willTimer = nil, nil
	s.mu.Unlock()
	if w != nil {
		srv.publishWill(s.id, username, w)
	}
	srv.saveSession(s)
}

// publishWill publishes a client's will. The ACL is checked again, since
// it may have been reloaded since the will was set.
func (srv *Server) publishWill(clientID, username string, w *Will) {
	m := w.Msg // a copy: the will may be published only once, but stay safe
	m.From = clientID
	if w.MsgExpiry > 0 {
		m.Expiry = srv.clock.Now().Add(w.MsgExpiry)
	}
	if err := srv.publish(&m, clientID, username, true, false); err != nil {
		srv.log.Info("will not published", "client", clientID, "topic", m.Topic, "err", err)
		return
	}
	srv.stats.wills.Add(1)
	srv.log.Debug("will published", "client", clientID, "topic", m.Topic)
}
