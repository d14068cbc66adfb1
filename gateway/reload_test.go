package gateway

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/sngate/sngate/sn"
)

// pubPredef publishes QoS 1 to a predefined topic ID and returns the
// PUBACK return code.
func (s *sensor) pubPredef(id, msgID uint16) sn.ReturnCode {
	s.t.Helper()
	s.send(&sn.Publish{QoS: sn.QoS1, TopicIDType: sn.TopicIDPredefined, TopicID: id, MsgID: msgID, Data: []byte("p")})
	return s.expect(sn.TypePuback).Puback.ReturnCode
}

func mustReload(t *testing.T, g *Gateway, cfg Config) {
	t.Helper()
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
}

// Reload swaps the global and per-client predefined topics; a connected
// client uses the new ones at once and keeps its session.
func TestReloadPredefinedTopics(t *testing.T) {
	e := newEnv(t, nil)
	app := e.app("app", "#")
	s := e.sensor()
	s.connect("dev1", false, 60)
	if rc := s.pubPredef(5, 1); rc != sn.RejectedInvalidTopicID {
		t.Fatalf("unknown predefined ID: PUBACK %v", rc)
	}
	cfg := testConfig()
	cfg.Predefined = []TopicConfig{{ID: 5, Name: "glob/t"}}
	cfg.Clients = []ClientConfig{{ID: "dev1", Predefined: []TopicConfig{{ID: 6, Name: "own/t"}, {ID: 5, Name: "own/five"}}}}
	mustReload(t, e.gw, cfg)
	if rc := s.pubPredef(6, 2); rc != sn.Accepted {
		t.Fatalf("per-client ID after reload: PUBACK %v", rc)
	}
	if m := app.next(); m.Topic != "own/t" {
		t.Fatalf("topic %q", m.Topic)
	}
	if rc := s.pubPredef(5, 3); rc != sn.Accepted {
		t.Fatalf("PUBACK %v", rc)
	}
	if m := app.next(); m.Topic != "own/five" {
		t.Fatalf("the client's own ID must win: topic %q", m.Topic)
	}
	cfg.Clients = nil
	mustReload(t, e.gw, cfg)
	if rc := s.pubPredef(6, 4); rc != sn.RejectedInvalidTopicID {
		t.Fatalf("removed per-client ID: PUBACK %v", rc)
	}
	if rc := s.pubPredef(5, 5); rc != sn.Accepted {
		t.Fatalf("PUBACK %v", rc)
	}
	if m := app.next(); m.Topic != "glob/t" {
		t.Fatalf("topic %q", m.Topic)
	}
	// Deliveries to the client use the new global table too.
	s.subscribe("glob/t", sn.QoS0, 6)
	app.publish("glob/t", "down", 0)
	if p := s.expect(sn.TypePublish).Publish; p.TopicIDType != sn.TopicIDPredefined || p.TopicID != 5 {
		t.Fatalf("delivery %+v", p)
	}
	if st := e.gw.Stats(); st.Connects != 1 || st.Active != 1 {
		t.Fatalf("reload touched the session: %+v", st)
	}
}

// Reload swaps the allow-list: new admissions follow it; a connected
// client that is no longer listed keeps its session until it reconnects.
func TestReloadAllowList(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RestrictClients = true
		c.Clients = []ClientConfig{{ID: "dev1"}}
	})
	s1, s2 := e.sensor(), e.sensor()
	s1.connect("dev1", true, 60)
	s2.send(&sn.Connect{ClientID: []byte("dev2"), ProtocolID: sn.V12, CleanSession: true, Duration: 60})
	if rc := s2.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("dev2 before reload: CONNACK %v", rc)
	}
	cfg := testConfig()
	cfg.RestrictClients = true
	cfg.Clients = []ClientConfig{{ID: "dev2"}}
	mustReload(t, e.gw, cfg)
	s2.connect("dev2", true, 60)

	// dev1 is no longer listed but stays connected.
	s1.send(&sn.Pingreq{})
	s1.expect(sn.TypePingresp)
	s1.register("a/b", 1)
	// Its next CONNECT is refused.
	s1.send(&sn.Connect{ClientID: []byte("dev1"), ProtocolID: sn.V12, CleanSession: true, Duration: 60})
	if rc := s1.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("dev1 after reload: CONNACK %v", rc)
	}
	// Turning the allow-list off admits anyone.
	cfg.RestrictClients = false
	mustReload(t, e.gw, cfg)
	s1.connect("dev1", true, 60)
	if st := e.gw.Stats(); st.RejectAllowList != 2 || st.Connects != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// Reload swaps QoS -1 rights: the global switch, the default identity and
