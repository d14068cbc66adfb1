package radios

import (
	"bytes"
	"testing"
)

// Seeds live in testdata/fuzz/<FuzzName>/ and run in every go test.

func FuzzXBeeDecoder(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte, ap2 bool) {
		mode := APIMode1
		if ap2 {
			mode = APIMode2
		}
		d := NewXBeeDecoder(mode, 300)
		d.Feed(in, func(fd []byte) {
			if len(fd) == 0 || len(fd) > 300 {
				t.Fatalf("frame of %d bytes", len(fd))
			}
			_, _ = ParseXBeeRxPacket(fd)
			_, _ = ParseXBeeTxStatus(fd)
			_, _ = ParseXBeeTxRequest(fd)
			enc, err := AppendXBeeFrame(nil, mode, fd)
			if err != nil {
				t.Fatal(err)
			}
			var back [][]byte
			NewXBeeDecoder(mode, 300).Feed(enc, func(b []byte) { back = append(back, append([]byte(nil), b...)) })
			if len(back) != 1 || !bytes.Equal(back[0], fd) {
				t.Fatalf("re-encode mismatch % X", fd)
			}
		})
	})
}

func FuzzLoRaLinkDecoder(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewLoRaLinkDecoder(300)
		d.Feed(in, func(fd []byte) {
			if rx, err := ParseLoRaLinkRx(fd); err == nil {
				enc, err := AppendLoRaLinkRx(nil, rx)
				if err != nil {
					t.Fatal(err)
				}
				var n int
				NewLoRaLinkDecoder(300).Feed(enc, func(b []byte) {
					n++
					if !bytes.Equal(b, fd) {
						t.Fatalf("round trip % X != % X", b, fd)
					}
				})
				if n != 1 {
					t.Fatal("re-encoded frame not decoded")
				}
			}
			_, _ = ParseLoRaLinkTx(fd)
		})
	})
}

func FuzzSLIP(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewSLIPDecoder(128)
		d.Feed(in, func(fr []byte) {
			if len(fr) == 0 || len(fr) > 128 {
				t.Fatalf("frame of %d bytes", len(fr))
			}
		})
		if len(in) == 0 || len(in) > 128 {
			return
		}
		var got [][]byte
		NewSLIPDecoder(128).Feed(AppendSLIP(nil, in), func(fr []byte) { got = append(got, append([]byte(nil), fr...)) })
		if len(got) != 1 || !bytes.Equal(got[0], in) {
			t.Fatalf("round trip % X", in)
		}
	})
}

func FuzzCOBS(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewCOBSDecoder(600)
		d.Feed(in, func(fr []byte) {
			if len(fr) > 600 {
				t.Fatalf("frame of %d bytes", len(fr))
			}
		})
		_, _ = DecodeCOBS(nil, in)
		if len(in) == 0 || len(in) > 600 {
			return
		}
		enc := AppendCOBS(nil, in)
		if bytes.IndexByte(enc[:len(enc)-1], 0) >= 0 {
			t.Fatal("zero inside encoding")
		}
		var got [][]byte
		NewCOBSDecoder(600).Feed(enc, func(fr []byte) { got = append(got, append([]byte(nil), fr...)) })
		if len(got) != 1 || !bytes.Equal(got[0], in) {
			t.Fatalf("round trip % X", in)
		}
	})
}

func FuzzModemLines(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte, rak bool) {
		kind := ModemRN2483
		if rak {
			kind = ModemRAK
		}
		buf := make([]byte, 0, 64)
		_, _ = ParseRN2483Line(in, buf)
		_, _ = ParseRAKLine(in, buf)
		m, err := NewModem(ModemConfig{Kind: kind, LoRa: testLoRa, FrequencyHz: 868_100_000, MaxFrame: 64})
		if err != nil {
			t.Fatal(err)
		}
		m.Start()
		lines := NewLineDecoder(256)
		lines.Feed(in, func(l []byte) {
			out, _ := m.Line(l)
			if len(out.Rx) > 64 {
				t.Fatalf("rx of %d bytes", len(out.Rx))
			}
			if m.Ready() {
				_, _ = m.Send([]byte{1, 2, 3})
			}
			if m.State() == StateFailed {
				m.Start()
			}
		})
		m.Timeout()
	})
}

func FuzzHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		h, payload, err := DecodeHeader(in)
		if err != nil {
			return
		}
		enc := AppendHeader(nil, h)
		if !bytes.Equal(enc, in[:HeaderLen]) || len(payload) != len(in)-HeaderLen {
			t.Fatalf("re-encode % X != % X", enc, in[:HeaderLen])
		}
		if IsLoRaWANMHDR(in[0]) {
			t.Fatal("LoRaWAN MHDR accepted")
		}
	})
}

func FuzzGWMP(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParseGWMP(in)
		if err != nil {
			_, _ = DecodePushData(in)
			_, _ = DecodePullResp(in)
			_, _ = DecodeTxAck(in)
			return
		}
		// Trailing bytes after header-only packets are ignored.
		if back := p.Append(nil); len(back) > len(in) || !bytes.Equal(back, in[:len(back)]) {
			t.Fatalf("re-encode % X != % X", back, in)
		}
		switch p.Type {
		case GWMPPushData:
			if d, err := DecodePushData(p.JSON); err == nil {
				for i := range d.RXPK {
					_, _ = d.RXPK[i].Payload()
					_, _, _ = d.RXPK[i].DatR.SFBW()
				}
			}
		case GWMPPullResp:
			if r, err := DecodePullResp(p.JSON); err == nil {
				_, _ = r.TXPK.Payload()
			}
		case GWMPTxAck:
			if a, err := DecodeTxAck(p.JSON); err == nil {
				_ = a.OK()
			}
		}
	})
}
