package broker

import (
	"slices"
	"testing"
	"time"
)

func TestPropertiesPassThrough(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "s")
	sub(t, s, subQ("p", 1))
	p, _ := conn(t, srv, "p")
	props := &Properties{PayloadFormat: 1, ContentType: "text/plain", ResponseTopic: "r",
		CorrelationData: []byte{1, 2}, User: []UserProperty{{"k", "v"}, {"k", "v2"}}}
	m := &Message{Topic: "p", Payload: []byte("x"), QoS: 1, Props: props}
	if err := p.Publish(m); err != nil {
		t.Fatal(err)
	}
	d := sink.next(t)
	if d.Msg != m || d.Msg.Props != props || d.Msg.From != "p" {
		t.Error("message not shared as is")
	}
}

func TestNilAndClosedInputs(t *testing.T) {
	srv := newServer(t, testConfig())
	s, _ := conn(t, srv, "s")
	mustIs(t, s.Publish(nil), ErrBadTopic)
	mustIs(t, srv.PublishAnonymous(nil, ""), ErrBadTopic)
	if codes := s.Subscribe(nil); len(codes) != 0 {
		t.Error("codes for nothing")
	}
	s.Disconnect(false)
	s.Disconnect(true) // twice: no effect
	if codes := s.Subscribe([]Subscription{subQ("a", 0)}); codes[0] != ReasonUnspecifiedError {
		t.Errorf("closed subscribe: %x", codes)
	}
	if codes := s.Unsubscribe([]string{"a"}); codes[0] != ReasonUnspecifiedError {
		t.Errorf("closed unsubscribe: %x", codes)
	}
	mustIs(t, s.SetWill(&Will{Msg: Message{Topic: "w"}}), ErrSessionClosed)
	s.Ack(1)
	s.Received(1)
	s.Complete(1)
	s.Resume()
	s.SetSessionExpiry(time.Hour)
	if s.Pending() != 0 || s.ClientID() != "s" {
		t.Error("closed session state")
	}
}

func TestExpiredAtPublish(t *testing.T) {
	clk := newClock()
	srv := newServer(t, testConfig(), WithClock(clk))
	s, sink := conn(t, srv, "s")
	sub(t, s, subQ("a", 1))
	srv.PublishAnonymous(&Message{Topic: "a", QoS: 1, Expiry: clk.Now().Add(-time.Second)}, "")
	sink.none(t)
	if srv.Stats().DroppedExpired != 1 || s.Pending() != 0 {
		t.Error("expired message kept")
	}
}

func TestSchedulerOrderAndCancel(t *testing.T) {
	clk := newClock()
	sc := &scheduler{clock: clk}
	var fired []int
	t0 := clk.Now()
	add := func(d time.Duration, id int) *timerEntry {
		return sc.add(t0.Add(d), func(*timerEntry) { fired = append(fired, id) })
	}
	add(5*time.Second, 5)
	e3 := add(3*time.Second, 3)
	add(1*time.Second, 1)
	add(4*time.Second, 4)
	add(2*time.Second, 2)
	if !sc.cancel(e3) || sc.cancel(e3) {
		t.Fatal("cancel")
	}
	clk.Advance(2 * time.Second)
	if !slices.Equal(fired, []int{1, 2}) {
		t.Fatalf("fired %v", fired)
	}
	add(0, 0) // already due
	clk.Advance(10 * time.Second)
	if !slices.Equal(fired, []int{1, 2, 0, 4, 5}) {
		t.Fatalf("fired %v", fired)
	}
	if sc.len() != 0 {
		t.Error("entries left")
	}
	sc.close()
	add(time.Second, 9)
	clk.Advance(time.Minute)
	if len(fired) != 5 {
		t.Error("closed scheduler fired")
	}
}

func TestSysDisabledMeansNoTimers(t *testing.T) {
	srv := newServer(t, testConfig())
	s, _ := conn(t, srv, "s", persistent)
	s.Disconnect(false) // NoExpiry: no timer either
	if n := srv.sched.len(); n != 0 {
		t.Errorf("%d timers for idle sessions", n)
	}
}
