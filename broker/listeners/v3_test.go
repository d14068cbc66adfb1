package listeners

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// MQTT 3.1.1 behaviour, driven by paho.mqtt.golang.

func TestV3QoSBothWays(t *testing.T) {
	_, addr := setup(t, Config{})
	url := "tcp://" + addr
	pub := dialV3(t, url, "pub3", nil)
	sub := dialV3(t, url, "sub3", nil)
	for q := byte(0); q <= 2; q++ {
		ch := v3sub(t, sub, fmt.Sprintf("q%d/#", q), q)
		for i := 0; i < 20; i++ {
			waitTok(t, pub.Publish(fmt.Sprintf("q%d/%d", q, i), q, false, []byte{byte(i)}))
		}
		for i := 0; i < 20; i++ {
			m := recvV3(t, ch)
			if m.Topic() != fmt.Sprintf("q%d/%d", q, i) || m.Qos() != q || m.Payload()[0] != byte(i) {
				t.Fatalf("QoS %d message %d: %s qos %d %v", q, i, m.Topic(), m.Qos(), m.Payload())
			}
		}
	}
}

func TestV3Retained(t *testing.T) {
	_, addr := setup(t, Config{})
	url := "tcp://" + addr
	pub := dialV3(t, url, "pub", nil)
	waitTok(t, pub.Publish("ret/a", 1, true, "one"))
	waitTok(t, pub.Publish("ret/a", 1, true, "two")) // replaces
	waitTok(t, pub.Publish("ret/b", 1, true, "b"))
	waitTok(t, pub.Publish("ret/b", 1, true, "")) // deletes

	sub := dialV3(t, url, "sub", nil)
	ch := v3sub(t, sub, "ret/#", 1)
	m := recvV3(t, ch)
	if m.Topic() != "ret/a" || string(m.Payload()) != "two" || !m.Retained() {
		t.Fatalf("retained: %s %q retained=%v", m.Topic(), m.Payload(), m.Retained())
	}
	// A live publish to a subscribed topic arrives without RETAIN.
	waitTok(t, pub.Publish("ret/a", 1, true, "three"))
	m = recvV3(t, ch)
	if string(m.Payload()) != "three" || m.Retained() {
		t.Fatalf("live: %q retained=%v", m.Payload(), m.Retained())
	}
	select {
	case m := <-ch:
		t.Fatalf("deleted retained message delivered: %s %q", m.Topic(), m.Payload())
	default:
	}
}

func TestV3Will(t *testing.T) {
	_, addr := setup(t, Config{})
	url := "tcp://" + addr
	watcher := dialV3(t, url, "watcher", nil)
	ch := v3sub(t, watcher, "wills/#", 1)

	// An abrupt close publishes the will.
	r := dialRaw(t, addr, packets.V311)
	r.connect(&packets.Connect{ClientID: "dies", CleanStart: true, KeepAlive: 60,
		WillFlag: true, WillQoS: 1, WillTopic: "wills/dies", WillPayload: []byte("gone")})
	r.c.Close()
	m := recvV3(t, ch)
	if m.Topic() != "wills/dies" || string(m.Payload()) != "gone" {
		t.Fatalf("will: %s %q", m.Topic(), m.Payload())
	}
	// A clean DISCONNECT discards it.
	r = dialRaw(t, addr, packets.V311)
	r.connect(&packets.Connect{ClientID: "polite", CleanStart: true, KeepAlive: 60,
		WillFlag: true, WillTopic: "wills/polite", WillPayload: []byte("no")})
	r.send(&packets.Disconnect{})
	r.expectClosed()
	// A message published after the DISCONNECT is processed proves the
	// will would have come first.
	p := dialV3(t, url, "p", nil)
	waitTok(t, p.Publish("wills/marker", 1, false, "m"))
	if m := recvV3(t, ch); m.Topic() != "wills/marker" {
		t.Fatalf("will sent after DISCONNECT: %s %q", m.Topic(), m.Payload())
	}
}

func TestV3PersistentSession(t *testing.T) {
	_, addr := setup(t, Config{})
	url := "tcp://" + addr
	persistent := func(o *mqtt.ClientOptions) { o.SetCleanSession(false) }
	sub := dialV3(t, url, "keeper", persistent)
	waitTok(t, sub.Subscribe("p/#", 1, nil))
	sub.Disconnect(0)

	pub := dialV3(t, url, "pub", nil)
	for i := 0; i < 5; i++ {
		waitTok(t, pub.Publish(fmt.Sprintf("p/%d", i), 1, false, "x"))
	}
	got := make(chan mqtt.Message, 10)
	sub = dialV3(t, url, "keeper", func(o *mqtt.ClientOptions) {
		o.SetCleanSession(false)
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m })
	})
	for i := 0; i < 5; i++ {
		m := recvV3(t, got)
		if m.Topic() != fmt.Sprintf("p/%d", i) {
			t.Fatalf("queued message %d: %s", i, m.Topic())
		}
	}
}

