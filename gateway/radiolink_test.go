package gateway

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
)

// connectFake connects a raw sensor on a fakeRadio and subscribes it to
// filter at QoS 2; it returns the SUBACK topic ID.
func connectFake(t *testing.T, n *fakeNode, id, filter string) uint16 {
	t.Helper()
	n.send(&sn.Connect{ClientID: []byte(id), CleanSession: true, ProtocolID: sn.V12, Duration: 600})
	if rc := n.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.Accepted {
		t.Fatalf("CONNACK %v", rc)
	}
	if n.last.prio != transport.PriorityAck {
		t.Errorf("CONNACK at priority %d", n.last.prio)
	}
	n.send(&sn.Subscribe{QoS: sn.QoS2, MsgID: 1, TopicName: []byte(filter)})
	sa := n.expect(sn.TypeSuback).Suback
	if sa.ReturnCode != sn.Accepted || n.last.prio != transport.PriorityAck {
		t.Fatalf("SUBACK %+v at priority %d", sa, n.last.prio)
	}
	return sa.TopicID
}

// Every downlink carries its priority (acknowledgements, deliveries,
// REGISTER), and the retransmission timer asks the link's RetryAdvisor
// with the length of the request frame.
func TestRadioLinkPriorities(t *testing.T) {
	r := newFakeRadio()
	r.advice.Store(int64(time.Hour)) // no retransmission in the way
	gw, srv := startRadioGateway(t, radioConfig(), r)
	app := newMQTTApp(t, srv, "app", 2)
	n := r.node(t, 0x00, 0x13, 0xA2, 0x00, 0x40, 0x52, 0x2B, 0xAA)
	connectFake(t, n, "prio", "dev/#")

	app.publish("dev/t", []byte("21"), 1)
	reg := n.expect(sn.TypeRegister).Register
	if n.last.prio != transport.PriorityRegister || r.asked.Load() != int64(len(n.last.data)) {
		t.Errorf("REGISTER at priority %d, advisor asked for %d bytes of %d", n.last.prio, r.asked.Load(), len(n.last.data))
	}
	n.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
	pub := n.expect(sn.TypePublish).Publish
	if n.last.prio != transport.PriorityDelivery || r.asked.Load() != int64(len(n.last.data)) {
		t.Errorf("PUBLISH at priority %d, advisor asked for %d bytes of %d", n.last.prio, r.asked.Load(), len(n.last.data))
	}
	n.send(&sn.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})

	app.publish("dev/t", []byte("22"), 2)
	pub = n.expect(sn.TypePublish).Publish
	n.send(&sn.Pubrec{MsgID: pub.MsgID})
	n.expect(sn.TypePubrel)
	if n.last.prio != transport.PriorityDelivery {
		t.Errorf("PUBREL at priority %d", n.last.prio)
	}
	n.send(&sn.Pubcomp{MsgID: pub.MsgID})

	n.send(&sn.Pingreq{})
	n.expect(sn.TypePingresp)
	if n.last.prio != transport.PriorityAck {
		t.Errorf("PINGRESP at priority %d", n.last.prio)
	}
	n.send(&sn.Publish{QoS: sn.QoS1, TopicID: pub.TopicID, MsgID: 9, Data: []byte("up")})
	n.expect(sn.TypePuback)
	if n.last.prio != transport.PriorityAck {
		t.Errorf("PUBACK at priority %d", n.last.prio)
	}

	// The retry interval is max(T_RETRY, the link's advice).
	ls := gw.links[0]
	if d := gw.retryAfter(ls, 27); d != time.Hour || r.asked.Load() != 27 {
		t.Errorf("retryAfter with advice: %v", d)
	}
	r.advice.Store(int64(time.Millisecond))
	if d := gw.retryAfter(ls, 27); d != gw.cfg.RetryInterval {
		t.Errorf("retryAfter below T_RETRY: %v", d)
	}
}

// untilCongestion sends a request until the gateway answers it with
// "rejected: congestion"; the link's congestion may lapse for an instant
// while the gateway probes it, so one accepted answer is not an error.
func untilCongestion(t *testing.T, n *fakeNode, what string, req func(i int) sn.Message, rc func(*sn.Packet) sn.ReturnCode, answer sn.MsgType) {
	t.Helper()
	for i := range 50 {
		n.send(req(i))
		if got := rc(n.expect(answer)); got == sn.RejectedCongestion {
			if n.last.prio != transport.PriorityAck {
				t.Errorf("%s congestion answer at priority %d", what, n.last.prio)
			}
			return
		}
	}
	t.Fatalf("%s never answered with congestion", what)
}

