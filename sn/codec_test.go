package sn

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

var connectSensor01 = "0f 04 04 01 003c 73656e736f722d3031"

// codecCases lists, for every message type, messages with their exact
// encoding (computed by hand from the specification's layouts).
var codecCases = []struct {
	name string
	msg  Message
	hex  string
}{
	{"advertise", &Advertise{GwID: 1, Duration: 900}, "05 00 01 0384"},
	{"searchgw", &SearchGW{Radius: 1}, "03 01 01"},
	{"gwinfo", &GWInfo{GwID: 1}, "03 02 01"},
	{"gwinfo with address", &GWInfo{GwID: 7, GwAdd: []byte{127, 0, 0, 1}}, "07 02 07 7f000001"},
	{"connect clean", &Connect{CleanSession: true, ProtocolID: V12, Duration: 60, ClientID: []byte("sensor-01")}, connectSensor01},
	{"connect will", &Connect{Will: true, ProtocolID: V12, Duration: 10, ClientID: []byte("c")}, "07 04 08 01 000a 63"},
	{"connack", &Connack{ReturnCode: RejectedCongestion}, "03 05 01"},
	{"willtopicreq", &WillTopicReq{}, "02 06"},
	{"willtopic", &WillTopic{QoS: QoS1, Retain: true, Topic: []byte("w/t")}, "06 07 30 772f74"},
	{"willtopic empty", &WillTopic{}, "02 07"},
	{"willmsgreq", &WillMsgReq{}, "02 08"},
	{"willmsg", &WillMsg{Msg: []byte("bye")}, "05 09 627965"},
	{"willmsg empty", &WillMsg{}, "02 09"},
	{"register from client", &Register{MsgID: 1, TopicName: []byte("sn/test")}, "0d 0a 0000 0001 736e2f74657374"},
	{"register from gateway", &Register{TopicID: 2, MsgID: 9, TopicName: []byte("a/#")}, "09 0a 0002 0009 612f23"},
	{"regack", &Regack{TopicID: 1, MsgID: 1, ReturnCode: Accepted}, "07 0b 0001 0001 00"},
	{"publish qos1", &Publish{QoS: QoS1, TopicID: 1, MsgID: 5, Data: []byte("hi")}, "09 0c 20 0001 0005 6869"},
	{"publish qos-1 short", &Publish{QoS: QoSMinus1, TopicIDType: TopicIDShort, TopicID: 0x7431, Data: []byte("21.5")}, "0b 0c 62 7431 0000 32312e35"},
	{"publish dup qos2 retain predefined", &Publish{Dup: true, QoS: QoS2, Retain: true, TopicIDType: TopicIDPredefined, TopicID: 2, MsgID: 0xfffe}, "07 0c d1 0002 fffe"},
	{"publish 248-byte payload", &Publish{TopicID: 1, Data: bytes.Repeat([]byte{'x'}, 248)}, "ff 0c 00 0001 0000" + strings.Repeat("78", 248)},
	{"publish 249-byte payload", &Publish{TopicID: 1, Data: bytes.Repeat([]byte{'y'}, 249)}, "01 0102 0c 00 0001 0000" + strings.Repeat("79", 249)},
	{"publish 300-byte payload", &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: bytes.Repeat([]byte{'z'}, 300)}, "01 0135 0c 20 0001 0002" + strings.Repeat("7a", 300)},
	{"puback", &Puback{TopicID: 1, MsgID: 2, ReturnCode: RejectedInvalidTopicID}, "07 0d 0001 0002 02"},
	{"pubcomp", &Pubcomp{MsgID: 1}, "04 0e 0001"},
	{"pubrec", &Pubrec{MsgID: 0x1234}, "04 0f 1234"},
	{"pubrel", &Pubrel{MsgID: 2}, "04 10 0002"},
	{"subscribe name", &Subscribe{QoS: QoS1, MsgID: 1, TopicName: []byte("sn/down")}, "0c 12 20 0001 736e2f646f776e"},
	{"subscribe predefined", &Subscribe{TopicIDType: TopicIDPredefined, MsgID: 3, TopicID: 10}, "07 12 01 0003 000a"},
	{"subscribe short dup", &Subscribe{Dup: true, QoS: QoS2, TopicIDType: TopicIDShort, MsgID: 1, TopicID: 0x6162}, "07 12 c2 0001 6162"},
	{"suback", &Suback{QoS: QoS1, TopicID: 1, MsgID: 1}, "08 13 20 0001 0001 00"},
	{"suback wildcard", &Suback{QoS: QoS2, MsgID: 4}, "08 13 40 0000 0004 00"},
	{"unsubscribe name", &Unsubscribe{MsgID: 7, TopicName: []byte("ty4tw/topic2")}, "11 14 00 0007 74793474772f746f70696332"},
	{"unsubscribe short", &Unsubscribe{TopicIDType: TopicIDShort, MsgID: 2, TopicID: 0x6162}, "07 14 02 0002 6162"},
	{"unsuback", &Unsuback{MsgID: 5}, "04 15 0005"},
	{"pingreq", &Pingreq{}, "02 16"},
	{"pingreq wake", &Pingreq{ClientID: []byte("sleeper")}, "09 16 736c6565706572"},
	{"pingresp", &Pingresp{}, "02 17"},
	{"disconnect", &Disconnect{}, "02 18"},
	{"disconnect sleep", &Disconnect{HasDuration: true, Duration: 600}, "04 18 0258"},
	{"disconnect sleep zero", &Disconnect{HasDuration: true}, "04 18 0000"},
	{"willtopicupd", &WillTopicUpd{QoS: QoS2, Topic: []byte("a/b")}, "06 1a 40 612f62"},
	{"willtopicupd delete", &WillTopicUpd{}, "02 1a"},
	{"willtopicresp", &WillTopicResp{ReturnCode: RejectedNotSupported}, "03 1b 03"},
	{"willmsgupd", &WillMsgUpd{Msg: []byte("x")}, "03 1c 78"},
	{"willmsgresp", &WillMsgResp{}, "03 1d 00"},
	{"encapsulated", &Encapsulated{Ctrl: 1, NodeID: []byte{0, 42}, Message: mustHexVar(connectSensor01)}, "05 fe 01 002a " + connectSensor01},
	{"encapsulated whole length", &Encapsulated{NodeID: []byte{0, 42}, Message: mustHexVar("0218"), WholeLength: true}, "07 fe 00 002a 0218"},
	{"encapsulated text node id", &Encapsulated{NodeID: []byte("node8"), Message: mustHexVar("030500")}, "08 fe 00 6e6f646538 030500"},
}

