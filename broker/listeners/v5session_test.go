package listeners

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// MQTT 5 sessions, wills, takeover, expiry and auth.

func TestV5Takeover(t *testing.T) {
	_, addr := setup(t, Config{})
	a := dialV5(t, addr, "same", nil)
	dialV5(t, addr, "same", nil)
	select {
	case d := <-a.disc:
		if d.ReasonCode != packets.SessionTakenOver {
			t.Fatalf("DISCONNECT reason 0x%02X", d.ReasonCode)
		}
	case <-time.After(wait):
		t.Fatal("old connection got no DISCONNECT")
	}
}

func TestV5SessionResume(t *testing.T) {
	srv, addr := setup(t, Config{})
	persistent := func() *paho.Connect {
		return &paho.Connect{CleanStart: false, Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(3600)}}
	}
	c := dialV5(t, addr, "resumer", persistent())
	if c.ack.SessionPresent {
		t.Fatal("session present on first connect")
	}
	c.sub(t, paho.SubscribeOptions{Topic: "q/#", QoS: 2})
	if err := c.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return srv.Stats().SessionsConnected == 0 })
	pub := dialV5(t, addr, "pub", nil)
	for i := 0; i < 3; i++ {
		pub.pub(t, &paho.Publish{Topic: fmt.Sprintf("q/%d", i), QoS: 2})
	}
	c = dialV5(t, addr, "resumer", persistent())
	if !c.ack.SessionPresent {
		t.Fatal("session not present")
	}
	for i := 0; i < 3; i++ {
		if m := c.recv(t); m.Topic != fmt.Sprintf("q/%d", i) || m.QoS != 2 {
			t.Fatalf("queued %d: %s qos %d", i, m.Topic, m.QoS)
		}
	}
	// Session expiry 0 at connect: nothing survives.
	e := dialV5(t, addr, "ephemeral", &paho.Connect{CleanStart: false})
	e.sub(t, paho.SubscribeOptions{Topic: "q/#", QoS: 1})
	e.Disconnect(&paho.Disconnect{})
	waitFor(t, func() bool { return srv.Stats().SessionsConnected == 2 })
	e = dialV5(t, addr, "ephemeral", &paho.Connect{CleanStart: false})
	if e.ack.SessionPresent {
		t.Fatal("session with expiry 0 survived")
	}
}

func TestV5DisconnectSessionExpiry(t *testing.T) {
	srv, addr := setup(t, Config{})
	c := dialV5(t, addr, "extend", &paho.Connect{CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(10)}})
	c.sub(t, paho.SubscribeOptions{Topic: "ext", QoS: 1})
	// Shorten to 0 at DISCONNECT: the session ends.
	c.Disconnect(&paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: paho.Uint32(0)}})
	waitFor(t, func() bool { return srv.Stats().Sessions == 0 })
	c = dialV5(t, addr, "extend", &paho.Connect{CleanStart: false,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(10)}})
	if c.ack.SessionPresent {
		t.Fatal("session kept after DISCONNECT set its expiry to 0")
	}
}

