package broker

import (
	"slices"
	"testing"
	"time"
)

func TestRetainedSetReplaceDelete(t *testing.T) {
	srv := newServer(t, testConfig())
	p, _ := conn(t, srv, "p")
	pub(t, p, "r/a", "1", 1, true)
	pub(t, p, "r/a", "2", 0, true) // replaces
	pub(t, p, "r/b", "x", 0, true)
	pub(t, p, "r/b", "", 0, true) // deletes
	pub(t, p, "r/c/d", "y", 2, true)
	mustIs(t, p.Publish(&Message{Topic: "$SYS/no", Payload: []byte("z"), Retain: true}), ErrNotAuthorized)
	if n := srv.Stats().Retained; n != 2 {
		t.Fatalf("retained %d, want 2", n)
	}
	s, sink := conn(t, srv, "s")
	codes := s.Subscribe([]Subscription{{Filter: "r/#", QoS: 2, ID: 7}})
	// Held until Resume: nothing before SUBACK.
	sink.none(t)
	if codes[0] != 2 {
		t.Fatalf("codes %x", codes)
	}
	s.Resume()
	got := map[string]Delivery{}
	for range 2 {
		d := sink.next(t)
		got[d.Msg.Topic] = d
	}
	sink.none(t)
	if d := got["r/a"]; string(d.Msg.Payload) != "2" || !d.Retain || d.QoS != 0 || !slices.Equal(d.SubscriptionIDs, []uint32{7}) {
		t.Errorf("r/a: %+v", d)
	}
	if d := got["r/c/d"]; d.QoS != 2 || !d.Retain || d.PacketID == 0 {
		t.Errorf("r/c/d: %+v", d)
	}
}

func TestRetainedEmptyPayloadStillDelivered(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "s")
	sub(t, s, subQ("r", 0))
	p, _ := conn(t, srv, "p")
	pub(t, p, "r", "", 0, true)
	if d := sink.next(t); len(d.Msg.Payload) != 0 {
		t.Error("payload")
	}
}

func TestRetainHandling(t *testing.T) {
	srv := newServer(t, testConfig())
	p, _ := conn(t, srv, "p")
	pub(t, p, "r", "x", 0, true)
	s, sink := conn(t, srv, "s")
	sub(t, s, Subscription{Filter: "r", RetainHandling: 2})
	sink.none(t)
	s.Unsubscribe([]string{"r"})
	sub(t, s, Subscription{Filter: "r", RetainHandling: 1})
	sink.next(t)
	sub(t, s, Subscription{Filter: "r", RetainHandling: 1}) // exists: nothing
	sink.none(t)
	sub(t, s, Subscription{Filter: "r", RetainHandling: 0}) // always
	sink.next(t)
}

func TestRetainedWildcardLookup(t *testing.T) {
	srv := newServer(t, testConfig())
	for _, tp := range []string{"a", "a/b", "a/b/c", "x/b", "$SYS/v", "/b"} {
		srv.PublishAnonymous(&Message{Topic: tp, Payload: []byte("v"), Retain: true}, "")
	}
	cases := map[string][]string{
		"#":      {"/b", "a", "a/b", "a/b/c", "x/b"},
		"a/#":    {"a", "a/b", "a/b/c"},
		"+/b":    {"/b", "a/b", "x/b"},
		"+":      {"a"},
		"$SYS/#": {"$SYS/v"},
		"+/+/+":  {"a/b/c"},
		"a/b":    {"a/b"},
		"q/#":    nil,
	}
	for f, want := range cases {
		var got []string
		for _, m := range srv.retained.each(f, srv.clock.Now(), nil) {
			got = append(got, m.Topic)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", f, got, want)
		}
	}
}

func TestRetainedExpiry(t *testing.T) {
	clk := newClock()
	srv := newServer(t, testConfig(), WithClock(clk))
	srv.PublishAnonymous(&Message{Topic: "e", Payload: []byte("v"), Retain: true, Expiry: clk.Now().Add(time.Minute)}, "")
	s, sink := conn(t, srv, "s")
	sub(t, s, subQ("e", 0))
	d := sink.next(t)
	if rem := d.Msg.Expiry.Sub(clk.Now()); rem != time.Minute {
		t.Errorf("remaining %v", rem)
	}
	clk.Advance(time.Minute)
	s2, sink2 := conn(t, srv, "s2")
	sub(t, s2, subQ("e", 0))
	sink2.none(t)
	if n := srv.Stats().Retained; n != 0 {
		t.Errorf("expired retained message kept: %d", n)
	}
}

func TestRetainedLimits(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRetainedMessages = 2
	cfg.MaxRetainedBytes = 10
	srv := newServer(t, cfg)
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "1234", 0, true)
	pub(t, p, "b", "1234", 0, true)
	mustIs(t, p.Publish(&Message{Topic: "c", Payload: []byte("1"), Retain: true}), ErrQuotaExceeded)
	pub(t, p, "a", "123456", 0, true) // replace: 10 bytes, fits
	mustIs(t, p.Publish(&Message{Topic: "a", Payload: []byte("1234567"), Retain: true}), ErrQuotaExceeded)
	pub(t, p, "a", "", 0, true)
	pub(t, p, "c", "1", 0, true)
	st := srv.Stats()
	if st.Retained != 2 || st.RetainedRejected != 2 {
		t.Errorf("stats %+v", st)
	}
}
