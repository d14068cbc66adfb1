package broker

import (
	"fmt"
	"slices"
	"testing"
)

func TestWildcardRouting(t *testing.T) {
	srv := newServer(t, testConfig())
	pubS, _ := conn(t, srv, "pub")
	filters := []string{"a/b", "a/+", "a/#", "#", "+/b", "+", "+/+/c", "$SYS/#", "+/x", "a/b/c"}
	sinks := map[string]*testSink{}
	for i, f := range filters {
		s, sink := conn(t, srv, fmt.Sprintf("c%d", i))
		if codes := sub(t, s, subQ(f, 0)); codes[0] != 0 {
			t.Fatalf("subscribe %q: %x", f, codes)
		}
		sinks[f] = sink
	}
	want := map[string][]string{
		"a/b":     {"a/b", "a/+", "a/#", "#", "+/b"},
		"a":       {"a/#", "#", "+"},
		"a/b/c":   {"a/#", "#", "+/+/c", "a/b/c"},
		"x/b":     {"#", "+/b"},
		"$SYS/x":  {"$SYS/#"},
		"$other":  {},
		"/b":      {"#", "+/b"},
		"a/x":     {"a/+", "a/#", "#", "+/x"},
		"a//c":    {"a/#", "#", "+/+/c"},
		"zz/zz/c": {"#", "+/+/c"},
	}
	for topic, wantFilters := range want {
		if topic[0] == '$' {
			if err := srv.PublishAnonymous(&Message{Topic: topic}, ""); err != nil {
				t.Fatal(err)
			}
		} else {
			pub(t, pubS, topic, "x", 0, false)
		}
		var got []string
		for f, sink := range sinks {
			for _, tp := range sink.topics() {
				if tp != topic {
					t.Errorf("%q got %q while publishing %q", f, tp, topic)
				}
				got = append(got, f)
			}
		}
		slices.Sort(got)
		ws := slices.Clone(wantFilters)
		slices.Sort(ws)
		if !slices.Equal(got, ws) {
			t.Errorf("publish %q reached %v, want %v", topic, got, ws)
		}
	}
}

func TestOverlappingSubscriptionsDeliverOnce(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c")
	codes := sub(t, s,
		Subscription{Filter: "a/+", QoS: 0, ID: 1},
		Subscription{Filter: "a/#", QoS: 2, ID: 2},
		Subscription{Filter: "a/b", QoS: 1},
		Subscription{Filter: "x/y", QoS: 1, ID: 9})
	if !slices.Equal(codes, []byte{0, 2, 1, 1}) {
		t.Fatalf("codes %x", codes)
	}
	p, _ := conn(t, srv, "p")
	pub(t, p, "a/b", "1", 2, false)
	d := sink.next(t)
	sink.none(t)
	if d.QoS != 2 || d.PacketID == 0 {
		t.Errorf("qos %d id %d, want max QoS 2", d.QoS, d.PacketID)
	}
	ids := slices.Clone(d.SubscriptionIDs)
	slices.Sort(ids)
	if !slices.Equal(ids, []uint32{1, 2}) {
		t.Errorf("subscription ids %v", ids)
	}
	// Only one subscription matches: its own identifier.
	pub(t, p, "x/y", "2", 1, false)
	if d := sink.next(t); !slices.Equal(d.SubscriptionIDs, []uint32{9}) || d.QoS != 1 {
		t.Errorf("got %+v", d)
	}
	// QoS is the lower of message and subscription.
	pub(t, p, "a/c", "3", 1, false) // a/+ (0) and a/# (2): max 2, message 1
	if d := sink.next(t); d.QoS != 1 {
		t.Errorf("qos %d", d.QoS)
	}
}

func TestResubscribeReplacesOptions(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c")
	sub(t, s, Subscription{Filter: "a", QoS: 0, ID: 1})
	sub(t, s, Subscription{Filter: "a", QoS: 1, ID: 2})
	if n := srv.Stats().Subscriptions; n != 1 {
		t.Fatalf("subscriptions %d", n)
	}
	p, _ := conn(t, srv, "p")
	pub(t, p, "a", "x", 1, false)
	d := sink.next(t)
	sink.none(t)
	if d.QoS != 1 || !slices.Equal(d.SubscriptionIDs, []uint32{2}) {
		t.Errorf("got qos %d ids %v", d.QoS, d.SubscriptionIDs)
	}
}