// per-sender entries.
func TestReloadQoSMinus1(t *testing.T) {
	e := newEnv(t, nil)
	app := e.app("app", "ab")
	s := e.sensor()
	id, _ := sn.ShortTopicID("ab")
	send := func() {
		s.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: id, Data: []byte("m")})
	}
	send()
	eventually(t, "QoS -1 refusal", func() bool { return e.gw.Stats().RejectQoSMinus1 == 1 })

	cfg := testConfig()
	cfg.AllowQoSMinus1 = true
	cfg.QoSMinus1Identity = "anon-meter"
	mustReload(t, e.gw, cfg)
	send()
	if m := app.next(); m.From != "anon-meter" {
		t.Fatalf("identity %q", m.From)
	}

	cfg = testConfig()
	cfg.Clients = []ClientConfig{{ID: "meter-7", Address: s.addr().String(), QoSMinus1: true}}
	mustReload(t, e.gw, cfg)
	send()
	if m := app.next(); m.From != "meter-7" {
		t.Fatalf("identity %q", m.From)
	}

	mustReload(t, e.gw, testConfig())
	send()
	eventually(t, "QoS -1 refusal", func() bool { return e.gw.Stats().RejectQoSMinus1 == 2 })
	if st := e.gw.Stats(); st.QoSMinus1In != 2 {
		t.Fatalf("QoS -1 accepted %d", st.QoSMinus1In)
	}
}

// Reload swaps the forwarder allow-list and DisableForwarders.
func TestReloadForwarders(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Forwarders = []string{"192.0.2.1"} })
	s := e.sensor()
	s.node = []byte("n1")
	s.send(&sn.Connect{ClientID: []byte("node1"), ProtocolID: sn.V12, CleanSession: true, Duration: 60})
	eventually(t, "forwarder refusal", func() bool { return e.gw.Stats().RejectForwarder == 1 })

	cfg := testConfig()
	cfg.Forwarders = []string{"127.0.0.1"}
	mustReload(t, e.gw, cfg)
	s.connect("node1", true, 60)

	cfg.DisableForwarders = true
	mustReload(t, e.gw, cfg)
	s.send(&sn.Pingreq{})
	eventually(t, "forwarder refusal", func() bool { return e.gw.Stats().RejectForwarder == 2 })
	if st := e.gw.Stats(); st.PingsAnswered != 0 || st.Active != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Reload swaps the global Identities and the links' own policies; an
// invalid LinkPolicies entry changes nothing.
func TestReloadIdentities(t *testing.T) {
	good := loopbackUDP(t)
	l := &identLink{Link: testUDPLink(t), ids: map[netip.AddrPort]string{good.LocalAddr().(*net.UDPAddr).AddrPort(): "psk-a"}}
	plain := testUDPLink(t)
	srv := testBroker(t)
	cfg := testConfig()
	cfg.Identities = []IdentityConfig{{Identity: "psk-a", ClientIDs: []string{"dev-a"}}}
	gw, err := New(cfg, srv, l, plain)
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve()
	defer gw.Close()
	s := sensorFor(t, good, l.Link)
	refused := func(id string) {
		t.Helper()
		s.send(&sn.Connect{ClientID: []byte(id), ProtocolID: sn.V12, CleanSession: true, Duration: 60})
		if rc := s.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
			t.Fatalf("%s: CONNACK %v", id, rc)
		}
	}
	s.connect("dev-a", true, 60)
	refused("dev-b")

	cfg.Identities = []IdentityConfig{{Identity: "psk-a", ClientIDs: []string{"*"}}}
	mustReload(t, gw, cfg)
	s.connect("dev-b", true, 60)

	cfg.LinkPolicies = []LinkPolicy{{Link: l, Allowed: func(id, cid string) bool { return cid == "x-"+id }}}
	mustReload(t, gw, cfg)
	refused("dev-c")
	s.connect("x-psk-a", true, 60)

	bad := cfg
	bad.LinkPolicies = []LinkPolicy{{Link: plain, Allowed: func(string, string) bool { return true }}}
	if err := gw.Reload(bad); err == nil || !strings.Contains(err.Error(), "does not authenticate peers") {
		t.Fatalf("Reload = %v", err)
	}
	refused("dev-d") // the previous policy is still in force
	if st := gw.Stats(); st.RejectIdentity != 3 || st.Connects != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// Reload works before Serve, refuses invalid settings, and returns
// ErrClosed after Close.
func TestReloadLifecycle(t *testing.T) {
	srv := testBroker(t)
	gw, err := New(testConfig(), srv, testUDPLink(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Predefined = []TopicConfig{{ID: 1, Name: "a"}, {ID: 1, Name: "b"}}
	if err := gw.Reload(cfg); err == nil {
		t.Fatal("duplicate predefined ID accepted")
	}
	cfg.Predefined = cfg.Predefined[:1]
	mustReload(t, gw, cfg)
	if gw.pol.global.byID[1] != "a" || gw.live.Load() != gw.pol {
		t.Fatal("not applied before Serve")
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve() }()
	mustReload(t, gw, testConfig())
	gw.Close()
	<-served
	if err := gw.Reload(cfg); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reload after Close = %v", err)
	}
}

// Reloads racing with traffic (run with -race).
func TestReloadUnderTraffic(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Predefined = []TopicConfig{{ID: 9, Name: "t/9"}} })
	s := e.sensor()
	s.connect("dev1", true, 60)
	cfg := testConfig()
	cfg.Predefined = []TopicConfig{{ID: 9, Name: "t/9"}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := e.gw.Reload(cfg); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := uint16(1); i <= 200; i++ {
		if rc := s.pubPredef(9, i); rc != sn.Accepted {
			t.Fatalf("PUBACK %v", rc)
		}
	}
	close(stop)
	wg.Wait()
}