// mustHexVar is mustHex for package-level tables.
func mustHexVar(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err) // test table bug
	}
	return b
}

func TestEncode(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			want := mustHex(t, c.hex)
			prefix := []byte("prefix")
			got, err := c.msg.Append(append([]byte(nil), prefix...))
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
				t.Fatalf("Append = %x\nwant %x%x", got, prefix, want)
			}
			if n := c.msg.Len(); n != len(want) {
				t.Errorf("Len = %d, want %d", n, len(want))
			}
		})
	}
}

func TestDecode(t *testing.T) {
	var p Packet // reused across cases, as the gateway does
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			b := mustHex(t, c.hex)
			if err := Decode(b, &p); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if p.Type != c.msg.Type() {
				t.Fatalf("Type = %v, want %v", p.Type, c.msg.Type())
			}
			if !reflect.DeepEqual(p.Message(), c.msg) {
				t.Fatalf("decoded %s\nwant    %s", p.Message(), c.msg)
			}
			if p.LongLength != (b[0] == 0x01) {
				t.Errorf("LongLength = %v", p.LongLength)
			}
			m, err := DecodeMessage(b)
			if err != nil || !reflect.DeepEqual(m, c.msg) {
				t.Errorf("DecodeMessage = %v, %v", m, err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			enc, err := c.msg.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			var p Packet
			if err := Decode(enc, &p); err != nil {
				t.Fatalf("Decode(%x): %v", enc, err)
			}
			again, err := p.Append(nil)
			if err != nil || !bytes.Equal(again, enc) {
				t.Fatalf("re-encoded %x, %v; want %x", again, err, enc)
			}
			s := p.String()
			if !strings.HasPrefix(s, c.msg.Type().String()) || strings.Contains(s, "\n") {
				t.Errorf("String = %q", s)
			}
		})
	}
}

