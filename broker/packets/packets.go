// Package packets is a strict MQTT 3.1.1 and 5.0 codec: the fixed header,
// every control packet type and every MQTT 5 property.
//
// Decoding works on a packet body that the caller has already framed with
// ReadFixedHeader (or on a whole packet with Decode and ReadPacket).
// Encoding appends to a caller buffer so that a connection can batch many
// packets into one write. Malformed input never panics: it yields an *Error
// carrying the MQTT 5 reason code the receiver should report (0x81 Malformed
// Packet, 0x82 Protocol Error, 0x95 Packet Too Large ...).
//
// The hot path (PUBLISH) is allocation-conscious: Publish.Append does not
// allocate, and Publish.Decode makes exactly one allocation that holds both
// the topic and the payload, so the decoded message owns its memory and can
// be shared read-only with any number of subscribers.
package packets

import "fmt"

// Control packet types (the high nibble of the first header byte).
const (
	CONNECT     byte = 1
	CONNACK     byte = 2
	PUBLISH     byte = 3
	PUBACK      byte = 4
	PUBREC      byte = 5
	PUBREL      byte = 6
	PUBCOMP     byte = 7
	SUBSCRIBE   byte = 8
	SUBACK      byte = 9
	UNSUBSCRIBE byte = 10
	UNSUBACK    byte = 11
	PINGREQ     byte = 12
	PINGRESP    byte = 13
	DISCONNECT  byte = 14
	AUTH        byte = 15
)

// Protocol levels carried in CONNECT.
const (
	V31  byte = 3 // MQTT 3.1 ("MQIsdp")
	V311 byte = 4 // MQTT 3.1.1
	V5   byte = 5 // MQTT 5.0
)

// Size limits of the wire format.
const (
	// MaxRemainingLength is the largest value the Remaining Length field
	// can carry (four bytes of variable byte integer).
	MaxRemainingLength = 268435455
	// MaxPacketSize is the largest possible packet: one type byte, four
	// length bytes and the largest remaining length.
	MaxPacketSize = 1 + 4 + MaxRemainingLength
	// MaxVarint is the largest variable byte integer.
	MaxVarint = MaxRemainingLength
)

var typeNames = [16]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
	"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
	"PINGRESP", "DISCONNECT", "AUTH"}

// TypeName returns the name of a control packet type ("PUBLISH" ...).
func TypeName(t byte) string {
	if t < 16 {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", t)
}

// FixedHeader is the first part of every control packet.
type FixedHeader struct {
	// Type is the control packet type (CONNECT ... AUTH).
	Type byte
	// Flags are the low four bits of the first byte.
	Flags byte
	// Remaining is the length of the variable header plus the payload.
	Remaining int
	// Size is the length of the fixed header itself (2 to 5 bytes).
	Size int
}

// Packet is any decoded control packet. Every packet type in this package
// implements it.
type Packet interface {
	// Type returns the control packet type.
	Type() byte
	// Append encodes the packet for the given protocol level and appends
	// it to dst.
	Append(dst []byte, version byte) ([]byte, error)
}

// flagsFor is the fixed value of the header flags of each packet type
// other than PUBLISH (whose flags carry DUP, QoS and RETAIN).
var flagsFor = [16]byte{PUBREL: 2, SUBSCRIBE: 2, UNSUBSCRIBE: 2}

// appendHeader writes a fixed header with the given first byte and
// remaining length.
func appendHeader(dst []byte, first byte, remaining int) ([]byte, error) {
	if remaining > MaxRemainingLength {
		return dst, fmt.Errorf("packets: encode %s: remaining length %d exceeds %d",
			TypeName(first>>4), remaining, MaxRemainingLength)
	}
	dst = append(dst, first)
	return appendVarint(dst, uint32(remaining)), nil
}
