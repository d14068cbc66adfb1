package packets

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// pkt builds a packet from a first byte and body parts (byte slices or
// strings), computing the remaining length.
func pkt(first byte, parts ...any) []byte {
	var body []byte
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			body = append(body, v...)
		case []byte:
			body = append(body, v...)
		case int:
			body = append(body, byte(v))
		}
	}
	out := appendVarint([]byte{first}, uint32(len(body)))
	return append(out, body...)
}

// s16 is a length-prefixed string.
func s16(s string) []byte { return appendString(nil, s) }

func TestMalformed(t *testing.T) {
	connect5 := func(flags byte, rest ...any) []byte {
		return pkt(0x10, append([]any{s16("MQTT"), 5, int(flags), 0, 60}, rest...)...)
	}
	connect4 := func(flags byte, rest ...any) []byte {
		return pkt(0x10, append([]any{s16("MQTT"), 4, int(flags), 0, 60}, rest...)...)
	}
	cases := []struct {
		name    string
		version byte
		in      []byte
		code    byte
	}{
		{"reserved type 0", V311, []byte{0x00, 0x00}, MalformedPacket},
		{"remaining length 5 bytes", V311, []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, MalformedPacket},
		{"remaining length not minimal", V311, []byte{0xC0, 0x80, 0x00}, MalformedPacket},
		{"pingreq flags", V311, []byte{0xC1, 0x00}, MalformedPacket},
		{"pingreq body", V311, []byte{0xC0, 0x01, 0x00}, MalformedPacket},
		{"subscribe flags 0", V311, pkt(0x80, 0, 1, s16("a"), 0), MalformedPacket},
		{"pubrel flags 0", V311, pkt(0x60, 0, 1), MalformedPacket},
		{"connect flags", V311, []byte{0x11, 0x00}, MalformedPacket},
		{"publish qos 3", V311, pkt(0x36, s16("a"), 0, 1), MalformedPacket},
		{"publish dup qos 0", V311, pkt(0x38, s16("a")), MalformedPacket},
		{"publish bad utf8", V311, pkt(0x30, []byte{0, 2, 0xC3, 0x28}), MalformedPacket},
		{"publish U+0000", V311, pkt(0x30, []byte{0, 2, 'a', 0}), MalformedPacket},
		{"publish surrogate", V311, pkt(0x30, []byte{0, 3, 0xED, 0xA0, 0x80}), MalformedPacket},
		{"publish wildcard", V311, pkt(0x30, s16("a/+")), TopicNameInvalid},
		{"publish empty topic v3", V311, pkt(0x30, s16("")), ProtocolError},
		{"publish packet id 0", V311, pkt(0x32, s16("a"), 0, 0), ProtocolError},
		{"publish topic overruns", V311, pkt(0x30, []byte{0, 9, 'a'}), MalformedPacket},
		{"publish no packet id", V311, pkt(0x32, s16("a"), 0), MalformedPacket},
		{"v5 publish no properties", V5, pkt(0x30, s16("a")), MalformedPacket},
		{"v5 duplicate property", V5, pkt(0x30, s16("a"), 8, 0x03, s16("x"), 0x03, s16("y")), ProtocolError},
		{"v5 wrong property", V5, pkt(0x30, s16("a"), 5, 0x11, 0, 0, 0, 1), MalformedPacket},
		{"v5 unknown property", V5, pkt(0x30, s16("a"), 2, 0x05, 0), MalformedPacket},
		{"v5 property length overruns", V5, pkt(0x30, s16("a"), 9, 0x01, 0), MalformedPacket},
		{"v5 property value truncated", V5, pkt(0x30, s16("a"), 3, 0x02, 0, 0), MalformedPacket},
		{"v5 topic alias 0", V5, pkt(0x30, s16("a"), 3, 0x23, 0, 0), TopicAliasInvalid},
		{"v5 empty topic no alias", V5, pkt(0x30, s16(""), 0), ProtocolError},
		{"v5 payload format 2", V5, pkt(0x30, s16("a"), 2, 0x01, 2), ProtocolError},
		{"v5 subscription id 0", V5, pkt(0x30, s16("a"), 2, 0x0B, 0), ProtocolError},
		{"v5 bad utf8 in property", V5, pkt(0x30, s16("a"), 5, 0x03, []byte{0, 2, 0xFF, 0xFE}), MalformedPacket},
		{"v5 user property truncated", V5, pkt(0x30, s16("a"), 4, 0x26, s16("k")), MalformedPacket},
		{"connect reserved flag", V311, connect4(0x03, s16("c")), MalformedPacket},
		{"connect bad protocol name", V311, pkt(0x10, s16("MQTX"), 4, 2, 0, 60, s16("c")), UnsupportedProtocolVersion},
		{"connect level 6", V311, pkt(0x10, s16("MQTT"), 6, 2, 0, 60, s16("c")), UnsupportedProtocolVersion},
		{"connect MQIsdp level 4", V311, pkt(0x10, s16("MQIsdp"), 4, 2, 0, 60, s16("c")), UnsupportedProtocolVersion},
		{"connect will qos 3", V311, connect4(0x1E, s16("c"), s16("w"), s16("m")), MalformedPacket},
		{"connect will retain without will", V311, connect4(0x22, s16("c")), MalformedPacket},
		{"connect password without user v3", V311, connect4(0x42, s16("c"), s16("pw")), MalformedPacket},
		{"connect trailing bytes", V311, connect4(0x02, s16("c"), 0), MalformedPacket},
		{"connect client id bad utf8", V311, connect4(0x02, []byte{0, 1, 0xFF}), MalformedPacket},
		{"connect missing client id", V311, connect4(0x02), MalformedPacket},
		{"connect v5 receive maximum 0", V311, connect5(0x02, 3, 0x21, 0, 0, s16("c")), ProtocolError},
		{"connect v5 max packet size 0", V311, connect5(0x02, 5, 0x27, 0, 0, 0, 0, s16("c")), ProtocolError},
		{"connect v5 request problem 2", V311, connect5(0x02, 2, 0x17, 2, s16("c")), ProtocolError},
		{"connect v5 will prop in connect", V311, connect5(0x02, 5, 0x18, 0, 0, 0, 1, s16("c")), MalformedPacket},
		{"connect v5 duplicate session expiry", V311, connect5(0x02, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, s16("c")), ProtocolError},
		{"subscribe no filters", V311, pkt(0x82, 0, 1), ProtocolError},
		{"subscribe packet id 0", V311, pkt(0x82, 0, 0, s16("a"), 0), ProtocolError},
		{"subscribe v3 reserved bits", V311, pkt(0x82, 0, 1, s16("a"), 0x04), MalformedPacket},
		{"subscribe qos 3", V311, pkt(0x82, 0, 1, s16("a"), 3), MalformedPacket},
		{"subscribe missing options", V311, pkt(0x82, 0, 1, s16("a")), MalformedPacket},
		{"subscribe v5 retain handling 3", V5, pkt(0x82, 0, 1, 0, s16("a"), 0x30), ProtocolError},
		{"subscribe v5 reserved bits", V5, pkt(0x82, 0, 1, 0, s16("a"), 0x40), MalformedPacket},
		{"subscribe v5 two ids", V5, pkt(0x82, 0, 1, 4, 0x0B, 1, 0x0B, 2, s16("a"), 0), ProtocolError},
		{"unsubscribe no filters", V311, pkt(0xA2, 0, 1), ProtocolError},
		{"disconnect v5 bad reason", V5, pkt(0xE0, 0x05), ProtocolError},
		{"disconnect v3 body", V311, pkt(0xE0, 0), MalformedPacket},
		{"auth v3", V311, pkt(0xF0), MalformedPacket},
		{"auth v5 bad reason", V5, pkt(0xF0, 0x01), ProtocolError},
		{"puback v5 bad reason", V5, pkt(0x40, 0, 1, 0x05), ProtocolError},
		{"puback packet id 0", V311, pkt(0x40, 0, 0), ProtocolError},
		{"puback v3 extra byte", V311, pkt(0x40, 0, 1, 0), MalformedPacket},
		{"pubrel v5 reason from puback", V5, pkt(0x62, 0, 1, 0x10), ProtocolError},
		{"connack reserved flags", V311, pkt(0x20, 2, 0), MalformedPacket},
		{"suback v3 bad code", V311, pkt(0x90, 0, 1, 3), ProtocolError},
		{"unsuback v5 bad code", V5, pkt(0xB0, 0, 1, 0, 0x01), ProtocolError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Decode(c.in, c.version, 0)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decode(% x) = %v, want an *Error", c.in, err)
			}
			if pe.Code != c.code || CodeOf(err) != c.code {
				t.Fatalf("Decode(% x) code 0x%02X (%v), want 0x%02X", c.in, pe.Code, err, c.code)
			}
			// The stream reader agrees.
			_, err = ReadPacket(bufio.NewReader(bytes.NewReader(c.in)), c.version, 0)
			if CodeOf(err) != c.code {
				t.Fatalf("ReadPacket code 0x%02X (%v), want 0x%02X", CodeOf(err), err, c.code)
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	_, _, err := Decode([]byte{0x00, 0x00}, V311, 0)
	if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrProtocol) {
		t.Fatalf("errors.Is mismatch for %v", err)
	}
	if CodeOf(nil) != Success || CodeOf(io.EOF) != UnspecifiedError {
		t.Fatal("CodeOf of non-packet errors")
	}
}

func TestTooLarge(t *testing.T) {
	b, _ := (&Publish{Topic: "t", Payload: make([]byte, 100)}).Append(nil, V311)
	if _, err := ParseFixedHeader(b, uint32(len(b))); err != nil {
		t.Fatalf("packet of exactly the maximum size refused: %v", err)
	}
	_, err := ParseFixedHeader(b, uint32(len(b)-1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ParseFixedHeader over limit = %v", err)
	}
	_, err = ReadFixedHeader(bufio.NewReader(bytes.NewReader(b)), 50)
	if CodeOf(err) != PacketTooLarge {
		t.Fatalf("ReadFixedHeader over limit = %v", err)
	}
	// The limit is checked from the header alone, before any body arrives.
	_, err = ReadFixedHeader(bufio.NewReader(bytes.NewReader([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F})), 1<<20)
	if CodeOf(err) != PacketTooLarge {
		t.Fatalf("huge remaining length = %v", err)
	}
}

func TestTruncated(t *testing.T) {
	for _, s := range samples() {
		b, err := s.p.Append(nil, s.version)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n++ {
			_, _, err := Decode(b[:n], s.version, 0)
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("%s: Decode of %d/%d bytes = %v, want io.ErrUnexpectedEOF", s.name, n, len(b), err)
			}
			_, err = ReadPacket(bufio.NewReader(bytes.NewReader(b[:n])), s.version, 0)
			if !errors.Is(err, io.ErrUnexpectedEOF) && !(n == 0 && err == io.EOF) {
				t.Fatalf("%s: ReadPacket of %d/%d bytes = %v", s.name, n, len(b), err)
			}
		}
	}
}

func TestTypeNames(t *testing.T) {
	if TypeName(PUBLISH) != "PUBLISH" || TypeName(AUTH) != "AUTH" || TypeName(99) != "type(99)" {
		t.Fatal("TypeName")
	}
	if !ValidTopicName("a/b") || ValidTopicName("a/#") || ValidTopicName("") || ValidTopicName("a\x00") {
		t.Fatal("ValidTopicName")
	}
	if ConnackV3Code(NotAuthorized) != V3NotAuthorized || ConnackV3Code(BadUsernameOrPassword) != V3BadUserOrPassword ||
		ConnackV3Code(ServerBusy) != V3ServerUnavailable || ConnackV3Code(Success) != V3Accepted {
		t.Fatal("ConnackV3Code")
	}
}