func TestV5Wills(t *testing.T) {
	srv, addr, clk := setupClock(t, Config{})
	w := dialV5(t, addr, "watcher", nil)
	w.sub(t, paho.SubscribeOptions{Topic: "will/#", QoS: 1})
	willConnect := func(id string, delay uint32) *paho.Connect {
		return &paho.Connect{CleanStart: true,
			WillMessage:    &paho.WillMessage{Topic: "will/" + id, Payload: []byte(id), QoS: 1},
			WillProperties: &paho.WillProperties{WillDelayInterval: paho.Uint32(delay)},
			Properties:     &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)}}
	}

	// DISCONNECT 0x04: the will goes out now, with its properties. (A
	// raw client: paho.golang v0.23 drops will properties other than the
	// delay and user properties when it encodes CONNECT.)
	r := dialRaw(t, addr, packets.V5)
	r.connect(&packets.Connect{ClientID: "w04", CleanStart: true, WillFlag: true, WillQoS: 1,
		WillTopic: "will/w04", WillPayload: []byte("w04"), WillProps: packets.Properties{
			MessageExpiry: 100, ContentType: "text/x", ResponseTopic: "r", CorrelationData: []byte{9},
			PayloadFormat: 1, User: []packets.UserProperty{{Key: "who", Value: "w04"}}}})
	r.send(&packets.Disconnect{ReasonCode: packets.DisconnectWithWill})
	r.expectClosed()
	m := w.recv(t)
	if p := m.Properties; m.Topic != "will/w04" || p.ContentType != "text/x" || p.User.Get("who") != "w04" ||
		p.MessageExpiry == nil || *p.MessageExpiry != 100 || p.ResponseTopic != "r" ||
		p.PayloadFormat == nil || *p.PayloadFormat != 1 || len(p.CorrelationData) != 1 {
		t.Fatalf("will: %+v %+v", m, m.Properties)
	}
	// Normal DISCONNECT: no will.
	c := dialV5(t, addr, "w00", willConnect("w00", 0))
	c.Disconnect(&paho.Disconnect{})
	waitFor(t, func() bool { return srv.Stats().SessionsConnected == 1 })
	w.none(t)

	// Will Delay: the will waits for the delay after a lost connection.
	c = dialV5(t, addr, "wdelay", willConnect("wdelay", 30))
	c.close()
	waitFor(t, func() bool { return srv.Stats().SessionsConnected == 1 })
	w.none(t)
	clk.Advance(31 * time.Second)
	if m := w.recv(t); m.Topic != "will/wdelay" {
		t.Fatalf("delayed will: %s", m.Topic)
	}
	// Reconnecting within the delay cancels it.
	c = dialV5(t, addr, "wback", willConnect("wback", 30))
	c.close()
	waitFor(t, func() bool { return srv.Stats().SessionsConnected == 1 })
	dialV5(t, addr, "wback", &paho.Connect{CleanStart: false,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)}})
	clk.Advance(31 * time.Second)
	w.none(t)
}

func TestV5MessageExpiry(t *testing.T) {
	srv, addr, clk := setupClock(t, Config{})
	persistent := &paho.Connect{CleanStart: false, Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(3600)}}
	c := dialV5(t, addr, "exp", persistent)
	c.sub(t, paho.SubscribeOptions{Topic: "exp/#", QoS: 1})
	c.Disconnect(&paho.Disconnect{})
	waitFor(t, func() bool { return srv.Stats().SessionsConnected == 0 })
	pub := dialV5(t, addr, "pub", nil)
	pub.pub(t, &paho.Publish{Topic: "exp/short", QoS: 1, Properties: &paho.PublishProperties{MessageExpiry: paho.Uint32(10)}})
	pub.pub(t, &paho.Publish{Topic: "exp/long", QoS: 1, Properties: &paho.PublishProperties{MessageExpiry: paho.Uint32(100)}})
	clk.Advance(30 * time.Second)
	c = dialV5(t, addr, "exp", &paho.Connect{CleanStart: false, Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(3600)}})
	m := c.recv(t)
	if m.Topic != "exp/long" || m.Properties.MessageExpiry == nil || *m.Properties.MessageExpiry != 70 {
		t.Fatalf("got %s expiry %v", m.Topic, m.Properties.MessageExpiry)
	}
	c.none(t)
}

func TestV5SharedSubscriptions(t *testing.T) {
	_, addr := setup(t, Config{})
	a := dialV5(t, addr, "a", nil)
	b := dialV5(t, addr, "b", nil)
	a.sub(t, paho.SubscribeOptions{Topic: "$share/g/jobs/#", QoS: 1})
	b.sub(t, paho.SubscribeOptions{Topic: "$share/g/jobs/#", QoS: 1})
	pub := dialV5(t, addr, "pub", nil)
	const n = 20
	for i := 0; i < n; i++ {
		pub.pub(t, &paho.Publish{Topic: fmt.Sprintf("jobs/%d", i), QoS: 1})
	}
	seen := map[string]bool{}
	for len(seen) < n {
		var m *paho.Publish
		select {
		case m = <-a.msgs:
		case m = <-b.msgs:
		case <-time.After(wait):
			t.Fatalf("got %d of %d", len(seen), n)
		}
		if seen[m.Topic] {
			t.Fatalf("%s delivered twice", m.Topic)
		}
		seen[m.Topic] = true
	}
	a.none(t)
	b.none(t)
}

