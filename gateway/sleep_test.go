package gateway

import (
	"testing"

	"github.com/sngate/sngate/sn"
)

// A sleeping client's messages (QoS 0 and 1) are buffered; it wakes with
// PINGREQ(ClientId) from a new source port, gets them with full
// handshakes (REGISTER for a wildcard topic first), then PINGRESP.
func TestSleepWakeFromNewPort(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app")
	s := e.sensor()
	s.connect("sleeper", false, 60)
	s.subscribe("home/#", sn.QoS1, 1)
	s.send(&sn.Disconnect{HasDuration: true, Duration: 1000})
	s.expect(sn.TypeDisconnect)
	eventually(t, "asleep", func() bool { return e.gw.Stats().Sleeping == 1 })
	a.publish("home/temp", "21", 1)
	a.publish("home/temp", "22", 0)
	a.publish("home/hum", "40", 1)
	if p := s.recvWithin(100e6); p != nil {
		t.Fatalf("frame sent to a sleeping client: %v", p)
	}
	old := s.addr()
	s.rebind()
	if s.addr() == old {
		t.Fatal("rebind kept the port")
	}
	s.send(&sn.Pingreq{ClientID: []byte("sleeper")})
	want := []string{"21", "22", "40"}
	for len(want) > 0 {
		p := s.recv()
		switch p.Type {
		case sn.TypeRegister:
			s.send(&sn.Regack{TopicID: p.Register.TopicID, MsgID: p.Register.MsgID})
		case sn.TypePublish:
			pub := p.Publish
			if string(pub.Data) != want[0] {
				t.Fatalf("got %q, want %q", pub.Data, want[0])
			}
			want = want[1:]
			if pub.QoS == sn.QoS1 {
				s.send(&sn.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})
			}
		default:
			t.Fatalf("unexpected %v while flushing", p)
		}
	}
	s.expect(sn.TypePingresp)
	eventually(t, "asleep again", func() bool { return e.gw.Stats().Sleeping == 1 })
	if st := e.gw.Stats(); st.Rebinds != 1 || st.Wakes != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Nothing buffered: PINGRESP at once.
	s.send(&sn.Pingreq{ClientID: []byte("sleeper")})
	s.expect(sn.TypePingresp)
	// CONNECT from asleep resumes the session.
	s.connect("sleeper", false, 60)
	a.publish("home/x", "after", 0)
	p := s.recv()
	if p.Type == sn.TypeRegister {
		s.send(&sn.Regack{TopicID: p.Register.TopicID, MsgID: p.Register.MsgID})
		p = s.expect(sn.TypePublish)
	}
	if string(p.Publish.Data) != "after" {
		t.Fatalf("after reconnect: %v", p)
	}
}

// A bare PUBLISH from a new address does not move the binding.
func TestSleepNoRebindByPublish(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.connect("c1", true, 60)
	id := s.register("t/1", 1)
	s.rebind()
	s.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 2})
	s.expect(sn.TypeDisconnect)
	if st := e.gw.Stats(); st.Rebinds != 0 {
		t.Fatalf("rebinds %d", st.Rebinds)
	}
}

// Sleep expiry: the client is lost and its will published.
func TestSleepExpiryLost(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app", "will/#")
	s := e.sensor()
	willConnect(t, s, "dozer", "will/dozer", "overslept", 600)
	s.send(&sn.Disconnect{HasDuration: true, Duration: 10}) // 100 ms x 1.5
	s.expect(sn.TypeDisconnect)
	m := a.next()
	if m.Topic != "will/dozer" || string(m.Payload) != "overslept" {
		t.Fatalf("will %+v", m)
	}
	eventually(t, "client removed", func() bool { st := e.gw.Stats(); return st.Lost == 1 && st.Sleeping == 0 })
}

// A new DISCONNECT(duration) while asleep restarts the timer.
func TestSleepRestart(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.connect("s", false, 600)
	s.send(&sn.Disconnect{HasDuration: true, Duration: 10})
	s.expect(sn.TypeDisconnect)
	s.send(&sn.Disconnect{HasDuration: true, Duration: 60000})
	s.expect(sn.TypeDisconnect)
	s.send(&sn.Pingreq{ClientID: []byte("s")})
	s.expect(sn.TypePingresp)
	if st := e.gw.Stats(); st.Lost != 0 || st.Sleeping != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Retransmission: an unanswered PUBLISH is resent with DUP MaxRetries
// times, then the client is lost and its will published.
func TestRetransmitThenLost(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app", "will/#")
	s := e.sensor()
	willConnect(t, s, "mute", "will/mute", "mute lost", 600)
	s.subscribe("cmd", sn.QoS1, 1)
	e.app("commander").publish("cmd", "do", 1)
	first := s.expect(sn.TypePublish).Publish
	if first.Dup {
		t.Fatal("first transmission has DUP")
	}
	for i := 0; i < 2; i++ { // MaxRetries = 2
		p := s.expect(sn.TypePublish).Publish
		if !p.Dup || p.MsgID != first.MsgID || string(p.Data) != "do" {
			t.Fatalf("retransmission %d: %+v", i, p)
		}
	}
	if m := a.next(); m.Topic != "will/mute" {
		t.Fatalf("will %+v", m)
	}
	eventually(t, "client lost", func() bool { st := e.gw.Stats(); return st.Retransmits == 2 && st.Lost == 1 })
}

// The gateway's REGISTER is retransmitted too.
func TestRetransmitRegister(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.connect("r", true, 600)
	s.subscribe("r/#", sn.QoS0, 1)
	e.app("p").publish("r/1", "x", 0)
	r1 := s.expect(sn.TypeRegister).Register
	r2 := s.expect(sn.TypeRegister).Register
	if r1.MsgID != r2.MsgID || r1.TopicID != r2.TopicID {
		t.Fatalf("retransmitted REGISTER differs: %+v %+v", r1, r2)
	}
	s.send(&sn.Regack{TopicID: r2.TopicID, MsgID: r2.MsgID})
	if p := s.expect(sn.TypePublish).Publish; string(p.Data) != "x" {
		t.Fatalf("PUBLISH %+v", p)
	}
}
