package gateway

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
)

// authEnv is a broker that refuses anonymous clients, with acl (nil for
// none), and a gateway serving links.
func authEnv(t *testing.T, acl string, mutate func(*Config), links ...transport.Link) (*broker.Server, *Gateway) {
	t.Helper()
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	bcfg.AllowAnonymous = false
	srv, err := broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if acl != "" {
		a, err := auth.ParseACL(strings.NewReader(acl))
		if err != nil {
			t.Fatal(err)
		}
		srv.SetAuth(nil, a)
	}
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := New(cfg, srv, links...)
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve()
	t.Cleanup(func() { _ = gw.Close() })
	return srv, gw
}

// sensorFor is a raw MQTT-SN client of the UDP link l, on conn.
func sensorFor(t *testing.T, conn *net.UDPConn, l interface{ LocalAddr() netip.AddrPort }) *sensor {
	t.Cleanup(func() { conn.Close() })
	return &sensor{t: t, conn: conn, gw: net.UDPAddrFromAddrPort(l.LocalAddr()), buf: make([]byte, 2048)}
}

// publish1 publishes a QoS 1 message to topic (registered as msgID) and
// returns the PUBACK return code.
func (s *sensor) publish1(topic string, msgID uint16) sn.ReturnCode {
	s.t.Helper()
	id := s.register(topic, msgID)
	s.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: msgID + 1, Data: []byte("v")})
	return s.expect(sn.TypePuback).Puback.ReturnCode
}

// With AllowAnonymous off, MQTT-SN sensors the gateway admitted still
// connect and publish: the gateway vouches for them.
func TestBrokerRefusesAnonymousButGatewayAdmits(t *testing.T) {
	l := testUDPLink(t)
	srv, gw := authEnv(t, "", nil, l)
	sink := &appSink{ch: make(chan broker.Delivery, 16)}
	if _, _, err := srv.Connect(broker.ConnectInfo{ClientID: "app"}, sink); err == nil {
		t.Fatal("the broker accepted an anonymous MQTT client")
	}
	app, _, err := srv.Connect(broker.ConnectInfo{ClientID: "app", Authenticated: true}, sink)
	if err != nil {
		t.Fatal(err)
	}
	app.Subscribe([]broker.Subscription{{Filter: "sensors/#"}})
	app.Resume()

	s := sensorFor(t, loopbackUDP(t), l)
	s.connect("dev1", true, 60)
	if rc := s.publish1("sensors/dev1/t", 1); rc != sn.Accepted {
		t.Fatalf("PUBACK %v", rc)
	}
	if d := <-sink.ch; d.Msg.Topic != "sensors/dev1/t" || d.Msg.From != "dev1" {
		t.Fatalf("delivery %+v", d.Msg)
	}
	if st := gw.Stats(); st.RejectBroker != 0 || st.Connects != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// On a link that authenticates peers, the identity is the session's user
// name: ACL user sections and %u apply. Plain links connect with none.
func TestLinkIdentityIsBrokerUser(t *testing.T) {
	good := loopbackUDP(t)
	ident := &identLink{Link: testUDPLink(t), ids: map[netip.AddrPort]string{
		good.LocalAddr().(*net.UDPAddr).AddrPort(): "psk-dev1"}}
	plain := testUDPLink(t)
	srv, _ := authEnv(t, `
user psk-dev1
topic write sensors/dev1/#
pattern write devices/%u/#
`, func(c *Config) {
		c.Identities = []IdentityConfig{{Identity: "psk-dev1", ClientIDs: []string{"dev1"}}}
	}, ident, plain)

	s := sensorFor(t, good, ident.Link)
	s.connect("dev1", true, 60)
	if rc := s.publish1("sensors/dev1/t", 1); rc != sn.Accepted {
		t.Fatalf("user rule: PUBACK %v", rc)
	}
	if rc := s.publish1("devices/psk-dev1/t", 3); rc != sn.Accepted {
		t.Fatalf("%%u pattern: PUBACK %v", rc)
	}
	if rc := s.publish1("sensors/dev2/t", 5); rc == sn.Accepted {
		t.Fatal("ACL did not deny another sensor's topic")
	}

	// Same client ID pattern on a plain link: no user name, no rights.
	p := sensorFor(t, loopbackUDP(t), plain)
	p.connect("dev2", true, 60)
	if rc := p.publish1("sensors/dev1/t", 1); rc == sn.Accepted {
		t.Fatal("a plain-link sensor got the DTLS identity's rights")
	}
	if rc := p.publish1("devices/psk-dev1/t", 3); rc == sn.Accepted {
		t.Fatal("a plain-link sensor got the DTLS identity's %u rights")
	}
	if n := srv.Stats().ACLDenied; n != 3 {
		t.Fatalf("ACL denied %d, want 3", n)
	}
}