// ErrCongested on writes: requests on the link are answered "rejected:
// congestion", the gateway's own deliveries wait (QoS 0 too, in order,
// and a PUBLISH never on air keeps DUP clear), and all arrive once the
// link has room again.
func TestRadioLinkCongestion(t *testing.T) {
	r := newFakeRadio()
	cfg := radioConfig()
	cfg.RetryInterval = 30 * time.Millisecond
	gw, srv := startRadioGateway(t, cfg, r)
	app := newMQTTApp(t, srv, "app", 1)
	n := r.node(t, 1)
	connectFake(t, n, "metered", "dev/a")
	n.send(&sn.Register{MsgID: 2, TopicName: []byte("up/a")})
	upID := n.expect(sn.TypeRegack).Regack.TopicID

	r.refuseAt.Store(int32(transport.PriorityDelivery)) // acknowledgements still pass
	app.publish("dev/a", []byte("q0-1"), 0)
	eventually(t, "the link refusing a delivery", func() bool { return gw.Stats().LinkCongested > 0 })
	app.publish("dev/a", []byte("q1-2"), 1)
	app.publish("dev/a", []byte("q0-3"), 0)

	pubRC := func(p *sn.Packet) sn.ReturnCode { return p.Puback.ReturnCode }
	untilCongestion(t, n, "PUBLISH", func(i int) sn.Message {
		return &sn.Publish{QoS: sn.QoS1, TopicID: upID, MsgID: uint16(10 + i), Data: []byte("up")}
	}, pubRC, sn.TypePuback)
	untilCongestion(t, n, "REGISTER", func(i int) sn.Message {
		return &sn.Register{MsgID: uint16(100 + i), TopicName: []byte("up/b")}
	}, func(p *sn.Packet) sn.ReturnCode { return p.Regack.ReturnCode }, sn.TypeRegack)
	untilCongestion(t, n, "SUBSCRIBE", func(i int) sn.Message {
		return &sn.Subscribe{QoS: sn.QoS1, MsgID: uint16(200 + i), TopicName: []byte("dev/b")}
	}, func(p *sn.Packet) sn.ReturnCode { return p.Suback.ReturnCode }, sn.TypeSuback)
	other := r.node(t, 2)
	untilCongestion(t, other, "CONNECT", func(int) sn.Message {
		return &sn.Connect{ClientID: []byte("newcomer"), CleanSession: true, ProtocolID: sn.V12, Duration: 600}
	}, func(p *sn.Packet) sn.ReturnCode { return p.Connack.ReturnCode }, sn.TypeConnack)

	// Refused deliveries go back to the queue in their order.
	r.refuseAt.Store(-1)
	var got []string
	for range 3 {
		p := n.expect(sn.TypePublish).Publish
		got = append(got, string(p.Data))
		if p.QoS == sn.QoS1 {
			if p.Dup {
				t.Error("a PUBLISH never on air was resent with DUP")
			}
			n.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
		}
	}
	if g := strings.Join(got, ","); g != "q0-1,q1-2,q0-3" {
		t.Fatalf("delivered %s", g)
	}
	st := gw.Stats()
	if st.RejectCongestion < 4 || st.CongestionDeferred == 0 || st.Lost != 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("refused writes %d, congestion answers %d, deliveries deferred %d", st.LinkCongested, st.RejectCongestion, st.CongestionDeferred)
}

