package listeners

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sngate/sngate/broker/packets"
)

// MQTT 5 behaviour, driven by paho.golang.

func TestV5QoSAndProperties(t *testing.T) {
	_, addr := setup(t, Config{})
	sub := dialV5(t, addr, "sub", nil)
	pub := dialV5(t, addr, "pub", nil)
	for q := byte(0); q <= 2; q++ {
		topic := fmt.Sprintf("v5/q%d", q)
		sub.sub(t, paho.SubscribeOptions{Topic: topic, QoS: q})
		pf := byte(1)
		r := pub.pub(t, &paho.Publish{Topic: topic, QoS: q, Payload: []byte("héllo"),
			Properties: &paho.PublishProperties{
				PayloadFormat: &pf, ContentType: "text/plain", ResponseTopic: "reply/to",
				CorrelationData: []byte{1, 2}, User: paho.UserProperties{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}},
			}})
		if q > 0 && r.ReasonCode != 0 {
			t.Fatalf("QoS %d ack reason 0x%02X", q, r.ReasonCode)
		}
		m := sub.recv(t)
		p := m.Properties
		if m.Topic != topic || m.QoS != q || string(m.Payload) != "héllo" || p == nil ||
			p.PayloadFormat == nil || *p.PayloadFormat != 1 || p.ContentType != "text/plain" ||
			p.ResponseTopic != "reply/to" || !bytes.Equal(p.CorrelationData, []byte{1, 2}) ||
			len(p.User) != 2 || p.User.Get("k") != "v" {
			t.Fatalf("QoS %d: %+v props %+v", q, m, p)
		}
	}
}

func TestV5ConnackProperties(t *testing.T) {
	_, addr := setup(t, Config{ServerKeepAlive: 7 * time.Second, ReceiveMaximum: 10,
		TopicAliasMaximum: 5, MaxPacketSize: 4096, ResponseInformation: "resp/"})
	c := dialV5(t, addr, "", &paho.Connect{CleanStart: true,
		Properties: &paho.ConnectProperties{RequestResponseInfo: true}})
	p := c.ack.Properties
	if p.AssignedClientID == "" || p.ServerKeepAlive == nil || *p.ServerKeepAlive != 7 ||
		p.ReceiveMaximum == nil || *p.ReceiveMaximum != 10 || p.TopicAliasMaximum == nil ||
		*p.TopicAliasMaximum != 5 || p.MaximumPacketSize == nil || *p.MaximumPacketSize != 4096 ||
		p.ResponseInfo != "resp/" {
		t.Fatalf("CONNACK properties %+v", p)
	}
	// The assigned identifier is the session's: reconnecting with it
	// resumes the session.
	d := dialV5(t, addr, p.AssignedClientID, &paho.Connect{CleanStart: false,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)}})
	if d.ack.Properties.AssignedClientID != "" {
		t.Fatal("identifier assigned to a client that had one")
	}
}

func TestV5TopicAliasFromClient(t *testing.T) {
	_, addr := setup(t, Config{TopicAliasMaximum: 3})
	sub := dialV5(t, addr, "sub", nil)
	sub.sub(t, paho.SubscribeOptions{Topic: "alias/#", QoS: 1})
	pub := dialV5(t, addr, "pub", nil)
	pub.pub(t, &paho.Publish{Topic: "alias/long/topic", QoS: 1, Payload: []byte("1"),
		Properties: &paho.PublishProperties{TopicAlias: paho.Uint16(2)}})
	pub.pub(t, &paho.Publish{QoS: 1, Payload: []byte("2"),
		Properties: &paho.PublishProperties{TopicAlias: paho.Uint16(2)}})
	for _, want := range []string{"1", "2"} {
		if m := sub.recv(t); m.Topic != "alias/long/topic" || string(m.Payload) != want {
			t.Fatalf("got %q %q", m.Topic, m.Payload)
		}
	}
}

func TestV5TopicAliasToClient(t *testing.T) {
	_, addr := setup(t, Config{})
	sub := dialV5(t, addr, "sub", &paho.Connect{CleanStart: true,
		Properties: &paho.ConnectProperties{TopicAliasMaximum: paho.Uint16(1)}})
	sub.sub(t, paho.SubscribeOptions{Topic: "ta/#"})
	pub := dialV5(t, addr, "pub", nil)
	for _, tp := range []string{"ta/one", "ta/one", "ta/two", "ta/one"} {
		pub.pub(t, &paho.Publish{Topic: tp, QoS: 1})
	}
	type got struct {
		topic string
		alias uint16
	}
	want := []got{{"ta/one", 1}, {"", 1}, {"ta/two", 0}, {"", 1}}
	for i, w := range want {
		m := sub.recv(t)
		var a uint16
		if m.Properties != nil && m.Properties.TopicAlias != nil {
			a = *m.Properties.TopicAlias
		}
		if (got{m.Topic, a}) != w {
			t.Fatalf("message %d: topic %q alias %d, want %+v", i, m.Topic, a, w)
		}
	}
}

