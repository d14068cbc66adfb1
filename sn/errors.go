package sn

import (
	"errors"
	"strconv"
)

// Sentinel errors. Decode and Append failures wrap one of them; test with
// errors.Is.
var (
	// ErrTruncated means the input ends before a field the message needs:
	// a datagram shorter than its header, or a message under its type's
	// minimum length.
	ErrTruncated = errors.New("truncated")
	// ErrBadLength means a Length field is invalid or disagrees with the
	// datagram size, or a fixed-size message has the wrong size.
	ErrBadLength = errors.New("bad length")
	// ErrUnknownType means the MsgType code is reserved or unassigned in the
	// protocol version.
	ErrUnknownType = errors.New("unknown message type")
	// ErrReserved means a field holds a value the specification reserves,
	// such as TopicIdType 0b11 or a return code above 0x03.
	ErrReserved = errors.New("reserved value")
	// ErrEmptyClientID means a CONNECT carries no ClientId.
	ErrEmptyClientID = errors.New("empty client ID")
	// ErrEmptyField means a field that must not be empty is empty, such as
	// a topic name or a forwarder's wireless node ID.
	ErrEmptyField = errors.New("empty field")
	// ErrTooLong means a message does not fit the 65535-byte Length field.
	ErrTooLong = errors.New("message too long")
	// ErrInvalid means a message to encode has a field value that cannot be
	// put on the wire, such as a QoS above 3.
	ErrInvalid = errors.New("invalid field value")
	// ErrUnsupportedVersion means the codec does not support that protocol version.
	ErrUnsupportedVersion = errors.New("unsupported protocol version")
)

// Error describes a failure to decode or encode one message. It wraps one
// of the sentinel errors.
type Error struct {
	Op     string  // Op is "decode" or "encode".
	Type   MsgType // Type is the message type, or TypeInvalid when not yet known.
	Offset int     // Offset is the byte offset in the input where the problem is, or -1.
	Field  string  // Field names the offending field, if any.
	Detail string  // Detail is an optional human-readable explanation.
	Err    error   // Err is the sentinel error.
}

// Error formats e as "sn: decode PUBLISH: bad length: Length 16, datagram 10 bytes (offset 0)".
func (e *Error) Error() string {
	b := make([]byte, 0, 96)
	b = append(b, "sn: "...)
	b = append(b, e.Op...)
	if e.Type != TypeInvalid {
		b = append(b, ' ')
		b = append(b, e.Type.String()...)
	}
	b = append(b, ": "...)
	if e.Field != "" {
		b = append(b, e.Field...)
		b = append(b, ": "...)
	}
	if e.Err != nil {
		b = append(b, e.Err.Error()...)
	} else {
		b = append(b, "error"...)
	}
	if e.Detail != "" {
		b = append(b, ": "...)
		b = append(b, e.Detail...)
	}
	if e.Offset >= 0 {
		b = append(b, " (offset "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
		b = append(b, ')')
	}
	return string(b)
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func decodeErr(t MsgType, off int, field string, err error, detail string) error {
	return &Error{Op: "decode", Type: t, Offset: off, Field: field, Err: err, Detail: detail}
}

func encodeErr(t MsgType, field string, err error, detail string) error {
	return &Error{Op: "encode", Type: t, Offset: -1, Field: field, Err: err, Detail: detail}
}

// itoa is strconv.Itoa, short for error details.
func itoa(n int) string { return strconv.Itoa(n) }
