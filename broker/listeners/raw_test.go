package listeners

import (
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// Protocol edge cases over raw sockets.

// pkt builds a packet from a first byte and body parts.
func pkt(first byte, parts ...any) []byte {
	var body []byte
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			body = append(body, byte(len(v)>>8), byte(len(v)))
			body = append(body, v...)
		case []byte:
			body = append(body, v...)
		case int:
			body = append(body, byte(v))
		}
	}
	n := len(body)
	out := []byte{first}
	for {
		c := byte(n & 0x7F)
		n >>= 7
		if n > 0 {
			c |= 0x80
		}
		out = append(out, c)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// expectDisconnect requires a DISCONNECT with code (MQTT 5) and then the
// close.
func (r *raw) expectDisconnect(code byte) {
	r.t.Helper()
	got := r.expectClosed()
	if r.version != packets.V5 {
		if len(got) != 0 {
			r.t.Fatalf("MQTT 3.1.1: got %v before close", got)
		}
		return
	}
	for _, p := range got {
		if d, ok := p.(*packets.Disconnect); ok {
			if d.ReasonCode != code {
				r.t.Fatalf("DISCONNECT 0x%02X (%q), want 0x%02X", d.ReasonCode, d.Props.ReasonString, code)
			}
			return
		}
	}
	r.t.Fatalf("no DISCONNECT before close, got %v", got)
}

func TestMalformedInput(t *testing.T) {
	_, addr := setup(t, Config{MaxPacketSize: 1024})
	// A bystander whose traffic must not be affected.
	by := dialV5(t, addr, "bystander", nil)
	by.sub(t, paho.SubscribeOptions{Topic: "by/#", QoS: 1})
	cases := []struct {
		name string
		in   []byte
		code byte
	}{
		{"remaining length over 4 bytes", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, packets.MalformedPacket},
		{"remaining length shorter than the topic", pkt(0x30, []byte{0, 5, 'a'}), packets.MalformedPacket},
		{"remaining length not minimal", []byte{0xC0, 0x80, 0x00}, packets.MalformedPacket},
		{"bad UTF-8 topic", pkt(0x30, []byte{0, 2, 0xC3, 0x28}, 0), packets.MalformedPacket},
		{"U+0000 in topic", pkt(0x30, []byte{0, 2, 'a', 0}, 0), packets.MalformedPacket},
		{"reserved flag on PINGREQ", []byte{0xC1, 0x00}, packets.MalformedPacket},
		{"reserved flags on SUBSCRIBE", pkt(0x80, 0, 1, 0, "t", 0), packets.MalformedPacket},
		{"QoS 3", pkt(0x36, "t", 0, 1, 0), packets.MalformedPacket},
		{"duplicate property", pkt(0x30, "t", 8, 0x03, "x", 0x03, "y"), packets.ProtocolError},
		{"property not for PUBLISH", pkt(0x30, "t", 5, 0x11, 0, 0, 0, 1), packets.MalformedPacket},
		{"over maximum packet size", pkt(0x30, "t", 0, make([]byte, 2000)), packets.PacketTooLarge},
		{"wildcard in topic", pkt(0x30, "a/+", 0), packets.TopicNameInvalid},
		{"subscription identifier from client", pkt(0x30, "t", 2, 0x0B, 1), packets.ProtocolError},
		{"topic alias above maximum", pkt(0x30, "t", 3, 0x23, 0x01, 0x00), packets.TopicAliasInvalid},
		{"unknown topic alias", pkt(0x30, "", 3, 0x23, 0, 1), packets.ProtocolError},
		{"second CONNECT", pkt(0x10, "MQTT", 5, 2, 0, 60, 0, "c"), packets.ProtocolError},
		{"AUTH", pkt(0xF0, 0x18, 0), packets.ProtocolError},
		{"SUBACK from client", pkt(0x90, 0, 1, 0, 0), packets.ProtocolError},
		{"No Local on shared subscription", pkt(0x82, 0, 1, 0, "$share/g/t", 0x04), packets.ProtocolError},
		{"PUBREL unknown reason", pkt(0x62, 0, 1, 0x10), packets.ProtocolError},
	}
	for _, v := range []byte{packets.V5, packets.V311} {
		for i, c := range cases {
			if v == packets.V311 && (c.code == packets.TopicAliasInvalid || c.name == "AUTH" ||
				c.name == "duplicate property" || c.name == "property not for PUBLISH" ||
				c.name == "unknown topic alias" || c.name == "subscription identifier from client" ||
				c.name == "PUBREL unknown reason" || c.name == "No Local on shared subscription") {
				continue // MQTT 5 only
			}
			t.Run(c.name+"/v"+string('0'+v), func(t *testing.T) {
				r := rawConnected(t, addr, v, "bad-"+string(rune('a'+i)))
				r.write(c.in)
				r.expectDisconnect(c.code)
				by.pub(t, &paho.Publish{Topic: "by/ok", QoS: 1, Payload: []byte{byte(i)}})
				if m := by.recv(t); m.Topic != "by/ok" || m.Payload[0] != byte(i) {
					t.Fatalf("bystander got %+v", m)
				}
			})
		}
	}
}

func TestMalformedConnect(t *testing.T) {
	_, addr := setup(t, Config{})
	// A v5 CONNECT with a protocol error gets a CONNACK with the code.
	r := dialRaw(t, addr, packets.V5)
	r.write(pkt(0x10, "MQTT", 5, 2, 0, 60, 3, 0x21, 0, 0, "c"))
	got := r.expectClosed()
	if len(got) != 1 || got[0].(*packets.Connack).ReasonCode != packets.ProtocolError {
		t.Fatalf("got %v", got)
	}
	// Unsupported protocol level: a 3.1.1-format CONNACK with code 1.
	r = dialRaw(t, addr, packets.V311)
	r.write(pkt(0x10, "MQTT", 6, 2, 0, 60, "c"))
	got = r.expectClosed()
	if len(got) != 1 || got[0].(*packets.Connack).ReasonCode != packets.V3BadProtocolVersion {
		t.Fatalf("got %v", got)
	}
	// Unknown protocol name, a packet other than CONNECT first, garbage:
	// closed without an answer.
	for _, in := range [][]byte{pkt(0x10, "HTTP", 4, 2, 0, 60, "c"), {0xC0, 0x00}, []byte("GET / HTTP/1.1\r\n\r\n")} {
		r = dialRaw(t, addr, packets.V311)
		r.write(in)
		if got := r.expectClosed(); len(got) != 0 {
			t.Fatalf("answered %v", got)
		}
	}
	// Enhanced authentication is refused with 0x8C.
	r = dialRaw(t, addr, packets.V5)
	r.send(&packets.Connect{Version: packets.V5, ClientID: "e", Props: packets.Properties{AuthMethod: "SCRAM-SHA-1"}})
	if got := r.expectClosed(); len(got) != 1 || got[0].(*packets.Connack).ReasonCode != packets.BadAuthenticationMethod {
		t.Fatalf("got %v", got)
	}
}

func TestInboundQoS2(t *testing.T) {
	_, addr := setup(t, Config{})
	sub := dialV5(t, addr, "sub", nil)
	sub.sub(t, paho.SubscribeOptions{Topic: "q2", QoS: 2})
	for _, v := range []byte{packets.V311, packets.V5} {
		r := rawConnected(t, addr, v, "q2pub")
		pub := &packets.Publish{Topic: "q2", QoS: 2, PacketID: 9, Payload: []byte{v}}
		r.send(pub)
		if a := r.expect(packets.PUBREC).(*packets.Ack); a.PacketID != 9 || a.ReasonCode != 0 {
			t.Fatalf("PUBREC %+v", a)
		}
		pub.Dup = true
		r.send(pub) // resent before PUBREL: not delivered again
		r.expect(packets.PUBREC)
		r.send(&packets.Ack{Kind: packets.PUBREL, PacketID: 9})
		if a := r.expect(packets.PUBCOMP).(*packets.Ack); a.PacketID != 9 || a.ReasonCode != 0 {
			t.Fatalf("PUBCOMP %+v", a)
		}
		r.send(&packets.Ack{Kind: packets.PUBREL, PacketID: 9})
		a := r.expect(packets.PUBCOMP).(*packets.Ack)
		if v == packets.V5 && a.ReasonCode != packets.PacketIDNotFound {
			t.Fatalf("second PUBCOMP reason 0x%02X", a.ReasonCode)
		}
		if m := sub.recv(t); m.Payload[0] != v {
			t.Fatalf("got %v", m.Payload)
		}
		sub.none(t)
	}
}

// TestInboundQoS2AcrossReconnect: a QoS 2 PUBLISH resent after a
// reconnect, before PUBREL, is still a duplicate.
func TestInboundQoS2AcrossReconnect(t *testing.T) {
	_, addr := setup(t, Config{})
	sub := dialV5(t, addr, "sub", nil)
	sub.sub(t, paho.SubscribeOptions{Topic: "x2", QoS: 2})
	persistent := packets.Properties{SessionExpiry: 60}
	r := dialRaw(t, addr, packets.V5)
	r.connect(&packets.Connect{ClientID: "q2r", Props: persistent})
	pub := &packets.Publish{Topic: "x2", QoS: 2, PacketID: 7, Payload: []byte("once")}
	r.send(pub)
	r.expect(packets.PUBREC)
	r.c.Close()
	r = dialRaw(t, addr, packets.V5)
	if ack := r.connect(&packets.Connect{ClientID: "q2r", Props: persistent}); !ack.SessionPresent {
		t.Fatal("session not present")
	}
	pub.Dup = true
	r.send(pub)
	r.expect(packets.PUBREC)
	r.send(&packets.Ack{Kind: packets.PUBREL, PacketID: 7})
	if a := r.expect(packets.PUBCOMP).(*packets.Ack); a.ReasonCode != 0 {
		t.Fatalf("PUBCOMP 0x%02X: identifier lost across the reconnect", a.ReasonCode)
	}
	if m := sub.recv(t); string(m.Payload) != "once" {
		t.Fatalf("got %q", m.Payload)
	}
	sub.none(t)
}

func TestReceiveMaximumExceeded(t *testing.T) {
	_, addr := setup(t, Config{ReceiveMaximum: 2})
	r := rawConnected(t, addr, packets.V5, "flood")
	for id := uint16(1); id <= 3; id++ {
		r.send(&packets.Publish{Topic: "f", QoS: 2, PacketID: id})
	}
	r.expect(packets.PUBREC)
	r.expect(packets.PUBREC)
	r.expectDisconnect(packets.ReceiveMaximumExceeded)
}

func TestRedeliveryWithDup(t *testing.T) {
	_, addr := setup(t, Config{})
	for _, v := range []byte{packets.V311, packets.V5} {
		id := "dup" + string('0'+v)
		persistent := packets.Properties{SessionExpiry: 600}
		r := dialRaw(t, addr, v)
		r.connect(&packets.Connect{ClientID: id, Props: persistent})
		r.subscribe(1, packets.SubOption{Filter: "d/" + id, QoS: 2}, packets.SubOption{Filter: "d1/" + id, QoS: 1})
		pub := dialV5(t, addr, "pub"+id, nil)
		pub.pub(t, &paho.Publish{Topic: "d1/" + id, QoS: 1, Payload: []byte("one")})
		pub.pub(t, &paho.Publish{Topic: "d/" + id, QoS: 2, Payload: []byte("two")})
		p1 := r.expect(packets.PUBLISH).(*packets.Publish)
		p2 := r.expect(packets.PUBLISH).(*packets.Publish)
		if p1.Dup || p2.Dup {
			t.Fatal("DUP on first delivery")
		}
		// Receive the QoS 2 one (PUBREC), acknowledge neither fully.
		r.send(&packets.Ack{Kind: packets.PUBREC, PacketID: p2.PacketID})
		r.expect(packets.PUBREL)
		r.c.Close()

		r = dialRaw(t, addr, v)
		if ack := r.connect(&packets.Connect{ClientID: id, Props: persistent}); !ack.SessionPresent {
			t.Fatal("session not present")
		}
		got := r.until(packets.PINGRESP)
		var sawPub, sawRel bool
		for _, p := range got {
			switch p := p.(type) {
			case *packets.Publish:
				if !p.Dup || p.PacketID != p1.PacketID || string(p.Payload) != "one" {
					t.Fatalf("redelivery %+v", p)
				}
				sawPub = true
				r.send(&packets.Ack{Kind: packets.PUBACK, PacketID: p.PacketID})
			case *packets.Ack:
				if p.Kind != packets.PUBREL || p.PacketID != p2.PacketID {
					t.Fatalf("got %+v", p)
				}
				sawRel = true
				r.send(&packets.Ack{Kind: packets.PUBCOMP, PacketID: p.PacketID})
			}
		}
		if !sawPub || !sawRel {
			t.Fatalf("v%d: after reconnect got %v", v, got)
		}
		if got := r.until(packets.PINGRESP); len(got) != 0 {
			t.Fatalf("more redeliveries: %v", got)
		}
	}
}

func TestKeepAliveTimeout(t *testing.T) {
	srv, addr := setup(t, Config{})
	w := dialV5(t, addr, "watch", nil)
	w.sub(t, paho.SubscribeOptions{Topic: "ka/will", QoS: 1})
	r := dialRaw(t, addr, packets.V5)
	r.connect(&packets.Connect{ClientID: "sleepy", CleanStart: true, KeepAlive: 1,
		WillFlag: true, WillTopic: "ka/will", WillPayload: []byte("lost")})
	// Silence for more than 1.5 s: the server disconnects with 0x8D and
	// publishes the will.
	r.expectDisconnect(packets.KeepAliveTimeout)
	if m := w.recv(t); string(m.Payload) != "lost" {
		t.Fatalf("will %q", m.Payload)
	}
	if srv.Stats().SessionsConnected != 1 {
		t.Fatal("session still attached")
	}
	// Server Keep Alive overrides the client's interval.
	_, addr2 := setup(t, Config{ServerKeepAlive: time.Second})
	r = dialRaw(t, addr2, packets.V5)
	ack := r.connect(&packets.Connect{ClientID: "c", CleanStart: true, KeepAlive: 0})
	if !ack.Props.Has(packets.PropServerKeepAlive) || ack.Props.ServerKeepAlive != 1 {
		t.Fatalf("Server Keep Alive %+v", ack.Props)
	}
	r.expectDisconnect(packets.KeepAliveTimeout)
}

func TestConnectTimeout(t *testing.T) {
	_, addr := setup(t, Config{ConnectTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil {
		t.Fatal("read data from a silent connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server did not close a connection that sent nothing")
	}
}

// TestConnectTimeoutEndsAtConnect checks that a connected client is
// bound by its keep alive, not by the connect timeout.
func TestConnectTimeoutEndsAtConnect(t *testing.T) {
	_, addr := setup(t, Config{ConnectTimeout: 20 * time.Millisecond})
	for _, ka := range []uint16{0, 60} {
		r := dialRaw(t, addr, packets.V311)
		r.connect(&packets.Connect{ClientID: "patient", CleanStart: true, KeepAlive: ka})
		time.Sleep(100 * time.Millisecond) // five connect timeouts of silence
		r.send(&packets.Pingreq{})
		r.expect(packets.PINGRESP)
	}
}

func TestPublishReasonCodes(t *testing.T) {
	srv := newBroker(t, func(c *broker.Config) { c.MaxRetainedMessages = 1 })
	_, addr := startListener(t, srv, Config{})
	r := rawConnected(t, addr, packets.V5, "codes")
	r.send(&packets.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte{0xFF},
		Props: packets.Properties{PayloadFormat: 1}})
	if a := r.expect(packets.PUBACK).(*packets.Ack); a.ReasonCode != packets.PayloadFormatInvalid || a.Props.ReasonString == "" {
		t.Fatalf("invalid UTF-8 payload: 0x%02X %q", a.ReasonCode, a.Props.ReasonString)
	}
	r.send(&packets.Publish{Topic: "$SYS/x", QoS: 2, PacketID: 2})
	if a := r.expect(packets.PUBREC).(*packets.Ack); a.ReasonCode != packets.NotAuthorized {
		t.Fatalf("$SYS publish: 0x%02X", a.ReasonCode)
	}
	// A refused QoS 2 packet id is not kept: PUBREL finds nothing.
	r.send(&packets.Ack{Kind: packets.PUBREL, PacketID: 2})
	if a := r.expect(packets.PUBCOMP).(*packets.Ack); a.ReasonCode != packets.PacketIDNotFound {
		t.Fatalf("PUBCOMP 0x%02X", a.ReasonCode)
	}
	// The retained store is full: 0x97.
	r.send(&packets.Publish{Topic: "r1", QoS: 1, PacketID: 5, Retain: true, Payload: []byte("a")})
	r.expect(packets.PUBACK)
	r.send(&packets.Publish{Topic: "r2", QoS: 1, PacketID: 6, Retain: true, Payload: []byte("b")})
	if a := r.expect(packets.PUBACK).(*packets.Ack); a.ReasonCode != packets.QuotaExceeded {
		t.Fatalf("retained store full: 0x%02X", a.ReasonCode)
	}
	// Without problem information, no Reason String.
	q := dialRaw(t, addr, packets.V5)
	var noInfo packets.Properties
	noInfo.Set(packets.PropRequestProblemInfo)
	q.connect(&packets.Connect{ClientID: "quiet", CleanStart: true, Props: noInfo})
	q.send(&packets.Publish{Topic: "$SYS/x", QoS: 1, PacketID: 1})
	if a := q.expect(packets.PUBACK).(*packets.Ack); a.ReasonCode != packets.NotAuthorized || a.Props.ReasonString != "" {
		t.Fatalf("PUBACK 0x%02X %q", a.ReasonCode, a.Props.ReasonString)
	}
	r.send(&packets.Unsubscribe{PacketID: 3, Filters: []string{"never"}})
	if a := r.expect(packets.UNSUBACK).(*packets.Unsuback); len(a.ReasonCodes) != 1 || a.ReasonCodes[0] != packets.NoSubscriptionExisted {
		t.Fatalf("UNSUBACK %+v", a)
	}
	sa := r.subscribe(4, packets.SubOption{Filter: "a/#/b", QoS: 1}, packets.SubOption{Filter: "ok", QoS: 2})
	if sa.ReasonCodes[0] != packets.TopicFilterInvalid || sa.ReasonCodes[1] != 2 {
		t.Fatalf("SUBACK %v", sa.ReasonCodes)
	}
	r.send(&packets.Unsubscribe{PacketID: 5, Filters: []string{"ok"}})
	if a := r.expect(packets.UNSUBACK).(*packets.Unsuback); a.ReasonCodes[0] != 0 {
		t.Fatalf("UNSUBACK %+v", a)
	}
	r.send(&packets.Disconnect{ReasonCode: 0x00, Props: packets.Properties{SessionExpiry: 10}})
	r.expectDisconnect(packets.ProtocolError) // expiry 0 at CONNECT cannot grow
}
