package broker

import (
	"errors"
	"testing"
	"time"
)

func TestCleanSessionEndsAtDisconnect(t *testing.T) {
	srv := newServer(t, testConfig())
	s, _ := conn(t, srv, "c")
	sub(t, s, subQ("a", 1))
	s.Disconnect(false)
	if st := srv.Stats(); st.Sessions != 0 || st.SessionsConnected != 0 || st.Subscriptions != 0 {
		t.Fatalf("stats %+v", st)
	}
	_, present, err := srv.Connect(ConnectInfo{ClientID: "c"}, newSink())
	if err != nil || present {
		t.Fatalf("present %v err %v", present, err)
	}
	mustIs(t, s.Publish(&Message{Topic: "a"}), ErrSessionClosed)
}

func TestPersistentSessionQueuesWhileOffline(t *testing.T) {
	srv := newServer(t, testConfig())
	s, _ := conn(t, srv, "c", persistent)
	sub(t, s, subQ("a", 1), subQ("b", 0))
	s.Disconnect(false)
	if st := srv.Stats(); st.Sessions != 1 || st.SessionsConnected != 0 {
		t.Fatalf("stats %+v", st)
	}
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "1", 1, false)
	pub(t, p, "b", "dropped", 0, false) // QoS 0 not queued by default
	pub(t, p, "a", "2", 2, false)
	sink := newSink()
	s2, present, err := srv.Connect(ConnectInfo{ClientID: "c", SessionExpiry: NoExpiry}, sink)
	if err != nil || !present {
		t.Fatalf("present %v err %v", present, err)
	}
	if s2.Pending() != 2 {
		t.Errorf("pending %d", s2.Pending())
	}
	sink.none(t) // held until Resume
	s2.Resume()
	d1, d2 := sink.next(t), sink.next(t)
	if string(d1.Msg.Payload) != "1" || d1.QoS != 1 || string(d2.Msg.Payload) != "2" || d2.QoS != 1 {
		t.Errorf("got %q/%d %q/%d", d1.Msg.Payload, d1.QoS, d2.Msg.Payload, d2.QoS)
	}
	if d1.Dup || d1.PacketID == d2.PacketID {
		t.Errorf("dup %v ids %d %d", d1.Dup, d1.PacketID, d2.PacketID)
	}
	sink.none(t)
	if st := srv.Stats(); st.DroppedQoS0 != 1 {
		t.Errorf("dropped qos0 %d", st.DroppedQoS0)
	}
}

func TestQueueQoS0ForOfflineSession(t *testing.T) {
	srv := newServer(t, testConfig())
	s, _ := conn(t, srv, "c", persistent, func(i *ConnectInfo) { i.QueueQoS0 = true })
	sub(t, s, subQ("b", 0))
	s.Disconnect(false)
	p, _ := conn(t, srv, "p")
	pub(t, p, "b", "kept", 0, false)
	_, sink := conn(t, srv, "c", resumeOld, func(i *ConnectInfo) { i.QueueQoS0 = true })
	if d := sink.next(t); string(d.Msg.Payload) != "kept" {
		t.Errorf("got %q", d.Msg.Payload)
	}
}

