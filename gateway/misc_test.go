package gateway

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/udp"
)

// QoS -1 from an allowed sender, with predefined, short and long names;
// never acknowledged. Other senders are dropped.
func TestQoSMinus1(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e := newEnv(t, func(c *Config) {
		c.Predefined = []TopicConfig{{ID: 1, Name: "sn/predef/1"}}
		c.Clients = []ClientConfig{{ID: "qm1", Address: conn.LocalAddr().String(), QoSMinus1: true}}
	})
	allowed := &sensor{t: t, conn: conn, gw: e.addr, buf: make([]byte, 256)}
	a := e.app("app", "#")
	allowed.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDPredefined, TopicID: 1, Data: []byte("p")})
	if m := a.next(); m.Topic != "sn/predef/1" || m.QoS != 0 || m.From != "qm1" {
		t.Fatalf("predefined: %+v", m)
	}
	short, _ := sn.ShortTopicID("ab")
	allowed.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: short, Data: []byte("s")})
	if m := a.next(); m.Topic != "ab" {
		t.Fatalf("short: %+v", m)
	}
	long := "a/long/topic"
	allowed.send(&sn.Publish{QoS: sn.QoSMinus1, TopicID: uint16(len(long)), Data: []byte(long + "payload")})
	if m := a.next(); m.Topic != long || string(m.Payload) != "payload" {
		t.Fatalf("long: %+v", m)
	}
	other := e.sensor()
	other.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDPredefined, TopicID: 1, Data: []byte("no")})
	if p := other.recvWithin(100 * time.Millisecond); p != nil {
		t.Fatalf("QoS -1 answered: %v", p)
	}
	eventually(t, "rejection counted", func() bool { return e.gw.Stats().RejectQoSMinus1 == 1 })
	if st := e.gw.Stats(); st.QoSMinus1In != 3 || st.Clients != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// With the global switch, any sender may publish QoS -1.
func TestQoSMinus1Global(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowQoSMinus1 = true })
	a := e.app("app", "#")
	short, _ := sn.ShortTopicID("zz")
	e.sensor().send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: short, Data: []byte("g")})
	if m := a.next(); m.Topic != "zz" || m.From != "sn-qos-1" {
		t.Fatalf("%+v", m)
	}
}

// SUBSCRIBE by predefined ID and short name; unknown predefined ID gets
// "invalid topic ID"; UNSUBSCRIBE stops deliveries.
func TestSubscribeKinds(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Predefined = []TopicConfig{{ID: 2, Name: "sn/predef/2"}} })
	a := e.app("app")
	s := e.sensor()
	s.connect("sub", true, 60)
	s.send(&sn.Subscribe{QoS: sn.QoS1, TopicIDType: sn.TopicIDPredefined, TopicID: 2, MsgID: 1})
	sa := s.expect(sn.TypeSuback).Suback
	if sa.TopicID != 2 || sa.ReturnCode != sn.Accepted || sa.QoS != sn.QoS1 {
		t.Fatalf("SUBACK %+v", sa)
	}
	a.publish("sn/predef/2", "pd", 0)
	if p := s.expect(sn.TypePublish).Publish; p.TopicIDType != sn.TopicIDPredefined || p.TopicID != 2 {
		t.Fatalf("PUBLISH %+v", p)
	}
	short, _ := sn.ShortTopicID("ab")
	s.send(&sn.Subscribe{QoS: sn.QoS0, TopicIDType: sn.TopicIDShort, TopicID: short, MsgID: 2})
	if sa := s.expect(sn.TypeSuback).Suback; sa.TopicID != short || sa.ReturnCode != sn.Accepted {
		t.Fatalf("SUBACK %+v", sa)
	}
	a.publish("ab", "sh", 0)
	if p := s.expect(sn.TypePublish).Publish; p.TopicIDType != sn.TopicIDShort || p.TopicID != short {
		t.Fatalf("PUBLISH %+v", p)
	}
	s.send(&sn.Subscribe{QoS: sn.QoS0, TopicIDType: sn.TopicIDPredefined, TopicID: 10, MsgID: 3})
	if sa := s.expect(sn.TypeSuback).Suback; sa.ReturnCode != sn.RejectedInvalidTopicID {
		t.Fatalf("SUBACK %+v", sa)
	}
	s.send(&sn.Unsubscribe{TopicIDType: sn.TopicIDShort, TopicID: short, MsgID: 4})
	if u := s.expect(sn.TypeUnsuback).Unsuback; u.MsgID != 4 {
		t.Fatalf("UNSUBACK %+v", u)
	}
	s.send(&sn.Unsubscribe{TopicName: []byte("never/subscribed"), MsgID: 5})
	s.expect(sn.TypeUnsuback)
	a.publish("ab", "gone", 0)
	a.publish("sn/predef/2", "still", 0)
	if p := s.expect(sn.TypePublish).Publish; string(p.Data) != "still" {
		t.Fatalf("delivery after UNSUBSCRIBE: %q", p.Data)
	}
}

// Retained messages follow the SUBACK.
func TestSubscribeRetained(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.PublishAnonymous(&broker.Message{Topic: "ret/1", Payload: []byte("kept"), Retain: true}, ""); err != nil {
		t.Fatal(err)
	}
	s := e.sensor()
	s.connect("r", true, 60)
	sa := s.subscribe("ret/1", sn.QoS0, 1)
	p := s.expect(sn.TypePublish).Publish
	if !p.Retain || p.TopicID != sa.TopicID || string(p.Data) != "kept" {
		t.Fatalf("retained PUBLISH %+v", p)
	}
}

