package semtech

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/sn"
)

// e2e is a broker, the concentrator link, the MQTT-SN gateway serving it
// and one simulated packet forwarder.
type e2e struct {
	t    *testing.T
	srv  *broker.Server
	link *Link
	gw   *gateway.Gateway
	fwd  *fakeForwarder
	tmst uint32 // the forwarder's counter
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, err := broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	link, _ := newTestLink(t, nil) // a frozen clock: every window stays open until used
	gcfg := gateway.DefaultConfig()
	gcfg.Shards = 2
	gcfg.Logger = testLogger()
	gw, err := gateway.New(gcfg, srv, link)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve() }()
	t.Cleanup(func() {
		gw.Close()
		if err := <-served; !errors.Is(err, gateway.ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
		srv.Close()
	})
	e := &e2e{t: t, srv: srv, link: link, gw: gw, fwd: newForwarder(t, link, "AA555A0000000001", 2), tmst: 3512348611}
	e.fwd.pull()
	return e
}

// loraNode is a sensor behind the concentrator, on its own channel and
// data rate.
type loraNode struct {
	e        *e2e
	id       uint16
	freq     float64
	datr     string
	lastTmst uint32
	p        sn.Packet
}

func (e *e2e) node(id uint16, freq float64, datr string) *loraNode {
	return &loraNode{e: e, id: id, freq: freq, datr: datr}
}

// send transmits m; every uplink is 5 s after the previous one on the
// forwarder's counter, so receive windows never overlap.
func (n *loraNode) send(m sn.Message) {
	n.e.t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		n.e.t.Fatal(err)
	}
	n.e.tmst += 5_000_000
	n.lastTmst = n.e.tmst
	n.e.fwd.push(rx{tmst: n.lastTmst, freq: n.freq, datr: n.datr, codr: "4/5", rssi: -97, lsnr: 4.5, data: uplink(n.id, b)})
}

// expect returns the next downlink, which must be of type want, in the
// window of the node's last uplink.
func (n *loraNode) expect(want sn.MsgType) *sn.Packet {
	t := n.e.t
	t.Helper()
	r := n.e.fwd.resp()
	tx := r.txpk
	if tx.Tmst == nil || *tx.Tmst != n.lastTmst+1_000_000 || tx.Imme || tx.Freq != n.freq || tx.DatR.LoRa != n.datr || tx.CodR != "4/5" || !tx.IPol {
		t.Fatalf("node %04x: txpk %+v (tmst %v), want tmst %d freq %v datr %s", n.id, tx, tx.Tmst, n.lastTmst+1_000_000, n.freq, n.datr)
	}
	h, msg, err := radios.DecodeHeader(r.payload)
	if err != nil || radios.CheckHeader(h, testNet, true) != nil || h.Node != n.id {
		t.Fatalf("node %04x: downlink header %+v: %v", n.id, h, err)
	}
	if err := sn.Decode(msg, &n.p); err != nil {
		t.Fatalf("node %04x: decode % x: %v", n.id, msg, err)
	}
	if n.p.Type != want {
		t.Fatalf("node %04x: got %v, want %v", n.id, &n.p, want)
	}
	return &n.p
}

func (n *loraNode) connect(clientID string, clean bool) {
	n.e.t.Helper()
	n.send(&sn.Connect{ClientID: []byte(clientID), CleanSession: clean, ProtocolID: sn.V12, Duration: 600})
	if rc := n.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.Accepted {
		n.e.t.Fatalf("CONNACK %v", rc)
	}
}

// subscriber is an MQTT application attached in-process to the broker.
type subscriber struct {
	t    *testing.T
	sess *broker.Session
	ch   chan broker.Delivery
}

type subSink struct{ ch chan broker.Delivery }

func (s *subSink) Deliver(d broker.Delivery) bool {
	select {
	case s.ch <- d:
		return true
	default:
		return false
	}
}

func (s *subSink) Closed(error) {}

func (e *e2e) subscriber(id string, filters ...string) *subscriber {
	e.t.Helper()
	sink := &subSink{ch: make(chan broker.Delivery, 100)}
	sess, _, err := e.srv.Connect(broker.ConnectInfo{ClientID: id, CleanStart: true, Listener: "test"}, sink)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range filters {
		if codes := sess.Subscribe([]broker.Subscription{{Filter: f, QoS: 1}}); codes[0] > 2 {
			e.t.Fatalf("subscribe %q: %#x", f, codes[0])
		}
	}
	sess.Resume()
	return &subscriber{t: e.t, sess: sess, ch: sink.ch}
}

func (s *subscriber) next() *broker.Message {
	s.t.Helper()
	select {
	case d := <-s.ch:
		if d.QoS == 1 {
			s.sess.Ack(d.PacketID)
		}
		return d.Msg
	case <-time.After(waitFor):
		s.t.Fatal("no message for the subscriber")
		return nil
	}
}

