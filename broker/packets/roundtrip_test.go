package packets

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"
)

// normalize returns what a packet looks like after a trip through the
// wire at version v: properties a version or packet type cannot carry are
// dropped. It does so by encoding and decoding.
func roundTrip(t *testing.T, p Packet, v byte) Packet {
	t.Helper()
	b, err := p.Append(nil, v)
	if err != nil {
		t.Fatalf("encode %T: %v", p, err)
	}
	q, n, err := Decode(b, v, 0)
	if err != nil {
		t.Fatalf("decode %T (% x): %v", p, b, err)
	}
	if n != len(b) {
		t.Fatalf("decode used %d of %d bytes", n, len(b))
	}
	return q
}

func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name+"/v"+itoa(int(s.version)), func(t *testing.T) {
			q := roundTrip(t, s.p, s.version)
			if q.Type() != s.p.Type() {
				t.Fatalf("type %d, want %d", q.Type(), s.p.Type())
			}
			// A second trip must be the identity, in bytes and in value.
			b1, _ := q.Append(nil, s.version)
			r := roundTrip(t, q, s.version)
			b2, _ := r.Append(nil, s.version)
			if !bytes.Equal(b1, b2) {
				t.Fatalf("second encoding differs:\n% x\n% x", b1, b2)
			}
			if !reflect.DeepEqual(q, r) {
				t.Fatalf("second decoding differs:\n%+v\n%+v", q, r)
			}
			// ReadPacket from a stream gives the same packet.
			rp, err := ReadPacket(bufio.NewReader(bytes.NewReader(b1)), s.version, 0)
			if err != nil || !reflect.DeepEqual(rp, q) {
				t.Fatalf("ReadPacket = %+v, %v; want %+v", rp, err, q)
			}
		})
	}
}

// TestRoundTripValues checks that the fields survive, not only that
// encoding is stable.
func TestRoundTripValues(t *testing.T) {
	fp := fullProps()
	c := &Connect{Version: V5, KeepAlive: 10, ClientID: "id", WillFlag: true, WillQoS: 1,
		WillTopic: "w", WillPayload: []byte("p"), WillProps: fp, UsernameFlag: true,
		Username: "u", PasswordFlag: true, Password: []byte("pw"), Props: fp}
	got := roundTrip(t, c, V5).(*Connect)
	if got.ClientID != "id" || got.KeepAlive != 10 || !got.WillFlag || got.WillQoS != 1 ||
		got.WillTopic != "w" || string(got.WillPayload) != "p" || got.Username != "u" ||
		string(got.Password) != "pw" || got.ProtocolName != "MQTT" {
		t.Fatalf("connect fields lost: %+v", got)
	}
	if got.Props.SessionExpiry != 7200 || got.Props.ReceiveMaximum != 100 ||
		got.Props.MaximumPacketSize != 65536 || got.Props.TopicAliasMaximum != 10 ||
		got.Props.RequestProblemInfo != 1 || got.Props.AuthMethod != "SCRAM" ||
		len(got.Props.User) != 3 || got.Props.ContentType != "" {
		t.Fatalf("connect properties wrong: %+v", got.Props)
	}
	if got.WillProps.WillDelay != 5 || got.WillProps.MessageExpiry != 3600 ||
		got.WillProps.ContentType != "text/plain" || string(got.WillProps.CorrelationData) != "\x01\x02\x03" ||
		got.WillProps.SessionExpiry != 0 {
		t.Fatalf("will properties wrong: %+v", got.WillProps)
	}

	var z Properties
	z.Set(PropMaximumQoS)
	z.Set(PropServerKeepAlive)
	ca := roundTrip(t, &Connack{Props: z}, V5).(*Connack)
	if !ca.Props.Has(PropMaximumQoS) || !ca.Props.Has(PropServerKeepAlive) || ca.Props.Has(PropRetainAvailable) {
		t.Fatalf("zero-valued properties not kept: %b", ca.Props.Present)
	}

	pp := fp
	pp.SubscriptionIDs = []uint32{1, 2}
	pub := roundTrip(t, &Publish{QoS: 2, PacketID: 5, Topic: "t/1", Payload: []byte("x"), Props: pp}, V5).(*Publish)
	if pub.Topic != "t/1" || string(pub.Payload) != "x" || pub.PacketID != 5 || pub.QoS != 2 ||
		!reflect.DeepEqual(pub.Props.SubscriptionIDs, []uint32{1, 2}) || pub.Props.TopicAlias != 3 ||
		pub.Props.MessageExpiry != 3600 || pub.Props.PayloadFormat != 1 || pub.Props.ReasonString != "" {
		t.Fatalf("publish wrong: %+v", pub)
	}
	v3 := roundTrip(t, &Publish{QoS: 1, PacketID: 5, Topic: "t", Payload: []byte("x"), Props: pp}, V311).(*Publish)
	if v3.Props.Present != 0 {
		t.Fatalf("MQTT 3.1.1 publish carried properties: %+v", v3.Props)
	}
	s := roundTrip(t, &Subscribe{PacketID: 1, Filters: []SubOption{{Filter: "a", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 1}}}, V5).(*Subscribe)
	if o := s.Filters[0]; o.Filter != "a" || o.QoS != 2 || !o.NoLocal || !o.RetainAsPublished || o.RetainHandling != 1 {
		t.Fatalf("subscribe options lost: %+v", o)
	}
	s3 := roundTrip(t, &Subscribe{PacketID: 1, Filters: []SubOption{{Filter: "a", QoS: 1, NoLocal: true}}}, V311).(*Subscribe)
	if o := s3.Filters[0]; o.QoS != 1 || o.NoLocal {
		t.Fatalf("MQTT 3.1.1 subscribe options: %+v", o)
	}
}

