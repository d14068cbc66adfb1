package gateway

import (
	"testing"

	"github.com/sngate/sngate/sn"
)

// Uplink: REGISTER then PUBLISH at QoS 0, 1 and 2 reach the app.
func TestPublishUplink(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app", "sensors/#")
	s := e.sensor()
	s.connect("s1", true, 60)
	id := s.register("sensors/t", 1)
	if id == 0 {
		t.Fatal("topic ID 0")
	}
	s.send(&sn.Publish{QoS: sn.QoS0, TopicID: id, Data: []byte("q0")})
	if m := a.next(); m.Topic != "sensors/t" || string(m.Payload) != "q0" || m.From != "s1" {
		t.Fatalf("got %+v", m)
	}
	s.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 7, Data: []byte("q1")})
	pa := s.expect(sn.TypePuback).Puback
	if pa.MsgID != 7 || pa.TopicID != id || pa.ReturnCode != sn.Accepted {
		t.Fatalf("PUBACK %+v", pa)
	}
	if m := a.next(); string(m.Payload) != "q1" || m.QoS != 1 {
		t.Fatalf("got %+v", m)
	}
	s.send(&sn.Publish{QoS: sn.QoS2, TopicID: id, MsgID: 8, Data: []byte("q2")})
	if p := s.expect(sn.TypePubrec); p.Pubrec.MsgID != 8 {
		t.Fatalf("PUBREC %v", p)
	}
	// A duplicate before PUBREL is not published twice.
	s.send(&sn.Publish{Dup: true, QoS: sn.QoS2, TopicID: id, MsgID: 8, Data: []byte("q2")})
	s.expect(sn.TypePubrec)
	s.send(&sn.Pubrel{MsgID: 8})
	if p := s.expect(sn.TypePubcomp); p.Pubcomp.MsgID != 8 {
		t.Fatalf("PUBCOMP %v", p)
	}
	if m := a.next(); string(m.Payload) != "q2" || m.QoS != 2 {
		t.Fatalf("got %+v", m)
	}
	s.send(&sn.Publish{QoS: sn.QoS0, TopicID: id, Data: []byte("after")})
	if m := a.next(); string(m.Payload) != "after" {
		t.Fatalf("duplicate QoS 2 message reached the app: %+v", m)
	}
}

// Predefined and short topic IDs need no REGISTER.
func TestPublishPredefinedAndShort(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Predefined = []TopicConfig{{ID: 1, Name: "sn/predef/1"}}
		c.Clients = []ClientConfig{{ID: "special", Predefined: []TopicConfig{{ID: 1, Name: "mine/1"}}}}
	})
	a := e.app("app", "#")
	s := e.sensor()
	s.connect("s1", true, 60)
	s.send(&sn.Publish{QoS: sn.QoS1, TopicIDType: sn.TopicIDPredefined, TopicID: 1, MsgID: 1, Data: []byte("p")})
	s.expect(sn.TypePuback)
	if m := a.next(); m.Topic != "sn/predef/1" {
		t.Fatalf("topic %q", m.Topic)
	}
	short, _ := sn.ShortTopicID("ab")
	s.send(&sn.Publish{QoS: sn.QoS1, TopicIDType: sn.TopicIDShort, TopicID: short, MsgID: 2, Data: []byte("s")})
	if pa := s.expect(sn.TypePuback).Puback; pa.TopicID != short {
		t.Fatalf("PUBACK topic ID %#x, want %#x (not byte-swapped)", pa.TopicID, short)
	}
	if m := a.next(); m.Topic != "ab" {
		t.Fatalf("topic %q", m.Topic)
	}
	sp := e.sensor()
	sp.connect("special", true, 60)
	sp.send(&sn.Publish{QoS: sn.QoS0, TopicIDType: sn.TopicIDPredefined, TopicID: 1, Data: []byte("x")})
	if m := a.next(); m.Topic != "mine/1" {
		t.Fatalf("per-client predefined topic %q", m.Topic)
	}
}

// An unknown topic ID is answered PUBACK "invalid topic ID" at every QoS.
func TestPublishUnknownTopicID(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.connect("s1", true, 60)
	for _, q := range []sn.QoS{sn.QoS0, sn.QoS1, sn.QoS2} {
		s.send(&sn.Publish{QoS: q, TopicID: 99, MsgID: uint16(q) + 1})
		pa := s.expect(sn.TypePuback).Puback
		if pa.ReturnCode != sn.RejectedInvalidTopicID || pa.TopicID != 99 {
			t.Fatalf("QoS %v: PUBACK %+v", q, pa)
		}
	}
	s.send(&sn.Publish{QoS: sn.QoS1, TopicIDType: sn.TopicIDPredefined, TopicID: 5, MsgID: 9})
	if pa := s.expect(sn.TypePuback).Puback; pa.ReturnCode != sn.RejectedInvalidTopicID {
		t.Fatalf("predefined: %+v", pa)
	}
	if got := e.gw.Stats().RejectTopicID; got != 4 {
		t.Fatalf("RejectTopicID = %d", got)
	}
}