func TestV3Auth(t *testing.T) {
	dir := t.TempDir()
	hash, err := fastHash("secret")
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "passwd")
	acl := filepath.Join(dir, "acl")
	os.WriteFile(pw, []byte("alice:"+hash+"\n"), 0o600)
	os.WriteFile(acl, []byte("user alice\ntopic readwrite alice/#\ntopic read public/#\n"), 0o600)
	srv := newBroker(t, func(c *broker.Config) {
		c.AllowAnonymous = false
		c.PasswordFile = pw
		c.ACLFile = acl
	})
	_, addr := startListener(t, srv, Config{})

	// Wrong password: return code 4; no user: 5.
	r := dialRaw(t, addr, packets.V311)
	r.send(&packets.Connect{Version: packets.V311, ClientID: "x", CleanStart: true, UsernameFlag: true,
		Username: "alice", PasswordFlag: true, Password: []byte("wrong")})
	if ack := r.expect(packets.CONNACK).(*packets.Connack); ack.ReasonCode != packets.V3BadUserOrPassword {
		t.Fatalf("bad password: return code %d", ack.ReasonCode)
	}
	r.expectClosed()
	r = dialRaw(t, addr, packets.V311)
	r.send(&packets.Connect{Version: packets.V311, ClientID: "x", CleanStart: true})
	if ack := r.expect(packets.CONNACK).(*packets.Connack); ack.ReasonCode != packets.V3NotAuthorized {
		t.Fatalf("anonymous: return code %d", ack.ReasonCode)
	}
	r.expectClosed()

	c := dialV3(t, "tcp://"+addr, "alice-1", func(o *mqtt.ClientOptions) {
		o.SetUsername("alice").SetPassword("secret")
	})
	tok := c.Subscribe("secret/#", 1, nil)
	waitTok(t, tok)
	if codes := tok.(*mqtt.SubscribeToken).Result(); codes["secret/#"] != 0x80 {
		t.Fatalf("subscribe outside the ACL: %v", codes)
	}
	ch := v3sub(t, c, "alice/#", 1)
	// A publish outside the ACL is acknowledged (3.1.1 cannot refuse it)
	// but not routed.
	waitTok(t, c.Publish("public/x", 1, false, "no"))
	waitTok(t, c.Publish("alice/x", 1, false, "yes"))
	if m := recvV3(t, ch); string(m.Payload()) != "yes" {
		t.Fatalf("got %q", m.Payload())
	}
	if srv.Stats().ACLDenied == 0 {
		t.Fatal("ACL denial not counted")
	}
}

func TestV3SysTopics(t *testing.T) {
	srv := newBroker(t, func(c *broker.Config) { c.SysInterval = 20 * time.Millisecond })
	_, addr := startListener(t, srv, Config{})
	c := dialV3(t, "tcp://"+addr, "sys", nil)
	ch := v3sub(t, c, "$SYS/broker/clients/connected", 0)
	m := recvV3(t, ch)
	if m.Topic() != "$SYS/broker/clients/connected" || len(m.Payload()) == 0 {
		t.Fatalf("$SYS: %s %q", m.Topic(), m.Payload())
	}
	// Clients may not publish to $SYS.
	waitTok(t, c.Publish("$SYS/broker/fake", 1, false, "x"))
}

func TestV3EmptyClientID(t *testing.T) {
	_, addr := setup(t, Config{})
	r := dialRaw(t, addr, packets.V311)
	r.send(&packets.Connect{Version: packets.V311, CleanStart: false})
	if ack := r.expect(packets.CONNACK).(*packets.Connack); ack.ReasonCode != packets.V3IdentifierRejected {
		t.Fatalf("empty id, persistent: return code %d", ack.ReasonCode)
	}
	r.expectClosed()
	r = dialRaw(t, addr, packets.V311)
	r.connect(&packets.Connect{CleanStart: true})
	r.subscribe(1, packets.SubOption{Filter: "e", QoS: 1})
	r.send(&packets.Publish{Topic: "e", QoS: 1, PacketID: 3, Payload: []byte("self")})
	got := map[byte]bool{}
	for len(got) < 2 {
		p, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		got[p.Type()] = true
	}
	if !got[packets.PUBACK] || !got[packets.PUBLISH] {
		t.Fatalf("got %v", got)
	}
}

func TestV31(t *testing.T) {
	_, addr := setup(t, Config{})
	r := dialRaw(t, addr, packets.V31)
	r.connect(&packets.Connect{ClientID: "old-client", CleanStart: true})
	sa := r.subscribe(1, packets.SubOption{Filter: "old/#", QoS: 2})
	if sa.ReasonCodes[0] != 2 {
		t.Fatalf("suback %v", sa.ReasonCodes)
	}
	r.send(&packets.Publish{Topic: "old/t", Payload: []byte("x")})
	if p := r.expect(packets.PUBLISH).(*packets.Publish); p.Topic != "old/t" {
		t.Fatalf("got %+v", p)
	}
}