func TestV5Auth(t *testing.T) {
	dir := t.TempDir()
	hash, _ := fastHash("pw")
	pw, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	os.WriteFile(pw, []byte("bob:"+hash+"\n"), 0o600)
	os.WriteFile(acl, []byte("user bob\ntopic readwrite bob/#\ntopic write shared/in\n"), 0o600)
	srv := newBroker(t, func(c *broker.Config) { c.AllowAnonymous = false; c.PasswordFile = pw; c.ACLFile = acl })
	_, addr := startListener(t, srv, Config{})

	for _, tc := range []struct {
		user, pass string
		code       byte
	}{{"bob", "nope", packets.BadUsernameOrPassword}, {"", "", packets.NotAuthorized}} {
		r := dialRaw(t, addr, packets.V5)
		r.send(&packets.Connect{Version: packets.V5, ClientID: "x", CleanStart: true,
			UsernameFlag: tc.user != "", Username: tc.user, PasswordFlag: tc.pass != "", Password: []byte(tc.pass)})
		if ack := r.expect(packets.CONNACK).(*packets.Connack); ack.ReasonCode != tc.code {
			t.Fatalf("user %q: reason 0x%02X, want 0x%02X", tc.user, ack.ReasonCode, tc.code)
		}
		r.expectClosed()
	}
	c := dialV5(t, addr, "bob-1", &paho.Connect{CleanStart: true, Username: "bob", UsernameFlag: true,
		Password: []byte("pw"), PasswordFlag: true})
	sa := c.sub(t, paho.SubscribeOptions{Topic: "bob/#", QoS: 1}, paho.SubscribeOptions{Topic: "other/#", QoS: 1})
	if sa.Reasons[0] != 1 || sa.Reasons[1] != packets.NotAuthorized {
		t.Fatalf("SUBACK %v", sa.Reasons)
	}
	if r := c.pub(t, &paho.Publish{Topic: "other/x", QoS: 1}); r.ReasonCode != packets.NotAuthorized {
		t.Fatalf("PUBACK 0x%02X for a denied topic", r.ReasonCode)
	}
	if r := c.pub(t, &paho.Publish{Topic: "$SYS/x", QoS: 1}); r.ReasonCode != packets.NotAuthorized {
		t.Fatalf("PUBACK 0x%02X for $SYS", r.ReasonCode)
	}
	c.pub(t, &paho.Publish{Topic: "bob/x", QoS: 1, Payload: []byte("ok")})
	if m := c.recv(t); m.Topic != "bob/x" {
		t.Fatalf("got %s", m.Topic)
	}
}

func TestV5ReceiveMaximumFromClient(t *testing.T) {
	_, addr := setup(t, Config{})
	r := dialRaw(t, addr, packets.V5)
	r.connect(&packets.Connect{ClientID: "slow", CleanStart: true, Props: packets.Properties{ReceiveMaximum: 2}})
	r.subscribe(1, packets.SubOption{Filter: "rm/#", QoS: 1})
	pub := dialV5(t, addr, "pub", nil)
	for i := 0; i < 4; i++ {
		pub.pub(t, &paho.Publish{Topic: fmt.Sprintf("rm/%d", i), QoS: 1})
	}
	// Exactly two in flight until we acknowledge.
	got := r.until(packets.PINGRESP)
	if len(got) != 2 {
		t.Fatalf("%d messages in flight, want 2", len(got))
	}
	r.send(&packets.Ack{Kind: packets.PUBACK, PacketID: got[0].(*packets.Publish).PacketID})
	if p := r.expect(packets.PUBLISH).(*packets.Publish); p.Topic != "rm/2" {
		t.Fatalf("after PUBACK got %s", p.Topic)
	}
	if got := r.until(packets.PINGRESP); len(got) != 0 {
		t.Fatalf("window exceeded: %d more", len(got))
	}
}

func TestV5MaximumPacketSizeToClient(t *testing.T) {
	srv, addr := setup(t, Config{})
	r := dialRaw(t, addr, packets.V5)
	r.connect(&packets.Connect{ClientID: "small", CleanStart: true,
		Props: packets.Properties{MaximumPacketSize: 100, ReceiveMaximum: 1}})
	r.subscribe(1, packets.SubOption{Filter: "mps/#", QoS: 1})
	pub := dialV5(t, addr, "pub", nil)
	pub.pub(t, &paho.Publish{Topic: "mps/big", QoS: 1, Payload: make([]byte, 200)})
	pub.pub(t, &paho.Publish{Topic: "mps/small", QoS: 1, Payload: []byte("s")})
	// The big one is dropped and completed as if sent, so the window of 1
	// lets the small one through.
	p := r.expect(packets.PUBLISH).(*packets.Publish)
	if p.Topic != "mps/small" {
		t.Fatalf("got %s", p.Topic)
	}
	if st := srv.Stats(); st.Inflight != 1 {
		t.Fatalf("in flight %d, want 1", st.Inflight)
	}
}