// Several nodes, each on its own channel and data rate, connect,
// register and publish through the concentrator; an MQTT subscriber gets
// every message, and every reply goes out in the right node's window.
func TestE2EUplinksReachSubscriber(t *testing.T) {
	e := newE2E(t)
	sub := e.subscriber("app", "sensors/#")
	nodes := []*loraNode{
		e.node(0x0101, 868.1, "SF7BW125"),
		e.node(0x0102, 868.3, "SF9BW125"),
		e.node(0x0103, 868.5, "SF12BW125"),
	}
	for i, n := range nodes {
		n.connect(fmt.Sprintf("lora-%04x", n.id), true)
		n.send(&sn.Register{MsgID: 1, TopicName: []byte(fmt.Sprintf("sensors/%04x/temp", n.id))})
		ra := n.expect(sn.TypeRegack).Regack
		if ra.ReturnCode != sn.Accepted || ra.MsgID != 1 {
			t.Fatalf("REGACK %+v", ra)
		}
		topic := ra.TopicID
		n.send(&sn.Publish{QoS: sn.QoS1, TopicID: topic, MsgID: 2, Data: []byte(fmt.Sprintf("2%d.5", i))})
		if pa := n.expect(sn.TypePuback).Puback; pa.ReturnCode != sn.Accepted || pa.MsgID != 2 || pa.TopicID != topic {
			t.Fatalf("PUBACK %+v", pa)
		}
		m := sub.next()
		if m.Topic != fmt.Sprintf("sensors/%04x/temp", n.id) || string(m.Payload) != fmt.Sprintf("2%d.5", i) {
			t.Fatalf("subscriber got %s %q", m.Topic, m.Payload)
		}
		n.send(&sn.Publish{QoS: sn.QoS0, TopicID: topic, Data: []byte("qos0")})
		if m := sub.next(); string(m.Payload) != "qos0" {
			t.Fatalf("QoS 0: %q", m.Payload)
		}
	}
	for _, n := range nodes {
		ni, ok := e.link.Node(NodeAddr(n.id))
		if !ok || ni.FreqHz != uint32(n.freq*1e6+0.5) || ni.DataRate != n.datr || ni.Uplinks != 4 || ni.Queued != 0 {
			t.Fatalf("node %+v", ni)
		}
	}
	st := e.link.Stats()
	if st.RxFrames != 12 || st.TxSent != 9 || st.TxCongested != 0 {
		t.Fatalf("link stats %+v", st)
	}
	e.fwd.noResp()
}

// An MQTT publish to a sleeping node waits for the node's next uplink
// (PINGREQ) and goes out in that uplink's receive window; PINGRESP
// follows in the window of the node's acknowledgement.
func TestE2ESleepingNodeWakes(t *testing.T) {
	e := newE2E(t)
	n := e.node(0x0909, 867.1, "SF10BW125")
	n.connect("valve-9", false)
	n.send(&sn.Subscribe{QoS: sn.QoS1, MsgID: 1, TopicName: []byte("cmd/valve-9")})
	sa := n.expect(sn.TypeSuback).Suback
	if sa.ReturnCode != sn.Accepted || sa.TopicID == 0 {
		t.Fatalf("SUBACK %+v", sa)
	}
	n.send(&sn.Disconnect{HasDuration: true, Duration: 3600})
	n.expect(sn.TypeDisconnect)
	waitGauge(t, "node asleep", func() bool { return e.gw.Stats().Sleeping == 1 })

	app := e.subscriber("operator")
	if err := app.sess.Publish(&broker.Message{Topic: "cmd/valve-9", Payload: []byte("open"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if err := app.sess.Publish(&broker.Message{Topic: "cmd/valve-9", Payload: []byte("close"), QoS: 0}); err != nil {
		t.Fatal(err)
	}
	e.fwd.noResp() // asleep: nothing is sent

	n.send(&sn.Pingreq{ClientID: []byte("valve-9")})
	pub := n.expect(sn.TypePublish).Publish
	if string(pub.Data) != "open" || pub.QoS != sn.QoS1 || pub.TopicID != sa.TopicID {
		t.Fatalf("PUBLISH %+v", pub)
	}
	n.send(&sn.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID, ReturnCode: sn.Accepted})
	pub = n.expect(sn.TypePublish).Publish
	if string(pub.Data) != "close" || pub.QoS != sn.QoS0 {
		t.Fatalf("PUBLISH %+v", pub)
	}
	// Nothing left but PINGRESP, which the node collects with its next
	// uplink (the one queued earlier, if any, is superseded).
	n.send(&sn.Pingreq{ClientID: []byte("valve-9")})
	n.expect(sn.TypePingresp)
	waitGauge(t, "node asleep again", func() bool { return e.gw.Stats().Sleeping == 1 })
	e.fwd.noResp()
}

// waitGauge polls a gateway gauge, which has no event to wait on.
func waitGauge(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
