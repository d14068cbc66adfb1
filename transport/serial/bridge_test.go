package serial

import (
	"bytes"
	"testing"

	"github.com/sngate/sngate/radios"
)

func TestBridgeSLIPAndCOBS(t *testing.T) {
	qosm1 := hx(t, "0B 0C 62 74 31 00 00 32 31 2E 35")
	encap := append(hx(t, "05 FE 01 00 2A"), hx(t, "0F 04 04 01 00 3C 73 65 6E 73 6F 72 2D 30 31")...)
	for _, kind := range []Kind{KindSLIP, KindCOBS} {
		t.Run(string(kind), func(t *testing.T) {
			path := devPath(t, string(kind))
			dev := newFakeDev(t, path)
			l, ev := openLink(t, Config{Kind: kind, Device: path})
			ev.waitUp(t)
			rx := reader(t, l)
			enc := func(b []byte) []byte {
				if kind == KindCOBS {
					return radios.AppendCOBS(nil, b)
				}
				return radios.AppendSLIP(nil, b)
			}
			var dec radios.FrameDecoder = radios.NewSLIPDecoder(0)
			if kind == KindCOBS {
				dec = radios.NewCOBSDecoder(0)
			}
			// §6 vectors on the wire, a forwarder frame passes through as is.
			if kind == KindCOBS && !bytes.Equal(enc(qosm1), hx(t, "06 0B 0C 62 74 31 01 05 32 31 2E 35 00")) {
				t.Fatal("cobs vector")
			}
			edge := hx(t, "05 C0 DB 00 7E")
			for _, msg := range [][]byte{qosm1, encap, edge, binaryNasties} {
				dev.write(enc(msg))
				got := recv(t, rx)
				if got.from != BridgeAddr() || !bytes.Equal(got.data, msg) {
					t.Fatalf("% X from %s", got.data, got.from)
				}
			}
			var pending [][]byte
			for _, msg := range [][]byte{edge, binaryNasties, encap} {
				if err := l.WriteTo(msg, BridgeAddr()); err != nil {
					t.Fatal(err)
				}
				if f := dev.next(dec, &pending); !bytes.Equal(f, msg) {
					t.Fatalf("downlink % X", f)
				}
			}
			if err := l.Broadcast(qosm1); err != nil {
				t.Fatal(err)
			}
			if f := dev.next(dec, &pending); !bytes.Equal(f, qosm1) {
				t.Fatal("broadcast")
			}
			if err := l.WriteTo(qosm1, XBeeAddr(1)); err == nil {
				t.Error("foreign address accepted")
			}
			if l.MTU() != 255 || l.Stats().Decoder.Frames != 4 {
				t.Errorf("mtu %d stats %+v", l.MTU(), l.Stats())
			}
		})
	}
}
