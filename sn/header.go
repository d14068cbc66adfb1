package sn

// MaxLength is the largest total message length the 3-byte length form can
// express.
const MaxLength = 65535

// maxShortLength is the largest total length of the 1-byte length form.
const maxShortLength = 255

// longLengthMarker is the first byte of the 3-byte length form.
const longLengthMarker = 0x01

// Header is the Length and MsgType header that starts every MQTT-SN message.
type Header struct {
	Length     int  // Length is the total message length the Length field declares.
	LengthSize int  // LengthSize is 1 for the 1-byte length form and 3 for the 0x01-prefixed form.
	Code       byte // Code is the wire MsgType code; Version.MsgType maps it to a MsgType.
}

// Size returns the number of header bytes: the Length field plus MsgType.
func (h Header) Size() int { return h.LengthSize + 1 }

// ParseHeader parses the header at the start of b. It checks that the
// header is complete and that the declared Length can hold it, but not that
// Length matches len(b); Decode does that.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < 2 {
		return Header{}, decodeErr(TypeInvalid, len(b), "Length", ErrTruncated,
			"datagram of "+itoa(len(b))+" bytes has no complete header")
	}
	if b[0] != longLengthMarker {
		if b[0] == 0 {
			return Header{}, decodeErr(TypeInvalid, 0, "Length", ErrBadLength, "Length 0")
		}
		return Header{Length: int(b[0]), LengthSize: 1, Code: b[1]}, nil
	}
	if len(b) < 4 {
		return Header{}, decodeErr(TypeInvalid, len(b), "Length", ErrTruncated,
			"3-byte length form needs 4 header bytes, datagram has "+itoa(len(b)))
	}
	n := int(be16(b[1:]))
	if n < 4 {
		return Header{}, decodeErr(TypeInvalid, 1, "Length", ErrBadLength,
			"3-byte length form declares "+itoa(n)+" bytes, less than its own header")
	}
	return Header{Length: n, LengthSize: 3, Code: b[3]}, nil
}

// frameLen returns the total encoded length of a message whose variable
// part (after MsgType) is body bytes, choosing the shortest length form.
func frameLen(body int) int {
	if body+2 <= maxShortLength {
		return body + 2
	}
	return body + 4
}

// appendHeader appends the 1.2 header for a message of type t with a
// variable part of body bytes.
func appendHeader(dst []byte, t MsgType, body int) ([]byte, error) {
	code, ok := v12Table.wire(t)
	if !ok {
		return dst, encodeErr(t, "MsgType", ErrUnknownType, "not in MQTT-SN 1.2")
	}
	n := frameLen(body)
	if n <= maxShortLength {
		return append(dst, byte(n), code), nil
	}
	if n > MaxLength {
		return dst, encodeErr(t, "Length", ErrTooLong, itoa(n)+" bytes")
	}
	return append(dst, longLengthMarker, byte(n>>8), byte(n), code), nil
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func append16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

// exactBody checks that a fixed-size message has a variable part of exactly
// n bytes; off is the offset of body in the message.
func exactBody(t MsgType, body []byte, off, n int) error {
	if len(body) < n {
		return decodeErr(t, off+len(body), "", ErrTruncated,
			"needs "+itoa(off+n)+" bytes, message has "+itoa(off+len(body)))
	}
	if len(body) > n {
		return decodeErr(t, off+n, "", ErrBadLength,
			"is "+itoa(off+n)+" bytes, message has "+itoa(off+len(body)))
	}
	return nil
}

// minBody checks that a message has a variable part of at least n bytes.
func minBody(t MsgType, body []byte, off, n int) error {
	if len(body) < n {
		return decodeErr(t, off+len(body), "", ErrTruncated,
			"needs at least "+itoa(off+n)+" bytes, message has "+itoa(off+len(body)))
	}
	return nil
}

// decodeRC decodes a ReturnCode byte, rejecting reserved values.
func decodeRC(t MsgType, b byte, off int) (ReturnCode, error) {
	rc := ReturnCode(b)
	if !rc.Valid() {
		return 0, decodeErr(t, off, "ReturnCode", ErrReserved, "0x"+hex2(b))
	}
	return rc, nil
}

// checkRC rejects reserved return codes on encode.
func checkRC(t MsgType, rc ReturnCode) error {
	if !rc.Valid() {
		return encodeErr(t, "ReturnCode", ErrReserved, "0x"+hex2(byte(rc)))
	}
	return nil
}

// decodeTopicIDType reads the TopicIdType bits, rejecting the reserved value.
func decodeTopicIDType(t MsgType, f Flags, off int) (TopicIDType, error) {
	tt := f.TopicIDType()
	if tt == TopicIDReserved {
		return 0, decodeErr(t, off, "TopicIdType", ErrReserved, "0b11")
	}
	return tt, nil
}

// checkQoS rejects QoS values that do not fit the two Flags bits.
func checkQoS(t MsgType, q QoS) error {
	if !q.Valid() {
		return encodeErr(t, "QoS", ErrInvalid, itoa(int(q)))
	}
	return nil
}

// checkTopicIDType rejects reserved and out-of-range topic ID types.
func checkTopicIDType(t MsgType, tt TopicIDType) error {
	if tt >= TopicIDReserved {
		return encodeErr(t, "TopicIdType", ErrReserved, itoa(int(tt)))
	}
	return nil
}

const hexDigits = "0123456789abcdef"

func hex2(b byte) string { return string([]byte{hexDigits[b>>4], hexDigits[b&15]}) }
