package packets

import (
	"encoding/binary"
	"unicode/utf8"
)

// decoder reads the primitive MQTT data types from a packet body. The
// first failure is sticky: later reads return zero values and err keeps
// the first problem, so decoding code checks err once at the end.
type decoder struct {
	b   []byte
	off int
	err *Error
	// what names the packet being decoded, for error reasons.
	what string
}

func (d *decoder) fail(e *Error) {
	if d.err == nil {
		d.err = e
	}
}

func (d *decoder) short(field string) {
	d.fail(malformed("%s: packet too short for %s", d.what, field))
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) byte1(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.short(field)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uint16(field string) uint16 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 2 {
		d.short(field)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) uint32(field string) uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 4 {
		d.short(field)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

// varint reads a variable byte integer, rejecting encodings longer than
// four bytes and encodings that do not use the fewest bytes.
func (d *decoder) varint(field string) uint32 {
	if d.err != nil {
		return 0
	}
	v, n, e := parseVarint(d.b[d.off:])
	if e != nil {
		d.fail(malformed("%s: %s: %s", d.what, field, e.Reason))
		return 0
	}
	d.off += n
	return v
}

// rawBytes returns the next length-prefixed field without copying.
func (d *decoder) rawBytes(field string) []byte {
	n := int(d.uint16(field))
	if d.err != nil {
		return nil
	}
	if len(d.b)-d.off < n {
		d.short(field)
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

// binaryData returns a copy of the next Binary Data field.
func (d *decoder) binaryData(field string) []byte {
	v := d.rawBytes(field)
	if d.err != nil {
		return nil
	}
	out := make([]byte, len(v))
	copy(out, v)
	return out
}

// rawString returns the next UTF-8 Encoded String without copying, after
// checking that it is well-formed UTF-8 without U+0000.
func (d *decoder) rawString(field string) []byte {
	v := d.rawBytes(field)
	if d.err != nil {
		return nil
	}
	if e := checkUTF8(v); e != "" {
		d.fail(malformed("%s: %s %s", d.what, field, e))
		return nil
	}
	return v
}

// str returns the next UTF-8 Encoded String as a new string.
func (d *decoder) str(field string) string {
	v := d.rawString(field)
	if len(v) == 0 {
		return ""
	}
	return string(v)
}

// checkUTF8 returns "" when b is well-formed UTF-8 without U+0000, or a
// description of the problem.
func checkUTF8(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return "contains U+0000"
		}
		if c >= utf8.RuneSelf {
			if !utf8.Valid(b[i:]) {
				return "is not valid UTF-8"
			}
			for _, c := range b[i:] {
				if c == 0 {
					return "contains U+0000"
				}
			}
			return ""
		}
	}
	return ""
}

// ValidUTF8 reports whether s is a valid MQTT UTF-8 string: well-formed,
// without U+0000 and at most 65535 bytes long.
func ValidUTF8(s string) bool {
	return len(s) <= 65535 && checkUTF8([]byte(s)) == ""
}

// parseVarint decodes a variable byte integer from the start of b and
// returns its value and length.
func parseVarint(b []byte) (uint32, int, *Error) {
	var v uint32
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, &Error{Code: MalformedPacket, Reason: "variable byte integer truncated"}
		}
		c := b[i]
		v |= uint32(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0, &Error{Code: MalformedPacket, Reason: "variable byte integer not minimally encoded"}
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, &Error{Code: MalformedPacket, Reason: "variable byte integer longer than 4 bytes"}
}

// varintLen returns the encoded length of v.
func varintLen(v uint32) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	default:
		return 4
	}
}

func appendVarint(dst []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v == 0 {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

func appendUint16(dst []byte, v uint16) []byte {
	return append(dst, byte(v>>8), byte(v))
}

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendString(dst []byte, s string) []byte {
	dst = appendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBinary(dst []byte, b []byte) []byte {
	dst = appendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// encodeErr reports a field that cannot be encoded.
type encodeErr struct {
	what, field string
	n           int
}

func (e *encodeErr) Error() string {
	return "packets: encode " + e.what + ": " + e.field + " is " + itoa(e.n) + " bytes, more than 65535"
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// checkLen returns an error when a length-prefixed field is too long.
func checkLen(what, field string, n int) error {
	if n > 65535 {
		return &encodeErr{what: what, field: field, n: n}
	}
	return nil
}