// A TxFailure for a client with an outstanding request retransmits it at
// once (the retry timer, an hour here, never fires); one that wraps
// ErrCongested marks the link congested instead.
func TestRadioLinkTxFailure(t *testing.T) {
	r := newFakeRadio()
	r.advice.Store(int64(time.Hour))
	gw, srv := startRadioGateway(t, radioConfig(), r)
	app := newMQTTApp(t, srv, "app", 1)
	n := r.node(t, 7)
	connectFake(t, n, "xbee-node", "dev/a")

	r.failures <- transport.TxFailure{To: r.node(t, 99).addr, Err: errors.New("nobody there")}
	app.publish("dev/a", []byte("x"), 1)
	if p := n.expect(sn.TypePublish).Publish; p.Dup {
		t.Fatal("first transmission with DUP")
	}
	r.failures <- transport.TxFailure{To: n.addr, Err: errors.New("xbee: route not found")}
	p := n.expect(sn.TypePublish).Publish
	if !p.Dup || string(p.Data) != "x" {
		t.Fatalf("retransmission %+v", p)
	}
	n.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
	n.send(&sn.Pingreq{})
	n.expect(sn.TypePingresp)
	if st := gw.Stats(); st.TxFailures != 2 || st.TxFailureResends != 1 || st.Retransmits != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestRadioLinkTxFailureCongested: a failure that wraps ErrCongested (a
// LoRaLink modem found no free channel) is left to the retry timer; it
// neither resends at once nor holds the link.
func TestRadioLinkTxFailureCongested(t *testing.T) {
	r := newFakeRadio()
	r.advice.Store(int64(time.Hour))
	gw, srv := startRadioGateway(t, radioConfig(), r)
	app := newMQTTApp(t, srv, "app", 1)
	n := r.node(t, 7)
	connectFake(t, n, "lora-node", "dev/a")
	n.send(&sn.Register{MsgID: 2, TopicName: []byte("up/a")})
	id := n.expect(sn.TypeRegack).Regack.TopicID
	app.publish("dev/a", []byte("x"), 1)
	pub := n.expect(sn.TypePublish).Publish
	r.failures <- transport.TxFailure{To: n.addr, Err: fmt.Errorf("loralink: no free channel (%w)", transport.ErrCongested)}
	eventually(t, "the failure counted", func() bool { return gw.Stats().TxFailures == 1 })
	n.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 3, Data: []byte("up")})
	if rc := n.expect(sn.TypePuback).Puback.ReturnCode; rc != sn.Accepted {
		t.Fatalf("PUBACK %v", rc)
	}
	n.send(&sn.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})
	n.send(&sn.Pingreq{})
	n.expect(sn.TypePingresp)
	if st := gw.Stats(); st.TxFailureResends != 0 || st.Retransmits != 0 || st.RejectCongestion != 0 {
		t.Errorf("stats %+v", st)
	}
}

// On a link whose congestion concerns one peer (a packet forwarder's
// node queue or forwarder budget), a refused delivery holds that client
// alone: its requests are answered "congestion", its neighbour's are not.
func TestRadioLinkCongestionPerPeer(t *testing.T) {
	r := newFakeRadio()
	r.perPeer = true
	cfg := radioConfig()
	cfg.RetryInterval = 30 * time.Millisecond
	gw, srv := startRadioGateway(t, cfg, r)
	app := newMQTTApp(t, srv, "app", 1)
	a, b := r.node(t, 0, 1), r.node(t, 0, 2)
	connectFake(t, a, "node-a", "dev/a")
	connectFake(t, b, "node-b", "dev/b")
	b.send(&sn.Register{MsgID: 2, TopicName: []byte("up/b")})
	bID := b.expect(sn.TypeRegack).Regack.TopicID

	r.refuseTo.Store(a.addr)
	r.refuseAt.Store(int32(transport.PriorityDelivery))
	app.publish("dev/a", []byte("for-a"), 1)
	eventually(t, "the delivery to a refused", func() bool { return gw.Stats().LinkCongested > 0 })
	untilCongestion(t, a, "REGISTER", func(i int) sn.Message {
		return &sn.Register{MsgID: uint16(10 + i), TopicName: []byte("up/a")}
	}, func(p *sn.Packet) sn.ReturnCode { return p.Regack.ReturnCode }, sn.TypeRegack)
	b.send(&sn.Publish{QoS: sn.QoS1, TopicID: bID, MsgID: 3, Data: []byte("b")})
	if rc := b.expect(sn.TypePuback).Puback.ReturnCode; rc != sn.Accepted {
		t.Fatalf("neighbour's PUBACK %v", rc)
	}
	app.publish("dev/b", []byte("for-b"), 0)
	if p := b.expect(sn.TypePublish).Publish; string(p.Data) != "for-b" {
		t.Fatalf("neighbour got %q", p.Data)
	}
	r.refuseAt.Store(-1)
	p := a.expect(sn.TypePublish).Publish
	if string(p.Data) != "for-a" || p.Dup {
		t.Fatalf("a got %+v", p)
	}
}