func TestSizeMatchesEncoding(t *testing.T) {
	for _, s := range samples() {
		p, ok := s.p.(*Publish)
		if !ok {
			continue
		}
		b, err := p.Append(nil, s.version)
		if err != nil {
			t.Fatal(err)
		}
		if p.Size(s.version) != len(b) {
			t.Errorf("%s: Size %d, encoded %d", s.name, p.Size(s.version), len(b))
		}
	}
}

func TestDecodedPublishOwnsMemory(t *testing.T) {
	b, _ := (&Publish{Topic: "owned/topic", Payload: []byte("payload")}).Append(nil, V311)
	h, err := ParseFixedHeader(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	var p Publish
	if err := p.Decode(h, b[h.Size:], V311); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'X'
	}
	if p.Topic != "owned/topic" || string(p.Payload) != "payload" {
		t.Fatalf("decoded publish aliases the input: %q %q", p.Topic, p.Payload)
	}
}

func TestEncodeErrors(t *testing.T) {
	long := string(make([]byte, 70000))
	cases := []Packet{
		&Publish{Topic: long},
		&Connect{Version: V311, ClientID: long},
		&Subscribe{PacketID: 1, Filters: []SubOption{{Filter: long}}},
		&Connack{Props: Properties{ReasonString: long}},
		&Publish{Topic: "t", Props: Properties{SubscriptionIDs: []uint32{0}}},
		&Ack{Kind: CONNECT},
		&Auth{},
	}
	for _, p := range cases {
		if _, err := p.Append(nil, V5-boolByte(p.Type() == AUTH)); err == nil {
			t.Errorf("%T: encoding succeeded", p)
		}
	}
	if _, err := appendHeader(nil, PUBLISH<<4, MaxRemainingLength+1); err == nil {
		t.Error("oversized remaining length encoded")
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func TestAppendAck(t *testing.T) {
	for _, v := range []byte{V311, V5} {
		for _, k := range []byte{PUBACK, PUBREC, PUBREL, PUBCOMP} {
			for _, rc := range []byte{0, 0x92} {
				a := Ack{Kind: k, PacketID: 513, ReasonCode: rc}
				if k == PUBACK || k == PUBREC {
					a.ReasonCode = rc &^ 0x02 // 0x90, valid for both
				}
				want, err := a.Append(nil, v)
				if err != nil {
					t.Fatal(err)
				}
				got := AppendAck(nil, k, 513, a.ReasonCode, v)
				if !bytes.Equal(got, want) {
					t.Errorf("AppendAck(%d, v%d, 0x%x) = % x, want % x", k, v, a.ReasonCode, got, want)
				}
				if _, _, err := Decode(got, v, 0); err != nil {
					t.Errorf("decode: %v", err)
				}
			}
		}
	}
}