// Clients behind a forwarder are keyed by (forwarder, node ID); replies
// are encapsulated for the same node.
func TestForwarder(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app", "fw/#")
	n1 := e.sensor()
	n1.node = []byte{0x00, 0x2a}
	n2 := &sensor{t: t, conn: n1.conn, gw: n1.gw, buf: make([]byte, 2048), node: []byte("node8")}
	n1.connect("behind-1", true, 60)
	n2.connect("behind-2", true, 60)
	id := n1.register("fw/1", 1)
	n1.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 3, Data: []byte("via fw")})
	n1.expect(sn.TypePuback)
	if m := a.next(); m.From != "behind-1" || string(m.Payload) != "via fw" {
		t.Fatalf("%+v", m)
	}
	n2.subscribe("fw/2", sn.QoS0, 1)
	a.publish("fw/2", "down", 0)
	if p := n2.expect(sn.TypePublish).Publish; string(p.Data) != "down" {
		t.Fatalf("%+v", p)
	}
	if st := e.gw.Stats(); st.Clients != 2 || st.EncapsulatedIn == 0 || st.EncapsulatedOut == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// The forwarder allow-list drops other forwarders' frames.
func TestForwarderAllowList(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Forwarders = []string{"192.0.2.1"} })
	s := e.sensor()
	s.node = []byte("n")
	s.send(&sn.Connect{ClientID: []byte("x"), ProtocolID: sn.V12, CleanSession: true})
	if p := s.recvWithin(100 * time.Millisecond); p != nil {
		t.Fatalf("answered: %v", p)
	}
	eventually(t, "counted", func() bool { return e.gw.Stats().RejectForwarder == 1 })
}

// SEARCHGW is answered with GWINFO (broadcast to the configured group;
// here a unicast address stands for the group), and ADVERTISE is sent
// every T_ADV.
func TestDiscovery(t *testing.T) {
	group, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	e := newEnv(t, func(c *Config) {
		c.GatewayID = 7
		c.AdvertiseInterval = 50 * time.Millisecond
	}, udp.Config{Addr: "127.0.0.1:0", MulticastGroup: group.LocalAddr().String()})
	g := &sensor{t: t, conn: group, gw: e.addr, buf: make([]byte, 64)}
	sawAdv, sawInfo := 0, false
	e.sensor().send(&sn.SearchGW{Radius: 1})
	for !sawInfo || sawAdv < 2 {
		p := g.recv()
		switch p.Type {
		case sn.TypeAdvertise:
			if p.Advertise.GwID != 7 {
				t.Fatalf("%v", p)
			}
			sawAdv++
		case sn.TypeGWInfo:
			if p.GWInfo.GwID != 7 || p.GWInfo.GwAdd != nil {
				t.Fatalf("%v", p)
			}
			sawInfo = true
		}
	}
}

// Without a broadcast group, GWINFO goes back to the searcher.
func TestDiscoveryUnicast(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.send(&sn.SearchGW{Radius: 0})
	if p := s.expect(sn.TypeGWInfo); p.GWInfo.GwID != 1 {
		t.Fatalf("%v", p)
	}
}

// identLink is a UDP link that authenticates peers, like DTLS.
type identLink struct {
	*udp.Link
	ids map[netip.AddrPort]string
}

func (l *identLink) PeerIdentity(a transport.Addr) (string, bool) {
	ap, _ := a.AddrPort()
	id, ok := l.ids[ap]
	return id, ok
}

// On links with peer identities, a client ID must be bound to the
// identity.
func TestIdentityBinding(t *testing.T) {
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, _ := broker.New(bcfg)
	defer srv.Close()
	ul, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	bad, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer good.Close()
	defer bad.Close()
	l := &identLink{Link: ul, ids: map[netip.AddrPort]string{
		good.LocalAddr().(*net.UDPAddr).AddrPort(): "psk-a",
		bad.LocalAddr().(*net.UDPAddr).AddrPort():  "psk-b",
	}}
	cfg := testConfig()
	cfg.Identities = []IdentityConfig{{Identity: "psk-a", ClientIDs: []string{"dev-a"}}, {Identity: "psk-b", ClientIDs: []string{"dev-b"}}}
	gw, err := New(cfg, srv, l)
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve()
	defer gw.Close()
	gaddr := net.UDPAddrFromAddrPort(ul.LocalAddr())
	sg := &sensor{t: t, conn: good, gw: gaddr, buf: make([]byte, 256)}
	sb := &sensor{t: t, conn: bad, gw: gaddr, buf: make([]byte, 256)}
	sg.connect("dev-a", true, 60)
	sb.send(&sn.Connect{ClientID: []byte("dev-a"), ProtocolID: sn.V12, CleanSession: true})
	if rc := sb.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("CONNACK %v", rc)
	}
	if gw.Stats().RejectIdentity != 1 {
		t.Fatal("not counted")
	}
}

// An MQTT connection with the same client ID takes the session over: the
// sensor gets DISCONNECT.
func TestTakeover(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.connect("dup", true, 60)
	e.app("dup")
	s.expect(sn.TypeDisconnect)
	eventually(t, "client removed", func() bool { return e.gw.Stats().Clients == 0 })
}

// Close sends DISCONNECT to connected clients.
func TestCloseGraceful(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.connect("bye", true, 60)
	if err := e.gw.Close(); err != nil {
		t.Fatal(err)
	}
	s.expect(sn.TypeDisconnect)
}