// TestCodecCoversAllTypes makes sure the table has every 1.2 message type.
func TestCodecCoversAllTypes(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, c := range codecCases {
		seen[c.msg.Type()] = true
	}
	for mt := TypeInvalid + 1; mt < numMsgTypes; mt++ {
		if !seen[mt] {
			t.Errorf("no codec case for %v", mt)
		}
	}
}

func TestNonCanonicalLength(t *testing.T) {
	// A short PUBLISH in the 3-byte length form decodes; it re-encodes in
	// the 1-byte form.
	b := mustHex(t, "01 000b 0c 20 0001 0003 6869")
	var p Packet
	if err := Decode(b, &p); err != nil {
		t.Fatal(err)
	}
	if !p.LongLength || string(p.Publish.Data) != "hi" || p.Publish.MsgID != 3 {
		t.Fatalf("decoded %s long=%v", p.String(), p.LongLength)
	}
	got, _ := p.Append(nil)
	if want := mustHex(t, "09 0c 20 0001 0003 6869"); !bytes.Equal(got, want) {
		t.Fatalf("re-encoded %x, want %x", got, want)
	}
}

func TestUnusedFlagBitsIgnored(t *testing.T) {
	// CONNECT with DUP, QoS, Retain and TopicIdType bits set: those bits
	// are "not used" for CONNECT, so they are ignored rather than rejected.
	var p Packet
	if err := Decode(mustHex(t, "07 04 ff 01 003c 63"), &p); err != nil {
		t.Fatal(err)
	}
	if c := p.Connect; !c.Will || !c.CleanSession || string(c.ClientID) != "c" {
		t.Fatalf("decoded %s", p.String())
	}
}

