package radios

import (
	"bytes"
	"testing"
)

func TestXBeeDecoderResync(t *testing.T) {
	for _, mode := range []APIMode{APIMode1, APIMode2} {
		good, _ := AppendXBeeFrame(nil, mode, hx(t, "90 00 13 A2 00 40 52 2B AA 7D 84 01 0F"))
		bad := append([]byte(nil), good...)
		bad[len(bad)-1] ^= 0x55 // checksum
		var in []byte
		in = append(in, 0x00, 0x7E, 0x00) // garbage, then a start with no body
		in = append(in, bad...)
		in = append(in, 0xAA, 0xBB)
		in = append(in, good...)
		in = append(in, 0x7E, 0xFF, 0xFF) // oversize length
		in = append(in, good...)
		d := NewXBeeDecoder(mode, 64)
		// Feed byte by byte to exercise every state boundary.
		var frames int
		for i := range in {
			d.Feed(in[i:i+1], func(f []byte) {
				frames++
				if f[0] != 0x90 {
					t.Errorf("AP=%d: bad frame % X", mode, f)
				}
			})
		}
		st := d.Stats()
		if frames != 2 || st.Frames != 2 {
			t.Errorf("AP=%d: frames %d stats %+v", mode, frames, st)
		}
		if st.BadChecksum == 0 && st.Truncated == 0 {
			t.Errorf("AP=%d: bad frame not counted %+v", mode, st)
		}
		if st.Oversize == 0 {
			t.Errorf("AP=%d: oversize not counted %+v", mode, st)
		}
	}
}

func TestXBeeAP1FrameInsideBadCandidate(t *testing.T) {
	// AP=1: a stray 0x7E whose "length" swallows the real frame must not
	// hide it: after the checksum fails the decoder rescans.
	good, _ := AppendXBeeFrame(nil, APIMode1, hx(t, "8B 01 FF FE 00 00 00"))
	in := append([]byte{0x7E, 0x00, 0x08}, good...)
	in = append(in, make([]byte, 8)...)
	f := decodeAll(NewXBeeDecoder(APIMode1, 0), in)
	if len(f) != 1 || f[0][0] != 0x8B {
		t.Fatalf("got %x", f)
	}
}

func TestAPIDecoderBinarySafety(t *testing.T) {
	data := []byte{0x90, 0x7E, 0x7D, 0x11, 0x13, 0x0D, 0x0A, 0xC0, 0xDB, 0x00, 0xFF}
	for _, mode := range []APIMode{APIMode1, APIMode2} {
		enc, err := AppendXBeeFrame(nil, mode, data)
		if err != nil {
			t.Fatal(err)
		}
		f := decodeAll(NewXBeeDecoder(mode, 0), enc)
		if len(f) != 1 || !bytes.Equal(f[0], data) {
			t.Errorf("AP=%d: % X", mode, f)
		}
	}
	if _, err := AppendXBeeFrame(nil, APIMode1, nil); err == nil {
		t.Error("empty frame accepted")
	}
	if _, err := AppendXBeeFrame(nil, APIMode1, make([]byte, 70000)); err == nil {
		t.Error("huge frame accepted")
	}
}

func TestAP2EscapeThenStart(t *testing.T) {
	good, _ := AppendXBeeFrame(nil, APIMode2, []byte{0x8A, 0x00})
	in := append([]byte{0x7E, 0x00, 0x7D}, good...) // escape cut by a new frame
	d := NewXBeeDecoder(APIMode2, 0)
	if f := decodeAll(d, in); len(f) != 1 {
		t.Fatalf("%x", f)
	}
	if d.Stats().Truncated != 1 {
		t.Errorf("%+v", d.Stats())
	}
	d.Reset()
}