// A PUBLISH from an address without a client gets DISCONNECT.
func TestPublishWithoutConnect(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.send(&sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 1})
	s.expect(sn.TypeDisconnect)
}

// Downlink: SUBACK carries the registered ID for a plain name, and the
// gateway publishes at QoS 0, 1 and 2 with the full handshakes.
func TestPublishDownlink(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app")
	s := e.sensor()
	s.connect("s1", true, 60)
	sa := s.subscribe("down/x", sn.QoS2, 1)
	if sa.ReturnCode != sn.Accepted || sa.TopicID == 0 || sa.QoS != sn.QoS2 {
		t.Fatalf("SUBACK %+v", sa)
	}
	a.publish("down/x", "zero", 0)
	p := s.expect(sn.TypePublish).Publish
	if p.TopicID != sa.TopicID || p.QoS != sn.QoS0 || string(p.Data) != "zero" {
		t.Fatalf("PUBLISH %+v", p)
	}
	a.publish("down/x", "one", 1)
	p = s.expect(sn.TypePublish).Publish
	if p.QoS != sn.QoS1 || p.MsgID == 0 || string(p.Data) != "one" {
		t.Fatalf("PUBLISH %+v", p)
	}
	s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
	a.publish("down/x", "two", 2)
	p = s.expect(sn.TypePublish).Publish
	if p.QoS != sn.QoS2 || string(p.Data) != "two" {
		t.Fatalf("PUBLISH %+v", p)
	}
	s.send(&sn.Pubrec{MsgID: p.MsgID})
	if rel := s.expect(sn.TypePubrel); rel.Pubrel.MsgID != p.MsgID {
		t.Fatalf("PUBREL %v", rel)
	}
	s.send(&sn.Pubcomp{MsgID: p.MsgID})
	eventually(t, "session idle", func() bool { return e.gw.Stats().PublishOut == 3 })
}

// One QoS 1 message in flight per direction: the second waits for the
// PUBACK of the first.
func TestPublishDownlinkOneInFlight(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app")
	s := e.sensor()
	s.connect("s1", true, 60)
	s.subscribe("q/1", sn.QoS1, 1)
	a.publish("q/1", "a", 1)
	a.publish("q/1", "b", 1)
	p := s.expect(sn.TypePublish).Publish
	if string(p.Data) != "a" {
		t.Fatalf("first %q", p.Data)
	}
	if q := s.recvWithin(150 * 1e6); q != nil && q.Type == sn.TypePublish && string(q.Publish.Data) == "b" {
		t.Fatal("second QoS 1 PUBLISH sent before the first was acknowledged")
	}
	s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
	for {
		q := s.expect(sn.TypePublish).Publish
		if string(q.Data) == "b" {
			break
		}
		if !q.Dup { // a retransmission of "a" may come first
			t.Fatalf("unexpected %q", q.Data)
		}
	}
}

// Wildcard subscription: SUBACK topic ID 0, then the gateway REGISTERs
// each new topic before publishing on it, and reuses the ID afterwards.
func TestPublishWildcardRegister(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app")
	s := e.sensor()
	s.connect("s1", true, 60)
	if sa := s.subscribe("w/#", sn.QoS1, 1); sa.TopicID != 0 {
		t.Fatalf("SUBACK topic ID %d for a wildcard", sa.TopicID)
	}
	a.publish("w/a", "1", 1)
	r := s.expect(sn.TypeRegister).Register
	if string(r.TopicName) != "w/a" || r.TopicID == 0 {
		t.Fatalf("REGISTER %+v", r)
	}
	s.send(&sn.Regack{TopicID: r.TopicID, MsgID: r.MsgID})
	p := s.expect(sn.TypePublish).Publish
	if p.TopicID != r.TopicID || string(p.Data) != "1" {
		t.Fatalf("PUBLISH %+v", p)
	}
	s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
	a.publish("w/a", "2", 0)
	p = s.expect(sn.TypePublish).Publish
	if p.TopicID != r.TopicID || string(p.Data) != "2" {
		t.Fatalf("second PUBLISH %+v (no REGISTER expected)", p)
	}
}
