package packets

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder. Whatever decodes must
// encode again, no longer than the input, and that encoding must decode
// to an equal packet and re-encode to the same bytes. The seed corpus is
// testdata/fuzz/FuzzDecode plus every sample packet; it runs in every
// go test.
func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		b, err := s.p.Append(nil, s.version)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, s.version)
	}
	f.Fuzz(func(t *testing.T, data []byte, version byte) {
		v := V311
		if version == V5 {
			v = V5
		}
		const max = 1 << 20
		p, n, err := Decode(data, v, max)
		// The stream reader must agree with the slice decoder.
		sp, serr := ReadPacket(bufio.NewReader(bytes.NewReader(data)), v, max)
		if (err == nil) != (serr == nil) || CodeOf(err) != CodeOf(serr) {
			t.Fatalf("Decode err %v, ReadPacket err %v", err, serr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(p, sp) {
			t.Fatalf("Decode and ReadPacket differ:\n%+v\n%+v", p, sp)
		}
		enc, err := p.Append(nil, v)
		if err != nil {
			t.Fatalf("re-encode %T: %v", p, err)
		}
		if len(enc) > n {
			t.Fatalf("re-encoding grew from %d to %d bytes:\n% x\n% x", n, len(enc), data[:n], enc)
		}
		q, m, err := Decode(enc, v, 0)
		if err != nil {
			t.Fatalf("decode re-encoded %T: %v\n% x", p, err, enc)
		}
		if m != len(enc) {
			t.Fatalf("re-encoded packet used %d of %d bytes", m, len(enc))
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed the packet:\n%+v\n%+v", p, q)
		}
		enc2, err := q.Append(nil, v)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %v\n% x\n% x", err, enc, enc2)
		}
	})
}

// FuzzReadFixedHeader checks the two header parsers agree.
func FuzzReadFixedHeader(f *testing.F) {
	f.Add([]byte{0x30, 0x7F}, uint32(0))
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, uint32(1000))
	f.Add([]byte{0xC0, 0x80, 0x00}, uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, max uint32) {
		h1, err1 := ParseFixedHeader(data, max)
		h2, err2 := ReadFixedHeader(bufio.NewReader(bytes.NewReader(data)), max)
		if CodeOf(err1) != CodeOf(err2) {
			t.Fatalf("ParseFixedHeader %v, ReadFixedHeader %v", err1, err2)
		}
		if err1 == nil && h1 != h2 {
			t.Fatalf("headers differ: %+v %+v", h1, h2)
		}
		if err1 == nil && max > 0 && h1.Size+h1.Remaining > int(max) {
			t.Fatalf("header %+v accepted over limit %d", h1, max)
		}
	})
}
