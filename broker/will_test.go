package broker

import (
	"testing"
	"time"
)

func willSub(t *testing.T, srv *Server) *testSink {
	t.Helper()
	s, sink := conn(t, srv, "watcher")
	sub(t, s, subQ("will/#", 1))
	return sink
}

func withWill(topic string, delay time.Duration) func(*ConnectInfo) {
	return func(i *ConnectInfo) {
		i.Will = &Will{Msg: Message{Topic: topic, Payload: []byte("gone"), QoS: 1, Retain: true}, Delay: delay}
	}
}

func TestWillOnConnectionLoss(t *testing.T) {
	srv := newServer(t, testConfig())
	w := willSub(t, srv)
	s, _ := conn(t, srv, "c", withWill("will/c", 0))
	s.Disconnect(true)
	d := w.next(t)
	if d.Msg.Topic != "will/c" || string(d.Msg.Payload) != "gone" || d.QoS != 1 || d.Msg.From != "c" {
		t.Fatalf("will %+v", d)
	}
	if srv.Stats().Retained != 1 || srv.Stats().WillsPublished != 1 {
		t.Error("retained will not stored or not counted")
	}
}

func TestNoWillOnCleanDisconnect(t *testing.T) {
	srv := newServer(t, testConfig())
	w := willSub(t, srv)
	s, _ := conn(t, srv, "c", withWill("will/c", 0))
	s.Disconnect(false)
	w.none(t)
	// SetWill(nil) deletes the will too.
	s, _ = conn(t, srv, "d", withWill("will/d", 0))
	if err := s.SetWill(nil); err != nil {
		t.Fatal(err)
	}
	s.Disconnect(true)
	w.none(t)
	// SetWill replaces it.
	s, _ = conn(t, srv, "e")
	if err := s.SetWill(&Will{Msg: Message{Topic: "will/e2"}}); err != nil {
		t.Fatal(err)
	}
	mustIs(t, s.SetWill(&Will{Msg: Message{Topic: "will/+"}}), ErrBadTopic)
	s.Disconnect(true)
	if d := w.next(t); d.Msg.Topic != "will/e2" {
		t.Fatalf("got %q", d.Msg.Topic)
	}
}

func TestWillDelay(t *testing.T) {
	clk := newClock()
	srv := newServer(t, testConfig(), WithClock(clk))
	w := willSub(t, srv)
	long := func(i *ConnectInfo) { i.CleanStart = false; i.SessionExpiry = time.Hour }

	// Fires after the delay.
	s, _ := conn(t, srv, "a", long, withWill("will/a", 10*time.Second))
	s.Disconnect(true)
	clk.Advance(9 * time.Second)
	w.none(t)
	clk.Advance(time.Second)
	if d := w.next(t); d.Msg.Topic != "will/a" {
		t.Fatal(d.Msg.Topic)
	}

	// Cancelled by a reconnect before the delay.
	s, _ = conn(t, srv, "b", long, withWill("will/b", 10*time.Second))
	s.Disconnect(true)
	clk.Advance(5 * time.Second)
	conn(t, srv, "b", long)
	clk.Advance(time.Minute)
	w.none(t)

	// Fires at session end when that comes first.
	s, _ = conn(t, srv, "c", func(i *ConnectInfo) { i.CleanStart = false; i.SessionExpiry = 5 * time.Second },
		withWill("will/c", time.Minute))
	s.Disconnect(true)
	clk.Advance(4 * time.Second)
	w.none(t)
	clk.Advance(time.Second)
	if d := w.next(t); d.Msg.Topic != "will/c" {
		t.Fatal(d.Msg.Topic)
	}

	// Session expiry 0: the session ends at once, so does the delay.
	s, _ = conn(t, srv, "d", withWill("will/d", time.Minute))
	s.Disconnect(true)
	if d := w.next(t); d.Msg.Topic != "will/d" {
		t.Fatal(d.Msg.Topic)
	}
}

func TestWillOnTakeover(t *testing.T) {
	srv := newServer(t, testConfig())
	w := willSub(t, srv)
	conn(t, srv, "c", persistent, withWill("will/c", 0))
	conn(t, srv, "c", resumeOld)
	if d := w.next(t); d.Msg.Topic != "will/c" {
		t.Fatal(d.Msg.Topic)
	}
	// A delayed will is cancelled: the client is back.
	conn(t, srv, "d", persistent, withWill("will/d", time.Second))
	conn(t, srv, "d", resumeOld)
	w.none(t)
	// A clean start ends the old session: the will goes, delay or not.
	conn(t, srv, "e", persistent, withWill("will/e", time.Hour))
	conn(t, srv, "e")
	if d := w.next(t); d.Msg.Topic != "will/e" {
		t.Fatal(d.Msg.Topic)
	}
	// Also the pending will of an offline session.
	s, _ := conn(t, srv, "g", persistent, withWill("will/g", time.Hour))
	s.Disconnect(true)
	conn(t, srv, "g")
	if d := w.next(t); d.Msg.Topic != "will/g" {
		t.Fatal(d.Msg.Topic)
	}
	// So does an old session with expiry 0, even without clean start.
	conn(t, srv, "f", withWill("will/f", time.Hour))
	_, present, err := srv.Connect(ConnectInfo{ClientID: "f", SessionExpiry: NoExpiry}, newSink())
	if err != nil || present {
		t.Fatalf("present %v err %v", present, err)
	}
	if d := w.next(t); d.Msg.Topic != "will/f" {
		t.Fatal(d.Msg.Topic)
	}
}

func TestWillMessageExpiry(t *testing.T) {
	clk := newClock()
	srv := newServer(t, testConfig(), WithClock(clk))
	w := willSub(t, srv)
	s, _ := conn(t, srv, "c", func(i *ConnectInfo) {
		i.Will = &Will{Msg: Message{Topic: "will/c"}, MsgExpiry: time.Minute}
	})
	clk.Advance(time.Hour)
	s.Disconnect(true)
	d := w.next(t)
	if got := d.Msg.Expiry.Sub(clk.Now()); got != time.Minute {
		t.Errorf("will expiry %v after publication", got)
	}
}
