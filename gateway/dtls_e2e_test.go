package gateway

// End-to-end tests of DTLS sensors through the gateway (issue #5): the
// real transport/dtls listener, broker and gateway on loopback sockets,
// sn/client sensors over DTLS conns, and a Paho MQTT application on the
// broker's TCP listener.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/sn"
	snclient "github.com/sngate/sngate/sn/client"
	"github.com/sngate/sngate/transport/dtls"
)

var sensorKey = []byte("gateway-dtls-test-key-0123456789")

// bindings builds a dtls.Bindings or fails the test.
func bindings(t *testing.T, list ...dtls.Binding) *dtls.Bindings {
	t.Helper()
	b, err := dtls.NewBindings(list)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withPolicy gives the listener its bindings as its identity policy, the
// way cmd/sngate wires a DTLS listener.
func withPolicy(l *dtls.Listener, b *dtls.Bindings) func(*Config) {
	return func(c *Config) {
		c.LinkPolicies = append(c.LinkPolicies, LinkPolicy{Link: l, Allowed: b.Allowed})
	}
}

// sensorClient runs the sn/client library over conn; received messages
// go to the returned channel.
func sensorClient(t *testing.T, conn net.Conn, id string) (*snclient.Client, <-chan snclient.Message) {
	t.Helper()
	inbox := make(chan snclient.Message, 16)
	c := snclient.New(conn, snclient.Options{
		ClientID:      id,
		KeepAlive:     time.Minute,
		RetryInterval: 500 * time.Millisecond,
		MaxRetries:    8,
		OnPublish:     func(m snclient.Message) { inbox <- m },
	})
	t.Cleanup(func() { _ = c.Close() })
	return c, inbox
}

func expectSensorMsg(ctx context.Context, t *testing.T, inbox <-chan snclient.Message, topic, payload string) {
	t.Helper()
	select {
	case m := <-inbox:
		if m.Topic != topic || string(m.Payload) != payload {
			t.Fatalf("sensor got %s %q, want %s %q", m.Topic, m.Payload, topic, payload)
		}
	case <-ctx.Done():
		t.Fatalf("sensor: no message on %s: %v", topic, ctx.Err())
	}
}

// A PSK sensor publishes QoS 1 to an MQTT subscriber and receives what
// an MQTT application publishes to it.
func TestDTLSPSKSensorEndToEnd(t *testing.T) {
	ctx := testCtx(t)
	l := listenDTLS(t, dtls.Config{Name: "dtls", PSKs: []dtls.PSK{{Identity: "psk-1", Key: sensorKey}}})
	e := newDTLSEnv(t, withPolicy(l, bindings(t, dtls.Binding{Identity: "psk-1", ClientIDs: []string{"{identity}"}})), l)
	app := e.paho("app-psk", "sensors/#")

	sc, inbox := sensorClient(t, dialPSK(ctx, t, l, "psk-1", sensorKey), "psk-1")
	if err := sc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.Subscribe(ctx, snclient.Topic("cmd/psk-1"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := sc.Publish(ctx, snclient.Topic("sensors/psk-1/temp"), sn.QoS1, false, []byte("21.5")); err != nil {
		t.Fatal(err)
	}
	app.expect(ctx, "sensors/psk-1/temp", "21.5")
	app.publish("cmd/psk-1", "blink")
	expectSensorMsg(ctx, t, inbox, "cmd/psk-1", "blink")

	if st := e.gw.Stats(); st.Connects != 1 || st.PublishIn != 1 || st.PublishOut != 1 || st.RejectIdentity != 0 || st.WriteErrors != 0 {
		t.Fatalf("gateway stats %+v", st)
	}
	if st := l.Stats(); st.HandshakesOK != 1 || st.Associations != 1 {
		t.Fatalf("dtls stats %+v", st)
	}
}

// A sensor with a client certificate (ECDSA P-256, CN = identity) from
// the test CA connects as the client ID its CN is bound to, and publishes.
func TestDTLSCertificateSensor(t *testing.T) {
	ctx := testCtx(t)
	pki := newTestPKI(t)
	l := listenDTLS(t, dtls.Config{
		Name: "dtls-x509", CertFile: pki.srvCrt, KeyFile: pki.srvKey,
		CAFile: pki.caFile, RequireClientCert: true,
	})
	e := newDTLSEnv(t, withPolicy(l, bindings(t, dtls.Binding{Identity: "*", ClientIDs: []string{"{identity}"}})), l)
	app := e.paho("app-x509", "sensors/#")

	cert, key := pki.client("meter-0042")
	conn, err := dtls.Dial(ctx, l.LocalAddr().String(), dtls.ClientConfig{CAFile: pki.caFile, CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	sc, inbox := sensorClient(t, conn, "meter-0042")
	if err := sc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.Subscribe(ctx, snclient.Topic("cmd/meter-0042"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := sc.Publish(ctx, snclient.Topic("sensors/meter-0042/kwh"), sn.QoS1, false, []byte("1234.5")); err != nil {
		t.Fatal(err)
	}
	app.expect(ctx, "sensors/meter-0042/kwh", "1234.5")
	app.publish("cmd/meter-0042", "read")
	expectSensorMsg(ctx, t, inbox, "cmd/meter-0042", "read")

	// The same certificate may not claim another meter's client ID.
	other := newSNPeer(t, dialCert(ctx, t, l, pki, cert, key))
	if rc := other.connect(ctx, "meter-0043"); rc != sn.RejectedNotSupported {
		t.Fatalf("CONNACK as meter-0043: %v", rc)
	}
	if st := e.gw.Stats(); st.Connects != 1 || st.RejectIdentity != 1 {
		t.Fatalf("gateway stats %+v", st)
	}
}

func dialCert(ctx context.Context, t *testing.T, l *dtls.Listener, pki *testPKI, cert, key string) net.Conn {
	t.Helper()
	c, err := dtls.Dial(ctx, l.LocalAddr().String(), dtls.ClientConfig{CAFile: pki.caFile, CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Identities belong to their listener. The same PSK identity is known to
// three listeners: one with bindings of its own, one with other bindings,
// and one without a policy, which falls back to the global Identities.
// A refused CONNECT gets "not supported", counted and logged, and the same
// association may then connect as a client ID it is bound to.
func TestDTLSIdentityPolicyPerLink(t *testing.T) {
	ctx := testCtx(t)
	psks := []dtls.PSK{{Identity: "psk-a", Key: sensorKey}, {Identity: "psk-b", Key: sensorKey}}
	la := listenDTLS(t, dtls.Config{Name: "dtls-a", PSKs: psks})
	lb := listenDTLS(t, dtls.Config{Name: "dtls-b", PSKs: psks})
	lc := listenDTLS(t, dtls.Config{Name: "dtls-c", PSKs: psks})
	e := newDTLSEnv(t, func(c *Config) {
		c.LinkPolicies = []LinkPolicy{
			{Link: la, Allowed: bindings(t,
				dtls.Binding{Identity: "psk-a", ClientIDs: []string{"sensor-a"}},
				dtls.Binding{Identity: "psk-b", ClientIDs: []string{"sensor-b"}}).Allowed},
			{Link: lb, Allowed: bindings(t, dtls.Binding{Identity: "psk-a", ClientIDs: []string{"other-*"}}).Allowed},
		}
		c.Identities = []IdentityConfig{{Identity: "psk-a", ClientIDs: []string{"legacy-a"}}}
	}, la, lb, lc)

	cases := []struct {
		l       *dtls.Listener
		refused []string
		allowed string
	}{
		{la, []string{"sensor-b", "legacy-a", "other-1"}, "sensor-a"},
		{lb, []string{"sensor-a", "legacy-a"}, "other-1"},
		{lc, []string{"sensor-a", "other-1"}, "legacy-a"},
	}
	refused := 0
	for _, tc := range cases {
		p := newSNPeer(t, dialPSK(ctx, t, tc.l, "psk-a", sensorKey))
		for _, id := range tc.refused {
			if rc := p.connect(ctx, id); rc != sn.RejectedNotSupported {
				t.Fatalf("%s: psk-a as %s: CONNACK %v, want not supported", tc.l.Name(), id, rc)
			}
			refused++
			if got := e.gw.Stats().RejectIdentity; got != uint64(refused) {
				t.Fatalf("RejectIdentity %d, want %d", got, refused)
			}
		}
		if rc := p.connect(ctx, tc.allowed); rc != sn.Accepted {
			t.Fatalf("%s: psk-a as %s: CONNACK %v", tc.l.Name(), tc.allowed, rc)
		}
	}
	logs := e.logs.find("connect refused")
	if len(logs) != refused {
		t.Fatalf("%d refusals logged, want %d", len(logs), refused)
	}
	if a := logs[0].attrs; a["client"] != "sensor-b" || a["identity"] != "psk-a" || a["link"] != "dtls-a" || a["rc"] == "" {
		t.Fatalf("refusal log %+v", a)
	}
	if st := e.gw.Stats(); st.Connects != 3 || st.Clients != 3 {
		t.Fatalf("gateway stats %+v", st)
	}
}

// A peer authenticated as B cannot wake, or move the binding of, a
// sleeping client bound to identity A: its PINGREQ(ClientId) is ignored,
// counted and logged, and the real client still wakes.
func TestDTLSPingreqWakeAsOtherIdentity(t *testing.T) {
	ctx := testCtx(t)
	psks := []dtls.PSK{{Identity: "psk-a", Key: sensorKey}, {Identity: "psk-b", Key: sensorKey}}
	l := listenDTLS(t, dtls.Config{Name: "dtls", PSKs: psks})
	e := newDTLSEnv(t, func(c *Config) {
		c.Shards = 1 // one inbox: the frames of both peers are handled in order
		withPolicy(l, bindings(t,
			dtls.Binding{Identity: "psk-a", ClientIDs: []string{"sensor-a"}},
			dtls.Binding{Identity: "psk-b", ClientIDs: []string{"sensor-b"}}))(c)
	}, l)
	app := e.paho("app-wake", "sensors/#")

	a := newSNPeer(t, dialPSK(ctx, t, l, "psk-a", sensorKey))
	if rc := a.connect(ctx, "sensor-a"); rc != sn.Accepted {
		t.Fatalf("CONNACK %v", rc)
	}
	a.send(&sn.Subscribe{QoS: sn.QoS0, MsgID: 1, TopicName: []byte("cmd/a")})
	a.expect(ctx, sn.TypeSuback)
	a.send(&sn.Disconnect{HasDuration: true, Duration: 600})
	a.expect(ctx, sn.TypeDisconnect)
	app.publish("cmd/a", "for-a-only")

	b := newSNPeer(t, dialPSK(ctx, t, l, "psk-b", sensorKey))
	b.send(&sn.Pingreq{ClientID: []byte("sensor-a")})
	// b has no client: a plain PINGREQ gets DISCONNECT. It is handled
	// after the refused one, so b got nothing for that.
	b.send(&sn.Pingreq{})
	b.expect(ctx, sn.TypeDisconnect)
	st := e.gw.Stats()
	if st.RejectIdentity != 1 || st.Wakes != 0 || st.Sleeping != 1 || st.Rebinds != 0 {
		t.Fatalf("after the refused wake: %+v", st)
	}
	logs := e.logs.find("PINGREQ refused")
	if len(logs) != 1 || logs[0].attrs["identity"] != "psk-b" || logs[0].attrs["client"] != "sensor-a" {
		t.Fatalf("refusal logs %+v", logs)
	}

	// The real sensor wakes: its buffered message, then PINGRESP.
	a.send(&sn.Pingreq{ClientID: []byte("sensor-a")})
	if p := a.expect(ctx, sn.TypePublish); string(p.Publish.Data) != "for-a-only" {
		t.Fatalf("buffered %q", p.Publish.Data)
	}
	a.expect(ctx, sn.TypePingresp)
	if st := e.gw.Stats(); st.Wakes != 1 {
		t.Fatalf("after the wake: %+v", st)
	}
}

// A sleeping sensor with a Connection ID whose source port changes (NAT
// rebinding) wakes from the new port with PINGREQ(ClientId), receives
// the message buffered while it slept, then PINGRESP, and publishes
// again, all on its one DTLS association.
func TestDTLSSleepingSensorRebinds(t *testing.T) {
	ctx := testCtx(t)
	l := listenDTLS(t, dtls.Config{Name: "dtls", PSKs: []dtls.PSK{{Identity: "valve-7", Key: sensorKey}}})
	e := newDTLSEnv(t, withPolicy(l, bindings(t, dtls.Binding{Identity: "valve-7", ClientIDs: []string{"{identity}"}})), l)
	app := e.paho("app-nat", "sensors/#")

	mc := newMovingConn(t)
	conn, err := dtls.Client(ctx, mc, net.UDPAddrFromAddrPort(l.LocalAddr()),
		dtls.ClientConfig{PSKIdentity: "valve-7", PSK: sensorKey, ConnectionID: true})
	if err != nil {
		t.Fatal(err)
	}
	sc, inbox := sensorClient(t, conn, "valve-7")
	if err := sc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.Subscribe(ctx, snclient.Topic("cmd/valve-7"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := sc.Sleep(ctx, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	app.publish("cmd/valve-7", "open")

	before := mc.port()
	mc.move(t)
	if mc.port() == before {
		t.Fatal("the source port did not change")
	}
	n, err := sc.Wake(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Wake = %d, %v", n, err)
	}
	expectSensorMsg(ctx, t, inbox, "cmd/valve-7", "open")
	if err := sc.Publish(ctx, snclient.Topic("sensors/valve-7/state"), sn.QoS1, false, []byte("open")); err != nil {
		t.Fatal(err)
	}
	app.expect(ctx, "sensors/valve-7/state", "open")

	st := e.gw.Stats()
	if st.Connects != 1 || st.Wakes != 1 || st.PublishIn != 1 || st.UnknownClient != 0 || st.WriteErrors != 0 {
		t.Fatalf("gateway stats %+v", st)
	}
	if st.Retransmits > 0 {
		// pion moves the association to the new port only after it has
		// handed the record that revealed the move to the listener, so
		// the first reply can race to the old port; retransmission heals it.
		t.Logf("%d retransmissions after the rebinding", st.Retransmits)
	}
	ds := l.Stats()
	if ds.HandshakesOK != 1 || ds.Associations != 1 || ds.DropUnknownSource != 0 {
		t.Fatalf("dtls stats %+v", ds)
	}
}

// A peer that sends a ClientHello and never continues (before and after
// the cookie exchange) does not delay an honest sensor: it connects and
// publishes while the silent handshakes are still open.
func TestDTLSSilentPeerDoesNotBlock(t *testing.T) {
	ctx := testCtx(t)
	l := listenDTLS(t, dtls.Config{
		Name: "dtls", PSKs: []dtls.PSK{{Identity: "psk-1", Key: sensorKey}},
		HandshakeTimeout: 10 * time.Minute, // the silent peers stay for the whole test
	})
	e := newDTLSEnv(t, withPolicy(l, bindings(t, dtls.Binding{Identity: "psk-1", ClientIDs: []string{"{identity}"}})), l)
	app := e.paho("app-silent", "sensors/#")

	silentHello(ctx, t, l, false) // one ClientHello, then silence
	silentHello(ctx, t, l, true)  // cookie echoed, then silence
	if st := l.Stats(); st.Unverified != 1 || st.Pending != 1 {
		t.Fatalf("silent peers: %+v", st)
	}

	sc, _ := sensorClient(t, dialPSK(ctx, t, l, "psk-1", sensorKey), "psk-1")
	if err := sc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sc.Publish(ctx, snclient.Topic("sensors/psk-1/temp"), sn.QoS1, false, []byte("19.0")); err != nil {
		t.Fatal(err)
	}
	app.expect(ctx, "sensors/psk-1/temp", "19.0")
	if st := l.Stats(); st.Unverified != 1 || st.Pending != 1 || st.HandshakesOK != 1 || st.HandshakesFailed != 0 {
		t.Fatalf("after the honest sensor: %+v", st)
	}
}

// A sensor refused by the policy sees CONNACK "not supported" through the
// client library as a ReturnCodeError.
func TestDTLSRefusedSensorClientError(t *testing.T) {
	ctx := testCtx(t)
	l := listenDTLS(t, dtls.Config{Name: "dtls", PSKs: []dtls.PSK{{Identity: "psk-1", Key: sensorKey}}})
	newDTLSEnv(t, withPolicy(l, bindings(t, dtls.Binding{Identity: "psk-1", ClientIDs: []string{"psk-1"}})), l)
	sc, _ := sensorClient(t, dialPSK(ctx, t, l, "psk-1", sensorKey), "somebody-else")
	err := sc.Connect(ctx)
	var rce *snclient.ReturnCodeError
	if !errors.As(err, &rce) || rce.Code != sn.RejectedNotSupported {
		t.Fatalf("Connect = %v, want CONNACK not supported", err)
	}
}

// A write to a DTLS peer whose association has ended (here the sensor
// sent close_notify) fails with a log line naming the link, the peer, the
// client and the DTLS error.
func TestDTLSWriteToEndedAssociationLogged(t *testing.T) {
	ctx := testCtx(t)
	l := listenDTLS(t, dtls.Config{Name: "dtls", PSKs: []dtls.PSK{{Identity: "psk-1", Key: sensorKey}}})
	e := newDTLSEnv(t, func(c *Config) {
		// Resend the undelivered PUBLISH quickly until the association is
		// gone; the test waits for the log line, not for a time.
		c.RetryInterval = 20 * time.Millisecond
		c.MaxRetries = 1000
		withPolicy(l, bindings(t, dtls.Binding{Identity: "psk-1", ClientIDs: []string{"{identity}"}}))(c)
	}, l)
	app := e.paho("app-gone", "sensors/#")

	sc, _ := sensorClient(t, dialPSK(ctx, t, l, "psk-1", sensorKey), "psk-1")
	if err := sc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.Subscribe(ctx, snclient.Topic("cmd/psk-1"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	_ = sc.Close() // close_notify: the listener ends the association
	app.publish("cmd/psk-1", "anyone there?")

	rec := e.logs.wait(ctx, t, "link write failed")
	a := rec.attrs
	if a["link"] != "dtls" || a["client"] != "psk-1" || a["addr"] == "" ||
		!strings.Contains(a["err"], dtls.ErrNoAssociation.Error()) {
		t.Fatalf("log line %+v", a)
	}
	if rec.level != slog.LevelWarn || e.gw.Stats().WriteErrors == 0 {
		t.Fatalf("level %v, stats %+v", rec.level, e.gw.Stats())
	}
}

// A client connected over DTLS cannot be woken or taken over from the
// plain UDP link of the same gateway: that would hand its buffered
// messages, or its session, to an unauthenticated peer.
func TestDTLSClientNotTakenOverFromUDP(t *testing.T) {
	ctx := testCtx(t)
	l := listenDTLS(t, dtls.Config{Name: "dtls", PSKs: []dtls.PSK{{Identity: "psk-1", Key: sensorKey}}})
	ul := testUDPLink(t)
	e := newDTLSEnv(t, func(c *Config) {
		c.Shards = 1 // one inbox: the UDP peer's frames are handled in order
		withPolicy(l, bindings(t, dtls.Binding{Identity: "psk-1", ClientIDs: []string{"{identity}"}}))(c)
	}, ul, l)
	app := e.paho("app-downgrade", "sensors/#")

	d := newSNPeer(t, dialPSK(ctx, t, l, "psk-1", sensorKey))
	if rc := d.connect(ctx, "psk-1"); rc != sn.Accepted {
		t.Fatalf("CONNACK %v", rc)
	}
	d.send(&sn.Subscribe{QoS: sn.QoS0, MsgID: 1, TopicName: []byte("cmd/psk-1")})
	d.expect(ctx, sn.TypeSuback)
	d.send(&sn.Disconnect{HasDuration: true, Duration: 600})
	d.expect(ctx, sn.TypeDisconnect)
	app.publish("cmd/psk-1", "secret")

	u := &sensor{t: t, conn: loopbackUDP(t), gw: net.UDPAddrFromAddrPort(ul.LocalAddr()), buf: make([]byte, 2048)}
	defer u.conn.Close()
	u.send(&sn.Pingreq{ClientID: []byte("psk-1")})
	u.send(&sn.Pingreq{}) // no client at u's address: DISCONNECT, after the refusal
	u.expect(sn.TypeDisconnect)
	u.send(&sn.Connect{ClientID: []byte("psk-1"), ProtocolID: sn.V12, CleanSession: true})
	if rc := u.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("UDP CONNECT as the DTLS client: CONNACK %v", rc)
	}
	if st := e.gw.Stats(); st.RejectIdentity != 2 || st.Wakes != 0 || st.Sleeping != 1 || st.Rebinds != 0 {
		t.Fatalf("stats %+v", st)
	}
	if recs := e.logs.find("PINGREQ refused"); len(recs) != 1 || recs[0].attrs["bound_link"] != "dtls" {
		t.Fatalf("logs %+v", recs)
	}

	// The DTLS sensor still wakes and gets its message.
	d.send(&sn.Pingreq{ClientID: []byte("psk-1")})
	if p := d.expect(ctx, sn.TypePublish); string(p.Publish.Data) != "secret" {
		t.Fatalf("buffered %q", p.Publish.Data)
	}
	d.expect(ctx, sn.TypePingresp)
}