func TestV5SubscriptionOptions(t *testing.T) {
	_, addr := setup(t, Config{})
	c := dialV5(t, addr, "self", nil)
	// No Local: our own publications do not come back.
	c.sub(t, paho.SubscribeOptions{Topic: "nl/t", QoS: 1, NoLocal: true})
	c.pub(t, &paho.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("mine")})
	c.none(t)
	other := dialV5(t, addr, "other", nil)
	other.pub(t, &paho.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("theirs")})
	if m := c.recv(t); string(m.Payload) != "theirs" {
		t.Fatalf("got %q", m.Payload)
	}

	// Retain As Published keeps RETAIN on live messages.
	c.sub(t, paho.SubscribeOptions{Topic: "rap/yes", QoS: 1, RetainAsPublished: true},
		paho.SubscribeOptions{Topic: "rap/no", QoS: 1})
	other.pub(t, &paho.Publish{Topic: "rap/yes", QoS: 1, Retain: true, Payload: []byte("y")})
	if m := c.recv(t); m.Topic != "rap/yes" || !m.Retain {
		t.Fatalf("RAP: %q retain=%v", m.Topic, m.Retain)
	}
	other.pub(t, &paho.Publish{Topic: "rap/no", QoS: 1, Retain: true, Payload: []byte("n")})
	if m := c.recv(t); m.Topic != "rap/no" || m.Retain {
		t.Fatalf("no RAP: %q retain=%v", m.Topic, m.Retain)
	}

	// Retain Handling: 0 always, 1 only for a new subscription, 2 never.
	other.pub(t, &paho.Publish{Topic: "rh/t", QoS: 1, Retain: true, Payload: []byte("r")})
	rh := dialV5(t, addr, "rh", nil)
	rh.sub(t, paho.SubscribeOptions{Topic: "rh/t", QoS: 1, RetainHandling: 2})
	rh.none(t)
	rh.sub(t, paho.SubscribeOptions{Topic: "rh/+", QoS: 1, RetainHandling: 1})
	if m := rh.recv(t); m.Topic != "rh/t" || !m.Retain {
		t.Fatalf("RH 1 new: %+v", m)
	}
	rh.sub(t, paho.SubscribeOptions{Topic: "rh/+", QoS: 1, RetainHandling: 1})
	rh.none(t)
	rh.sub(t, paho.SubscribeOptions{Topic: "rh/+", QoS: 1, RetainHandling: 0})
	if m := rh.recv(t); m.Topic != "rh/t" || !m.Retain {
		t.Fatalf("RH 0: %+v", m)
	}
}

func TestV5SubscriptionIdentifiers(t *testing.T) {
	_, addr := setup(t, Config{})
	c := dialV5(t, addr, "ids", nil)
	c.subProps(t, &paho.SubscribeProperties{SubscriptionIdentifier: intp(42)},
		paho.SubscribeOptions{Topic: "sid/#", QoS: 1})
	c.pub(t, &paho.Publish{Topic: "sid/x", QoS: 1})
	m := c.recv(t)
	if m.Properties == nil || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 42 {
		t.Fatalf("subscription identifier: %+v", m.Properties)
	}
	// Two matching subscriptions: a raw client sees both identifiers.
	r := rawConnected(t, addr, packets.V5, "ids-raw")
	r.send(&packets.Subscribe{PacketID: 1, Props: packets.Properties{SubscriptionIDs: []uint32{7}},
		Filters: []packets.SubOption{{Filter: "sid/+", QoS: 1}}})
	r.expect(packets.SUBACK)
	r.send(&packets.Subscribe{PacketID: 2, Props: packets.Properties{SubscriptionIDs: []uint32{900000}},
		Filters: []packets.SubOption{{Filter: "sid/#", QoS: 0}}})
	r.expect(packets.SUBACK)
	c.pub(t, &paho.Publish{Topic: "sid/y", QoS: 1})
	p := r.expect(packets.PUBLISH).(*packets.Publish)
	ids := map[uint32]bool{}
	for _, id := range p.Props.SubscriptionIDs {
		ids[id] = true
	}
	if len(ids) != 2 || !ids[7] || !ids[900000] {
		t.Fatalf("identifiers %v", p.Props.SubscriptionIDs)
	}
}

func intp(v int) *int { return &v }