func TestTakeover(t *testing.T) {
	srv := newServer(t, testConfig())
	old, oldSink := conn(t, srv, "c", persistent)
	sub(t, old, subQ("a", 1))
	s2, sink2 := conn(t, srv, "c", resumeOld)
	select {
	case err := <-oldSink.closed:
		if !errors.Is(err, ErrSessionTaken) {
			t.Errorf("closed with %v", err)
		}
	default:
		t.Fatal("old sink not closed")
	}
	// Subscriptions carried over; the old handle is dead.
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "x", 1, false)
	d := sink2.next(t)
	oldSink.none(t)
	old.Ack(d.PacketID) // ignored: stale handle
	if s2.Pending() != 1 {
		t.Error("stale Ack was applied")
	}
	s2.Ack(d.PacketID)
	if s2.Pending() != 0 {
		t.Error("ack not applied")
	}
	old.Disconnect(true) // no effect on the new attachment
	pub(t, p, "a", "y", 0, false)
	sink2.next(t)
	if st := srv.Stats(); st.SessionsTakenOver != 1 || st.SessionsConnected != 2 || st.Sessions != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestTakeoverCleanStartDiscards(t *testing.T) {
	srv := newServer(t, testConfig())
	old, oldSink := conn(t, srv, "c", persistent)
	sub(t, old, subQ("a", 1))
	oldSink.refuse.Store(true)
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "queued", 1, false)
	sess, present, err := srv.Connect(ConnectInfo{ClientID: "c", CleanStart: true}, newSink())
	if err != nil || present {
		t.Fatalf("present %v err %v", present, err)
	}
	if <-oldSink.closed == nil {
		t.Error("no close reason")
	}
	if sess.Pending() != 0 {
		t.Error("queue carried over a clean start")
	}
	if st := srv.Stats(); st.Subscriptions != 0 || st.Inflight != 0 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSessionExpiry(t *testing.T) {
	clk := newClock()
	srv := newServer(t, testConfig(), WithClock(clk))
	s, _ := conn(t, srv, "c", func(i *ConnectInfo) { i.CleanStart = false; i.SessionExpiry = time.Minute })
	sub(t, s, subQ("a", 1))
	s.Disconnect(false)
	clk.Advance(59 * time.Second)
	if srv.Stats().Sessions != 1 {
		t.Fatal("expired early")
	}
	clk.Advance(time.Second)
	if st := srv.Stats(); st.Sessions != 0 || st.SessionsExpired != 1 || st.Subscriptions != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A reconnect before expiry cancels it.
	s, _ = conn(t, srv, "d", func(i *ConnectInfo) { i.CleanStart = false; i.SessionExpiry = time.Minute })
	s.Disconnect(false)
	clk.Advance(30 * time.Second)
	s, _ = conn(t, srv, "d", func(i *ConnectInfo) { i.CleanStart = false; i.SessionExpiry = time.Minute })
	clk.Advance(time.Hour)
	if srv.Stats().Sessions != 1 {
		t.Fatal("connected session expired")
	}
	// SetSessionExpiry (MQTT 5 DISCONNECT) changes it.
	s.SetSessionExpiry(0)
	s.Disconnect(false)
	if srv.Stats().Sessions != 0 {
		t.Fatal("expiry 0 kept the session")
	}
	if srv.sched.len() != 0 {
		t.Errorf("%d timers left", srv.sched.len())
	}
}

func TestMaxSessionExpiryCap(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.MaxSessionExpiry = time.Hour
	srv := newServer(t, cfg, WithClock(clk))
	s, _ := conn(t, srv, "c", persistent)
	s.Disconnect(false)
	clk.Advance(time.Hour)
	if srv.Stats().Sessions != 0 {
		t.Fatal("NoExpiry not capped")
	}
}

func TestMaxSessions(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSessions = 2
	srv := newServer(t, cfg)
	conn(t, srv, "a", persistent)
	b, _ := conn(t, srv, "b")
	_, _, err := srv.Connect(ConnectInfo{ClientID: "c"}, newSink())
	mustIs(t, err, ErrServerBusy)
	conn(t, srv, "a", resumeOld) // takeover is not a new session
	b.Disconnect(false)
	conn(t, srv, "c")
	if srv.Stats().SessionsRejected != 1 {
		t.Error("rejection not counted")
	}
}

func TestConnectValidation(t *testing.T) {
	srv := newServer(t, testConfig())
	for _, id := range []string{"", "a\x00b", string([]byte{0xc3})} {
		_, _, err := srv.Connect(ConnectInfo{ClientID: id}, newSink())
		mustIs(t, err, ErrBadClientID)
	}
	if _, _, err := srv.Connect(ConnectInfo{ClientID: "x"}, nil); err == nil {
		t.Error("nil sink accepted")
	}
	_, _, err := srv.Connect(ConnectInfo{ClientID: "x", Will: &Will{Msg: Message{Topic: "a/#"}}}, newSink())
	mustIs(t, err, ErrBadTopic)
	if id := NewClientID(); len(id) < 20 || checkClientID(id) != nil {
		t.Errorf("NewClientID %q", id)
	}
}

func TestServerClose(t *testing.T) {
	srv, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, sink := conn(t, srv, "c")
	srv.Close()
	if err := <-sink.closed; !errors.Is(err, ErrServerShutdown) {
		t.Errorf("closed with %v", err)
	}
	_, _, err = srv.Connect(ConnectInfo{ClientID: "d"}, newSink())
	mustIs(t, err, ErrServerShutdown)
	mustIs(t, srv.PublishAnonymous(&Message{Topic: "x"}, ""), ErrServerShutdown)
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
}
