package gateway

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/udp"
)

// valueLink is a link of a type that == cannot compare (it holds a
// slice), to check that New refuses it instead of panicking.
type valueLink struct {
	*udp.Link
	tags []string
}

func (valueLink) PeerIdentity(transport.Addr) (string, bool) { return "", false }

func testUDPLink(t *testing.T) *udp.Link {
	t.Helper()
	l, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func testBroker(t *testing.T) *broker.Server {
	t.Helper()
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, err := broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// New checks LinkPolicies: each names one of the links, once, with an
// Allowed function, and that link must authenticate peers.
func TestLinkPolicyValidation(t *testing.T) {
	srv := testBroker(t)
	plain := testUDPLink(t)
	authed := &identLink{Link: testUDPLink(t)}
	other := &identLink{Link: testUDPLink(t)}
	odd := valueLink{Link: testUDPLink(t), tags: []string{"x"}}
	yes := func(string, string) bool { return true }
	cases := []struct {
		name string
		ps   []LinkPolicy
		want string
	}{
		{"no link", []LinkPolicy{{Allowed: yes}}, "no link"},
		{"no func", []LinkPolicy{{Link: authed}}, "no Allowed function"},
		{"foreign link", []LinkPolicy{{Link: other, Allowed: yes}}, "not one of the gateway's links"},
		{"not comparable", []LinkPolicy{{Link: odd, Allowed: yes}}, "not one of the gateway's links"},
		{"no identities", []LinkPolicy{{Link: plain, Allowed: yes}}, "does not authenticate peers"},
		{"twice", []LinkPolicy{{Link: authed, Allowed: yes}, {Link: authed, Allowed: yes}}, "second policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.LinkPolicies = tc.ps
			_, err := New(cfg, srv, plain, authed, odd)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	cfg := testConfig()
	cfg.LinkPolicies = []LinkPolicy{{Link: authed, Allowed: yes}}
	g, err := New(cfg, srv, plain, authed, odd)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.links[0].allow != nil || g.links[1].allow == nil || g.links[2].allow == nil {
		t.Fatal("policies not applied as configured")
	}
}

// A link's policy replaces the global Identities on that link only; a
// peer the link knows no identity for is refused either way.
func TestLinkPolicyOverridesGlobal(t *testing.T) {
	srv := testBroker(t)
	good := loopbackUDP(t)
	anon := loopbackUDP(t)
	defer good.Close()
	defer anon.Close()
	ul := testUDPLink(t)
	l := &identLink{Link: ul, ids: map[netip.AddrPort]string{good.LocalAddr().(*net.UDPAddr).AddrPort(): "psk-a"}}
	logs := newLogRecorder()
	cfg := testConfig()
	cfg.Logger = slog.New(logs)
	cfg.Identities = []IdentityConfig{{Identity: "psk-a", ClientIDs: []string{"*"}}}
	cfg.LinkPolicies = []LinkPolicy{{Link: l, Allowed: func(id, cid string) bool { return cid == "dev-"+id }}}
	gw, err := New(cfg, srv, l)
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve()
	defer gw.Close()
	gaddr := net.UDPAddrFromAddrPort(ul.LocalAddr())
	sg := &sensor{t: t, conn: good, gw: gaddr, buf: make([]byte, 256)}
	sa := &sensor{t: t, conn: anon, gw: gaddr, buf: make([]byte, 256)}

	sg.send(&sn.Connect{ClientID: []byte("dev-b"), ProtocolID: sn.V12, CleanSession: true})
	if rc := sg.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("psk-a as dev-b: CONNACK %v (the global \"*\" must not apply)", rc)
	}
	sa.send(&sn.Connect{ClientID: []byte("dev-psk-a"), ProtocolID: sn.V12, CleanSession: true})
	if rc := sa.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("unauthenticated peer: CONNACK %v", rc)
	}
	sg.connect("dev-psk-a", true, 60)
	if st := gw.Stats(); st.RejectIdentity != 2 || st.Connects != 1 {
		t.Fatalf("stats %+v", st)
	}
	recs := logs.find("connect refused")
	if len(recs) != 2 || recs[0].attrs["identity"] != "psk-a" || recs[1].attrs["why"] != "peer not authenticated by the link" {
		t.Fatalf("logs %+v", recs)
	}
}
