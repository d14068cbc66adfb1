package sn

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

var sentinels = []error{ErrTruncated, ErrBadLength, ErrUnknownType, ErrReserved,
	ErrEmptyClientID, ErrEmptyField, ErrInvalid}

// checkDecodeError asserts that err is a decode *Error wrapping a sentinel.
func checkDecodeError(t *testing.T, b []byte, err error) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) || se.Op != "decode" {
		t.Fatalf("Decode(%x): error %v is not a decode *Error", b, err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("Decode(%x): error %v wraps no sentinel", b, err)
}

// addSeeds adds the table frames; testdata/fuzz/FuzzDecode adds the
// captured ones.
func addSeeds(f *testing.F) {
	for _, c := range codecCases {
		b, err := c.msg.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(mustHexVar("01 000b 0c 20 0001 0003 6869"))                      // non-canonical 3-byte form
	f.Add(mustHexVar("14 fe 01 002a " + connectSensor01))                  // whole-length encapsulation
	f.Add(mustHexVar("01 0014 fe 01 002a 0d 0a 0000 0001 736e2f74657374")) // 3-byte whole length
	f.Add(mustHexVar("04 fe 00 01 06 fe 00 02 0218"))                      // nested
}

// FuzzDecode checks that Decode never panics, that failures are typed, and
// that whatever decodes re-encodes to bytes that decode to an equal
// message and re-encode identically.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := Decode(b, &p); err != nil {
			checkDecodeError(t, b, err)
			return
		}
		m := p.Message()
		enc, err := m.Append(nil)
		if err != nil {
			t.Fatalf("decoded %x as %s, which does not encode: %v", b, m, err)
		}
		if len(enc) != m.Len() {
			t.Fatalf("%s: Len %d, encoded %d bytes", m, m.Len(), len(enc))
		}
		if len(enc) > len(b) {
			t.Fatalf("%s: re-encoding grew from %d to %d bytes", m, len(b), len(enc))
		}
		var q Packet
		if err := Decode(enc, &q); err != nil {
			t.Fatalf("%x decoded as %s; its encoding %x does not decode: %v", b, m, enc, err)
		}
		if q.Type != p.Type || !reflect.DeepEqual(q.Message(), m) {
			t.Fatalf("round trip changed %s into %s", m, q.Message())
		}
		again, err := q.Append(nil)
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("second encoding %x, %v; first %x", again, err, enc)
		}
		if s := m.String(); len(s) == 0 {
			t.Fatal("empty String")
		}
	})
}

// FuzzDecapsulate checks forwarder frames: Decapsulate never panics, and a
// decapsulated message re-encapsulated with the same node ID, Ctrl and
// length convention decapsulates to the same thing.
func FuzzDecapsulate(f *testing.F) {
	addSeeds(f)
	f.Add(mustHexVar("05 fe 00 002a 0e 0c 00 0001 0000 6563686f206d65"))
	f.Add(mustHexVar("08 fe 00 6e6f646538 0813200001000100"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		enc, err := Decapsulate(b, &p)
		if err != nil {
			checkDecodeError(t, b, err)
			return
		}
		inner, err := p.Append(nil)
		if err != nil {
			t.Fatalf("inner %s does not encode: %v", p.String(), err)
		}
		out, err := (&Encapsulated{Ctrl: enc.Ctrl, NodeID: enc.NodeID, Message: inner, WholeLength: enc.WholeLength}).Append(nil)
		if err != nil {
			t.Fatalf("re-encapsulate: %v", err)
		}
		if !enc.WholeLength {
			viaAppend, err := AppendEncapsulated(nil, enc.Ctrl, enc.NodeID, p.Message())
			if err != nil || !bytes.Equal(viaAppend, out) {
				t.Fatalf("AppendEncapsulated = %x, %v; want %x", viaAppend, err, out)
			}
		} else if !bytes.Equal(inner, enc.Message) {
			// The whole-length convention finds the end of the node ID by
			// looking for a valid message; a non-canonical inner encoding
			// can make that search land elsewhere once canonicalised.
			return
		}
		var q Packet
		enc2, err := Decapsulate(out, &q)
		if err != nil {
			t.Fatalf("%x re-encapsulated as %x: %v", b, out, err)
		}
		if enc2.Ctrl != enc.Ctrl || !bytes.Equal(enc2.NodeID, enc.NodeID) || enc2.WholeLength != enc.WholeLength ||
			!reflect.DeepEqual(q.Message(), p.Message()) {
			t.Fatalf("round trip changed %s (%s) into %s (%s)", enc.String(), p.String(), enc2.String(), q.String())
		}
	})
}