func TestSLIPDecoderErrors(t *testing.T) {
	d := NewSLIPDecoder(4)
	var got [][]byte
	emit := func(f []byte) { got = append(got, append([]byte(nil), f...)) }
	d.Feed([]byte{0xC0, 0xC0, 1, 2, 0xC0}, emit) // empty frame skipped
	d.Feed([]byte{1, 0xDB, 0x01, 2, 0xC0}, emit) // bad escape
	d.Feed([]byte{1, 2, 3, 4, 5, 0xC0}, emit)    // oversize
	d.Feed([]byte{9, 0xDB, 0xC0}, emit)          // escape then END
	d.Feed([]byte{0xDB, 0xDC, 0xDB}, emit)       // split escape
	d.Feed([]byte{0xDD, 0xC0}, emit)             // ... completed
	if len(got) != 2 || !bytes.Equal(got[0], []byte{1, 2}) || !bytes.Equal(got[1], []byte{0xC0, 0xDB}) {
		t.Fatalf("%x", got)
	}
	st := d.Stats()
	if st.BadEscape != 2 || st.Oversize != 1 || st.Frames != 2 {
		t.Errorf("%+v", st)
	}
}

func TestCOBSDecoderErrors(t *testing.T) {
	d := NewCOBSDecoder(8)
	var got [][]byte
	emit := func(f []byte) { got = append(got, append([]byte(nil), f...)) }
	d.Feed([]byte{0, 0}, emit)                      // empty frames
	d.Feed([]byte{5, 1, 2, 0}, emit)                // block overruns
	d.Feed(AppendCOBS(nil, make([]byte, 20)), emit) // oversize
	d.Feed([]byte{3, 1}, emit)                      // split ...
	d.Feed([]byte{2, 2, 3, 0}, emit)                // ... frame
	if len(got) != 1 || !bytes.Equal(got[0], []byte{1, 2, 0, 3}) {
		t.Fatalf("%x", got)
	}
	st := d.Stats()
	if st.BadEscape != 1 || st.Oversize != 1 {
		t.Errorf("%+v", st)
	}
	if _, err := DecodeCOBS(nil, []byte{2, 0}); err == nil {
		t.Error("zero inside block accepted")
	}
}

func TestCOBSLongRuns(t *testing.T) {
	for _, n := range []int{0, 1, 253, 254, 255, 508, 509, 600} {
		in := make([]byte, n)
		for i := range in {
			in[i] = byte(i%255) + 1
		}
		if n > 3 {
			in[n/2] = 0
		}
		enc := AppendCOBS(nil, in)
		if bytes.IndexByte(enc[:len(enc)-1], 0) >= 0 {
			t.Fatalf("n=%d: zero inside encoding", n)
		}
		if max := n + n/254 + 2; len(enc) > max {
			t.Errorf("n=%d: %d encoded bytes > %d", n, len(enc), max)
		}
		out, err := DecodeCOBS(nil, enc[:len(enc)-1])
		if err != nil || !bytes.Equal(out, in) {
			t.Errorf("n=%d: round trip %v", n, err)
		}
	}
	// The canonical encoding of 254 non-zero bytes is FF + data + 00.
	in := bytes.Repeat([]byte{7}, 254)
	if enc := AppendCOBS(nil, in); len(enc) != 256 || enc[0] != 0xFF {
		t.Errorf("254 bytes: % X", enc[:2])
	}
}

func TestLineDecoder(t *testing.T) {
	d := NewLineDecoder(8)
	var got []string
	emit := func(l []byte) { got = append(got, string(l)) }
	d.Feed([]byte("ok\r\n\r\nradio_"), emit)
	d.Feed([]byte("tx_ok\r\nbusy\n"), emit)
	d.Feed([]byte("x\r\n"), emit)
	if len(got) != 3 || got[0] != "ok" || got[1] != "busy" || got[2] != "x" {
		t.Fatalf("%q", got)
	}
	if d.Stats().Oversize != 1 {
		t.Errorf("%+v", d.Stats())
	}
}

func BenchmarkXBeeDecodeAP2(b *testing.B) {
	p := XBeeRxPacket{Src64: 0x0013A20040522BAA, Src16: 0x7D84, Data: make([]byte, 27)}
	frame, _ := AppendXBeeFrame(nil, APIMode2, p.AppendFrameData(nil))
	d := NewXBeeDecoder(APIMode2, 0)
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		d.Feed(frame, func([]byte) {})
	}
}

func BenchmarkCOBSRoundTrip(b *testing.B) {
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i % 7)
	}
	d := NewCOBSDecoder(0)
	enc := make([]byte, 0, 80)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		enc = AppendCOBS(enc[:0], msg)
		d.Feed(enc, func([]byte) {})
	}
}
