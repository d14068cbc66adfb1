package gateway

import (
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
)

func TestQoSIndex(t *testing.T) {
	for q, want := range map[sn.QoS]int{sn.QoSMinus1: 0, sn.QoS0: 1, sn.QoS1: 2, sn.QoS2: 3} {
		if got := QoSIndex(q); got != want {
			t.Errorf("QoSIndex(%v) = %d, want %d", q, got, want)
		}
	}
}

// LinkStats counts clients by state and PUBLISH by QoS on each link.
func TestLinkStats(t *testing.T) {
	srv := testBroker(t)
	l0, l1 := testUDPLink(t), testUDPLink(t)
	cfg := testConfig()
	cfg.AllowQoSMinus1 = true
	gw, err := New(cfg, srv, l0, l1)
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve()
	defer gw.Close()
	sink := &appSink{ch: make(chan broker.Delivery, 16)}
	app, _, err := srv.Connect(broker.ConnectInfo{ClientID: "app", CleanStart: true}, sink)
	if err != nil {
		t.Fatal(err)
	}
	app.Subscribe([]broker.Subscription{{Filter: "up/#", QoS: 2}})
	app.Resume()

	a := sensorFor(t, loopbackUDP(t), l0)
	a.connect("a", true, 60)
	id := a.register("up/a", 1)
	for i, q := range []sn.QoS{sn.QoS0, sn.QoS1, sn.QoS1, sn.QoS2} {
		a.send(&sn.Publish{QoS: q, TopicID: id, MsgID: uint16(10 + i), Data: []byte("x")})
		switch q {
		case sn.QoS1:
			a.expect(sn.TypePuback)
		case sn.QoS2:
			a.expect(sn.TypePubrec)
			a.send(&sn.Pubrel{MsgID: uint16(10 + i)})
			a.expect(sn.TypePubcomp)
		}
	}
	a.subscribe("down/a", sn.QoS1, 20)
	if err := app.Publish(&broker.Message{Topic: "down/a", QoS: 1, Payload: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	p := a.expect(sn.TypePublish).Publish
	a.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})

	b := sensorFor(t, loopbackUDP(t), l1)
	b.connect("b", true, 60)
	b.send(&sn.Disconnect{HasDuration: true, Duration: 600})
	b.expect(sn.TypeDisconnect)
	short, _ := sn.ShortTopicID("up")
	q := sensorFor(t, loopbackUDP(t), l1)
	q.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: short})
	eventually(t, "QoS -1 publish", func() bool { return gw.Stats().QoSMinus1In == 1 })

	ls := gw.LinkStats()
	if len(ls) != 2 || ls[0].Index != 0 || ls[1].Index != 1 {
		t.Fatalf("links %+v", ls)
	}
	want0 := LinkStats{Index: 0, Name: ls[0].Name, Clients: 1, Active: 1,
		PublishIn: [4]uint64{0, 1, 2, 1}, PublishOut: [3]uint64{0, 1, 0}}
	want1 := LinkStats{Index: 1, Name: ls[1].Name, Clients: 1, Asleep: 1, PublishIn: [4]uint64{1, 0, 0, 0}}
	if ls[0] != want0 || ls[1] != want1 {
		t.Fatalf("link stats\n got %+v\n     %+v\nwant %+v\n     %+v", ls[0], ls[1], want0, want1)
	}

	// The sleeping client wakes on the other link: it moves.
	b2 := sensorFor(t, loopbackUDP(t), l0)
	b2.send(&sn.Pingreq{ClientID: []byte("b")})
	b2.expect(sn.TypePingresp)
	ls = gw.LinkStats()
	if ls[0].Clients != 2 || ls[0].Active+ls[0].Asleep != 2 || ls[1].Clients != 0 || ls[1].Asleep != 0 || ls[1].Active != 0 {
		t.Fatalf("after wake on link 0: %+v", ls)
	}
	// A clean DISCONNECT removes the client.
	b2.send(&sn.Disconnect{})
	b2.expect(sn.TypeDisconnect)
	if ls = gw.LinkStats(); ls[0].Clients != 1 || ls[0].Active != 1 || ls[0].Asleep != 0 {
		t.Fatalf("after disconnect: %+v", ls)
	}
}