func TestStringFormat(t *testing.T) {
	cases := []struct {
		m    Message
		want string
	}{
		{&Publish{QoS: QoS1, TopicID: 1, MsgID: 5, Data: []byte("hi")}, "PUBLISH dup=0 qos=1 retain=0 topicType=normal topicId=1 msgId=5 len=2"},
		{&Publish{QoS: QoSMinus1, TopicIDType: TopicIDShort, TopicID: 0x6162}, `PUBLISH dup=0 qos=-1 retain=0 topicType=short topicId="ab" msgId=0 len=0`},
		{&Connect{CleanSession: true, ProtocolID: V12, Duration: 60, ClientID: []byte("sensor-01")}, `CONNECT will=0 clean=1 protocolId=0x01 duration=60 clientId="sensor-01"`},
		{&Puback{TopicID: 1, MsgID: 2, ReturnCode: RejectedInvalidTopicID}, "PUBACK topicId=1 msgId=2 rc=invalidTopicId"},
		{&Subscribe{TopicIDType: TopicIDPredefined, MsgID: 3, TopicID: 10}, "SUBSCRIBE dup=0 qos=0 topicType=predefined msgId=3 topicId=10"},
		{&Disconnect{HasDuration: true, Duration: 60}, "DISCONNECT duration=60"},
		{&Pingreq{ClientID: []byte("s")}, `PINGREQ clientId="s"`},
		{&Encapsulated{Ctrl: 1, NodeID: []byte{0, 42}, Message: []byte{2, 0x18}}, "ENCAPSULATED ctrl=0x01 radius=1 nodeId=0x002a {DISCONNECT}"},
		{&Encapsulated{NodeID: []byte{1}, Message: []byte{2, 0x55}}, "ENCAPSULATED ctrl=0x00 radius=0 nodeId=0x01 {sn: decode: MsgType: unknown message type: code 0x55 (offset 1)}"},
	}
	for _, c := range cases {
		if got := c.m.String(); got != c.want {
			t.Errorf("String() = %q\nwant       %q", got, c.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		msg  Message
		want error
	}{
		{"connect without client id", &Connect{ProtocolID: V12}, ErrEmptyClientID},
		{"publish qos 4", &Publish{QoS: 4}, ErrInvalid},
		{"publish reserved topic type", &Publish{TopicIDType: TopicIDReserved}, ErrReserved},
		{"publish too long", &Publish{Data: make([]byte, MaxLength)}, ErrTooLong},
		{"connack reserved rc", &Connack{ReturnCode: 9}, ErrReserved},
		{"puback reserved rc", &Puback{ReturnCode: 4}, ErrReserved},
		{"suback reserved rc", &Suback{ReturnCode: 0xff}, ErrReserved},
		{"register empty topic", &Register{MsgID: 1}, ErrEmptyField},
		{"subscribe empty topic", &Subscribe{MsgID: 1}, ErrEmptyField},
		{"subscribe reserved type", &Subscribe{TopicIDType: TopicIDReserved}, ErrReserved},
		{"unsubscribe empty topic", &Unsubscribe{}, ErrEmptyField},
		{"willtopic qos 5", &WillTopic{QoS: 5, Topic: []byte("t")}, ErrInvalid},
		{"encapsulated empty node id", &Encapsulated{Message: []byte{2, 0x18}}, ErrEmptyField},
		{"encapsulated bad inner", &Encapsulated{NodeID: []byte{1}, Message: []byte{3, 0x18}}, ErrInvalid},
		{"encapsulated no inner", &Encapsulated{NodeID: []byte{1}}, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := c.msg.Append(dst)
			if !errors.Is(err, c.want) {
				t.Fatalf("Append error = %v, want %v", err, c.want)
			}
			if string(got) != "keep" {
				t.Errorf("Append changed dst on error: %q", got)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, hex string
		want      error
	}{
		{"empty datagram", "", ErrTruncated},
		{"one byte", "05", ErrTruncated},
		{"length zero", "00 0c", ErrBadLength},
		{"3-byte form cut", "01 00", ErrTruncated},
		{"3-byte form too small", "01 0003 0c", ErrBadLength},
		{"length beyond datagram", "03 05", ErrBadLength},
		{"length short of datagram", "02 05 00", ErrBadLength},
		{"3-byte length mismatch", "01 000a 0c 00 0001 0000", ErrBadLength},
		{"reserved type 0x03", "02 03", ErrUnknownType},
		{"reserved type 0x11", "02 11", ErrUnknownType},
		{"reserved type 0x19", "02 19", ErrUnknownType},
		{"reserved type 0x1e", "02 1e", ErrUnknownType},
		{"reserved type 0xff", "02 ff", ErrUnknownType},
		{"unknown type 0x55", "03 55 00", ErrUnknownType},
		{"advertise short", "04 00 01 00", ErrTruncated},
		{"advertise long", "06 00 01 0000 00", ErrBadLength},
		{"searchgw short", "02 01", ErrTruncated},
		{"searchgw long", "04 01 01 01", ErrBadLength},
		{"gwinfo short", "02 02", ErrTruncated},
		{"connect empty client id", "06 04 04 01 003c", ErrEmptyClientID},
		{"connect short", "05 04 04 01 00", ErrTruncated},
		{"connack short", "02 05", ErrTruncated},
		{"connack long", "04 05 00 00", ErrBadLength},
		{"connack reserved rc", "03 05 04", ErrReserved},
		{"willtopicreq long", "03 06 00", ErrBadLength},
		{"willtopic flags only", "03 07 20", ErrTruncated},
		{"register no topic", "06 0a 0000 0001", ErrTruncated},
		{"regack short", "06 0b 0001 0001", ErrTruncated},
		{"regack long", "08 0b 0001 0001 00 00", ErrBadLength},
		{"publish short", "06 0c 00 0001 00", ErrTruncated},
		{"publish reserved topic type", "07 0c 03 0001 0000", ErrReserved},
		{"puback reserved rc", "07 0d 0001 0001 04", ErrReserved},
		{"pubcomp short", "03 0e 00", ErrTruncated},
		{"pubrec long", "05 0f 0001 00", ErrBadLength},
		{"pubrel short", "02 10", ErrTruncated},
		{"subscribe no topic", "05 12 00 0001", ErrTruncated},
		{"subscribe reserved type", "07 12 03 0001 0001", ErrReserved},
		{"subscribe predefined short", "06 12 01 0001 00", ErrTruncated},
		{"subscribe predefined long", "08 12 01 0001 000a 00", ErrBadLength},
		{"suback short", "07 13 20 0001 0001", ErrTruncated},
		{"suback reserved rc", "08 13 20 0001 0001 80", ErrReserved},
		{"unsubscribe reserved type", "07 14 03 0001 0001", ErrReserved},
		{"unsubscribe short name long", "08 14 02 0001 6162 63", ErrBadLength},
		{"unsuback long", "05 15 0005 00", ErrBadLength},
		{"pingresp long", "03 17 00", ErrBadLength},
		{"disconnect 3 bytes", "03 18 00", ErrBadLength},
		{"disconnect 5 bytes", "05 18 0000 00", ErrBadLength},
		{"willtopicupd flags only", "03 1a 00", ErrTruncated},
		{"willtopicresp reserved rc", "03 1b 09", ErrReserved},
		{"willmsgresp short", "02 1d", ErrTruncated},
		{"encapsulated header only", "02 fe", ErrTruncated},
		{"encapsulated empty node id", "03 fe 00 0218", ErrEmptyField},
		{"encapsulated length below header", "01 0003 fe 00 0218", ErrBadLength},
		{"encapsulated length beyond datagram", "09 fe 00 002a 0218", ErrBadLength},
		{"encapsulated inner length mismatch", "05 fe 00 002a 0318", ErrBadLength},
		{"encapsulated inner truncated", "05 fe 00 002a 01", ErrTruncated},
		{"encapsulated whole length, no inner", "06 fe 00 2a 2a 2a", ErrBadLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p Packet
			p.Type = TypePublish
			err := Decode(mustHex(t, c.hex), &p)
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode error = %v, want %v", err, c.want)
			}
			var se *Error
			if !errors.As(err, &se) || se.Op != "decode" || !strings.HasPrefix(err.Error(), "sn: decode") {
				t.Errorf("error %q is not a decode *Error", err)
			}
			if p.Type != TypeInvalid {
				t.Errorf("Type = %v after error, want TypeInvalid", p.Type)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	var p Packet
	err := Decode(mustHex(t, "07 0c 03 0001 0000"), &p)
	const want = "sn: decode PUBLISH: TopicIdType: reserved value: 0b11 (offset 2)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	err = Decode(mustHex(t, "100c0000010000616263"), &p)
	const want2 = "sn: decode PUBLISH: Length: bad length: Length 16, datagram 10 bytes (offset 0)"
	if err == nil || err.Error() != want2 {
		t.Fatalf("error = %v\nwant    %s", err, want2)
	}
}

func TestEncapsulationConventions(t *testing.T) {
	inner := mustHex(t, connectSensor01)
	// 1.2 convention: Length covers the header only.
	spec := append(mustHex(t, "05 fe 01 002a"), inner...)
	// Whole-frame convention (some bridges, and MQTT-SN 2.0's envelope).
	whole := append(mustHex(t, "14 fe 01 002a"), inner...)
	for _, b := range [][]byte{spec, whole} {
		var p Packet
		enc, err := Decapsulate(b, &p)
		if err != nil {
			t.Fatalf("Decapsulate(%x): %v", b, err)
		}
		if enc.Ctrl != 1 || enc.Radius() != 1 || !bytes.Equal(enc.NodeID, []byte{0, 42}) || !bytes.Equal(enc.Message, inner) {
			t.Errorf("encapsulation = %+v", enc)
		}
		if enc.WholeLength != (b[0] == 0x14) {
			t.Errorf("WholeLength = %v for %x", enc.WholeLength, b[:1])
		}
		if p.Type != TypeConnect || string(p.Connect.ClientID) != "sensor-01" {
			t.Errorf("inner = %s", p.String())
		}
		again, err := enc.Append(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("re-encoded %x, %v; want %x", again, err, b)
		}
	}
	// A whole-frame encapsulation whose total needs the 3-byte form.
	big := &Encapsulated{NodeID: []byte("n"), WholeLength: true,
		Message: mustAppend(t, &Publish{TopicID: 1, Data: make([]byte, 300)})}
	b := mustAppend(t, big)
	if b[0] != 0x01 || int(be16(b[1:])) != len(b) {
		t.Fatalf("header %x for %d bytes", b[:4], len(b))
	}
	var p Packet
	if _, err := Decapsulate(b, &p); err != nil || p.Type != TypePublish || len(p.Publish.Data) != 300 {
		t.Fatalf("Decapsulate: %v %s", err, p.String())
	}
}

func TestAppendEncapsulated(t *testing.T) {
	b, err := AppendEncapsulated(nil, 0, []byte{0, 42}, &Connack{})
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "05 fe 00 002a 030500"); !bytes.Equal(b, want) {
		t.Fatalf("got %x, want %x", b, want)
	}
	if _, err := AppendEncapsulated(nil, 0, nil, &Connack{}); !errors.Is(err, ErrEmptyField) {
		t.Errorf("empty node id: %v", err)
	}
	if got, err := AppendEncapsulated([]byte("k"), 0, []byte{1}, &Connack{ReturnCode: 7}); !errors.Is(err, ErrReserved) || string(got) != "k" {
		t.Errorf("bad inner: %q %v", got, err)
	}
}

func TestDecapsulateErrors(t *testing.T) {
	var p Packet
	if _, err := Decapsulate(mustHex(t, "0218"), &p); !errors.Is(err, ErrInvalid) {
		t.Errorf("plain message: %v", err)
	}
	if _, err := Decapsulate(mustHex(t, "04 fe 00 01 0255"), &p); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown inner type: %v", err)
	}
	nested := mustHex(t, "04 fe 00 01 06 fe 00 02 0218")
	if _, err := Decapsulate(nested, &p); !errors.Is(err, ErrInvalid) || p.Type != TypeInvalid {
		t.Errorf("nested: %v, type %v", err, p.Type)
	}
	var se *Error
	_, err := Decapsulate(mustHex(t, "04 fe 00 01 03 05 07"), &p)
	if !errors.Is(err, ErrReserved) || !errors.As(err, &se) || se.Offset != 6 {
		t.Errorf("inner reserved rc: %v", err)
	}
}

func mustAppend(t *testing.T, m Message) []byte {
	t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLongTopic(t *testing.T) {
	m := &Publish{QoS: QoSMinus1, TopicID: 5, Data: []byte("a/b/c21.5")}
	name, payload, ok := m.LongTopic()
	if !ok || string(name) != "a/b/c" || string(payload) != "21.5" {
		t.Fatalf("LongTopic = %q %q %v", name, payload, ok)
	}
	for _, bad := range []*Publish{
		{QoS: QoS0, TopicID: 1, Data: []byte("ab")},
		{QoS: QoSMinus1, TopicIDType: TopicIDShort, TopicID: 1, Data: []byte("ab")},
		{QoS: QoSMinus1, TopicID: 3, Data: []byte("ab")},
		{QoS: QoSMinus1, TopicID: 0, Data: []byte("ab")},
	} {
		if _, _, ok := bad.LongTopic(); ok {
			t.Errorf("LongTopic accepted %s", bad)
		}
	}
}

func TestVersionTable(t *testing.T) {
	names := map[string]bool{}
	for mt := TypeInvalid + 1; mt < numMsgTypes; mt++ {
		c, ok := V12.Code(mt)
		if !ok {
			t.Errorf("%v has no 1.2 code", mt)
		}
		if back := V12.MsgType(c); back != mt {
			t.Errorf("code 0x%02x maps back to %v, want %v", c, back, mt)
		}
		if names[mt.String()] {
			t.Errorf("duplicate name %s", mt)
		}
		names[mt.String()] = true
	}
	if c, _ := V12.Code(TypePublish); c != 0x0c {
		t.Errorf("PUBLISH = 0x%02x", c)
	}
	if c, _ := V12.Code(TypeEncapsulated); c != 0xfe {
		t.Errorf("ENCAPSULATED = 0x%02x", c)
	}
	for _, reserved := range []byte{0x03, 0x11, 0x19, 0x1e, 0x80, 0xfd, 0xff} {
		if mt := V12.MsgType(reserved); mt != TypeInvalid {
			t.Errorf("reserved code 0x%02x maps to %v", reserved, mt)
		}
	}
	var p Packet
	if err := Version(2).Decode([]byte{2, 0x18}, &p); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("2.0 decode: %v", err)
	}
	if _, ok := Version(2).Code(TypePublish); ok {
		t.Error("2.0 has a code table")
	}
	if V12.String() != "1.2" || MsgType(200).String() != "MsgType(200)" {
		t.Errorf("names: %s %s", V12, MsgType(200))
	}
}

func TestFlagsAndNames(t *testing.T) {
	f := Flags(0).WithQoS(QoSMinus1).WithTopicIDType(TopicIDShort)
	if f != 0x62 || f.QoS() != QoSMinus1 || f.TopicIDType() != TopicIDShort || f.Dup() || f.Retain() {
		t.Errorf("flags 0x%02x", uint8(f))
	}
	f = FlagDup | FlagRetain | FlagWill | FlagCleanSession
	if !f.Dup() || !f.Retain() || !f.Will() || !f.CleanSession() || f.WithQoS(QoS1) != 0xbc {
		t.Errorf("flags 0x%02x", uint8(f))
	}
	if id, ok := ShortTopicID("t1"); !ok || id != 29745 || ShortTopicName(id) != "t1" {
		t.Errorf("ShortTopicID = %d %v", id, ok)
	}
	if _, ok := ShortTopicID("abc"); ok {
		t.Error("ShortTopicID accepted 3 characters")
	}
	for _, c := range []struct{ got, want string }{
		{QoSMinus1.String(), "-1"}, {QoS2.String(), "2"}, {QoS(7).String(), "QoS(7)"},
		{TopicIDPredefined.String(), "predefined"}, {TopicIDReserved.String(), "reserved"},
		{RejectedCongestion.String(), "rejected: congestion"}, {ReturnCode(0x42).String(), "ReturnCode(0x42)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestZeroAllocs checks the hot path allocation budget deterministically
// (the benchmarks report the same numbers).
func TestZeroAllocs(t *testing.T) {
	frames := []string{
		"09 0c 20 0001 0005 6869", // PUBLISH
		"07 0d 0001 0002 00",      // PUBACK
		"09 16 736c6565706572",    // PINGREQ with ClientId
		"0d 0a 0000 0001 736e2f74657374",
		"07 0b 0001 0001 00",
		"04 0e 0001", "04 0f 0001", "04 10 0001",
		"0c 12 20 0001 736e2f646f776e",
		"04 18 0258",
		"05 fe 01 002a " + connectSensor01,
	}
	var p Packet
	for _, h := range frames {
		b := mustHex(t, h)
		if n := testing.AllocsPerRun(100, func() { _ = Decode(b, &p) }); n != 0 {
			t.Errorf("Decode(%s): %v allocs", h, n)
		}
	}
	buf := make([]byte, 0, 512)
	pub := Publish{QoS: QoS1, TopicID: 1, MsgID: 5, Data: []byte("hello")}
	ack := Puback{TopicID: 1, MsgID: 5}
	if n := testing.AllocsPerRun(100, func() {
		buf, _ = pub.Append(buf[:0])
		buf, _ = ack.Append(buf[:0])
		buf, _ = AppendEncapsulated(buf[:0], 0, []byte{1, 2}, &pub)
	}); n != 0 {
		t.Errorf("Append: %v allocs", n)
	}
	enc := mustHex(t, "05 fe 01 002a "+connectSensor01)
	if n := testing.AllocsPerRun(100, func() { _, _ = Decapsulate(enc, &p) }); n != 0 {
		t.Errorf("Decapsulate: %v allocs", n)
	}
}