func TestNoLocalAndRetainAsPublished(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c")
	sub(t, s, Subscription{Filter: "nl", NoLocal: true}, Subscription{Filter: "l"},
		Subscription{Filter: "rap", RetainAsPublished: true}, Subscription{Filter: "norap"})
	pub(t, s, "nl", "x", 0, false)
	sink.none(t)
	pub(t, s, "l", "x", 0, false)
	sink.next(t)
	other, _ := conn(t, srv, "o")
	pub(t, other, "nl", "x", 0, false)
	sink.next(t)
	pub(t, other, "rap", "x", 0, true)
	if d := sink.next(t); !d.Retain {
		t.Error("retain as published: flag lost")
	}
	pub(t, other, "norap", "x", 0, true)
	if d := sink.next(t); d.Retain {
		t.Error("live message kept retain flag without Retain As Published")
	}
}

func TestUnsubscribe(t *testing.T) {
	srv := newServer(t, testConfig())
	s, sink := conn(t, srv, "c")
	sub(t, s, subQ("a/#", 0), subQ("$share/g/b", 0))
	codes := s.Unsubscribe([]string{"a/#", "a/#", "$share/g/b", "bad/#/x"})
	if !slices.Equal(codes, []byte{0x00, 0x11, 0x00, 0x8F}) {
		t.Fatalf("codes %x", codes)
	}
	p, _ := conn(t, srv, "p")
	pub(t, p, "a/b", "x", 0, false)
	pub(t, p, "b", "x", 0, false)
	sink.none(t)
	if st := srv.Stats(); st.Subscriptions != 0 || st.SharedSubscriptions != 0 {
		t.Errorf("stats %+v", st)
	}
	// The tree is pruned.
	if !srv.tree.root.empty() {
		t.Error("tree not pruned")
	}
}

func TestSubscribeInvalid(t *testing.T) {
	srv := newServer(t, testConfig())
	s, _ := conn(t, srv, "c")
	codes := sub(t, s, subQ("a/#/b", 0), Subscription{Filter: "a", QoS: 3},
		Subscription{Filter: "a", RetainHandling: 3}, Subscription{Filter: "$share/g/a", NoLocal: true}, subQ("ok", 1))
	if !slices.Equal(codes, []byte{0x8F, 0x8F, 0x8F, 0x8F, 1}) {
		t.Fatalf("codes %x", codes)
	}
	if err := s.Publish(&Message{Topic: "a/+"}); err == nil {
		t.Error("wildcard publish accepted")
	}
	mustIs(t, s.Publish(&Message{Topic: "a", QoS: 3}), ErrBadTopic)
	mustIs(t, s.Publish(&Message{Topic: "$SYS/x"}), ErrNotAuthorized)
}

func TestSharedSubscriptionRoundRobin(t *testing.T) {
	srv := newServer(t, testConfig())
	var sinks []*testSink
	var sess []*Session
	for i := range 3 {
		s, sink := conn(t, srv, fmt.Sprintf("m%d", i))
		sub(t, s, subQ("$share/g/jobs/+", 1))
		sinks, sess = append(sinks, sink), append(sess, s)
	}
	other, otherSink := conn(t, srv, "other")
	sub(t, other, subQ("$share/h/jobs/#", 0), subQ("jobs/#", 0))
	p, _ := conn(t, srv, "p")
	for i := range 30 {
		pub(t, p, "jobs/x", fmt.Sprint(i), 1, true)
	}
	for i, sink := range sinks {
		n := len(sink.ch)
		if n != 10 {
			t.Errorf("member %d got %d, want 10", i, n)
		}
		for range n {
			d := sink.next(t)
			sess[i].Ack(d.PacketID)
		}
	}
	// Group h (one member) and the plain subscription both deliver: 60.
	if n := len(otherSink.ch); n != 60 {
		t.Errorf("other got %d, want 60", n)
	}
	otherSink.topics()
	// Retained messages are not sent to shared subscriptions.
	s4, sink4 := conn(t, srv, "m4")
	sub(t, s4, subQ("$share/g/jobs/+", 1))
	sink4.none(t)
	// Offline members are skipped while an online one exists.
	sinks[0].refuse.Store(true)
	sess[1].Disconnect(false)
	sess[2].Disconnect(false)
	for i := range 4 {
		pub(t, p, "jobs/y", fmt.Sprint(i), 0, false)
	}
	// m0 refuses once and then is not ready any more; m4 takes the rest.
	if got := len(sink4.ch); got < 3 {
		t.Errorf("online member got %d of 4", got)
	}
}
