package serial

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

func hx(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// binaryNasties are the bytes serial stacks like to eat or translate.
var binaryNasties = []byte{0x0D, 0x0A, 0x11, 0x13, 0x7D, 0x7E, 0xC0, 0xDB, 0x00, 0xFF, 0x03, 0x1A}

func TestXBeeLinkVectors(t *testing.T) {
	for _, ap := range []int{1, 2} {
		t.Run("AP"+string(rune('0'+ap)), func(t *testing.T) {
			path := devPath(t, "xbee")
			dev := newFakeDev(t, path)
			l, ev := openLink(t, Config{Kind: KindXBee, Device: path, APIMode: ap, Baud: 38400})
			ev.waitUp(t)
			rx := reader(t, l)
			mode := radios.APIMode(ap)
			dec := radios.NewXBeeDecoder(mode, 0)
			var pending [][]byte

			// Uplink CONNECT (§6 vector in AP=2; re-framed for AP=1).
			connect := hx(t, "0F 04 04 01 00 3C 73 65 6E 73 6F 72 2D 30 31")
			in := radios.XBeeRxPacket{Src64: 0x0013A20040522BAA, Src16: 0x7D84, Options: 1, Data: connect}
			raw, _ := radios.AppendXBeeFrame(nil, mode, in.AppendFrameData(nil))
			if ap == 2 && !bytes.Equal(raw, hx(t, "7E 00 1B 90 00 7D 33 A2 00 40 52 2B AA 7D 5D 84 01 0F 04 04 01 00 3C 73 65 6E 73 6F 72 2D 30 31 D5")) {
				t.Fatalf("vector % X", raw)
			}
			dev.write(raw)
			got := recv(t, rx)
			if !bytes.Equal(got.data, connect) || got.from != XBeeAddr(0x0013A20040522BAA) {
				t.Fatalf("uplink %x from %s", got.data, got.from)
			}

			// Downlink CONNACK: the §6 vector exactly (frame ID 1).
			if err := l.WriteTo(hx(t, "03 05 00"), got.from); err != nil {
				t.Fatal(err)
			}
			want := hx(t, "7E 00 11 10 01 00 13 A2 00 40 52 2B AA FF FE 00 00 03 05 00 CD")
			if ap == 2 {
				want = hx(t, "7E 00 7D 31 10 01 00 7D 33 A2 00 40 52 2B AA FF FE 00 00 03 05 00 CD")
			}
			fd := dev.next(dec, &pending)
			wire, _ := radios.AppendXBeeFrame(nil, mode, fd)
			if !bytes.Equal(wire, want) {
				t.Fatalf("downlink % X\nwant      % X", wire, want)
			}

			// Broadcast ADVERTISE: the §6 vector (frame ID 0).
			if err := l.Broadcast(hx(t, "05 00 01 03 84")); err != nil {
				t.Fatal(err)
			}
			fd = dev.next(dec, &pending)
			if !bytes.Equal(fd, hx(t, "10 00 00 00 00 00 00 00 FF FF FF FE 00 00 05 00 01 03 84")) {
				t.Fatalf("broadcast % X", fd)
			}

			// Binary safety both ways.
			in.Data = binaryNasties
			raw, _ = radios.AppendXBeeFrame(nil, mode, in.AppendFrameData(nil))
			dev.write(raw)
			if got := recv(t, rx); !bytes.Equal(got.data, binaryNasties) {
				t.Fatalf("binary uplink % X", got.data)
			}
			if err := l.WriteTo(binaryNasties, got.from); err != nil {
				t.Fatal(err)
			}
			req, err := radios.ParseXBeeTxRequest(dev.next(dec, &pending))
			if err != nil || !bytes.Equal(req.Data, binaryNasties) || req.FrameID != 2 {
				t.Fatalf("binary downlink %+v %v", req, err)
			}

			// A failed Transmit Status is reported against the destination.
			st := radios.XBeeTxStatus{FrameID: 2, Dest16: 0x7D84, Delivery: radios.XBeeDeliveryRouteNotFound}
			raw, _ = radios.AppendXBeeFrame(nil, mode, st.AppendFrameData(nil))
			ok := radios.XBeeTxStatus{FrameID: 1}
			okRaw, _ := radios.AppendXBeeFrame(nil, mode, ok.AppendFrameData(nil))
			dev.write(append(okRaw, raw...))
			f := failure(t, l)
			if f.To != got.from || !errors.Is(f.Err, ErrDeliveryFailed) || !strings.Contains(f.Err.Error(), "route not found") {
				t.Fatalf("failure %+v", f)
			}
			if s := l.Stats(); s.TxFailures != 1 || s.TxFrames != 3 || s.RxFrames != 2 {
				t.Errorf("stats %+v", s)
			}

			// Limits.
			if l.MTU() != 84 || l.Name() != "xbee" {
				t.Error(l.MTU(), l.Name())
			}
			if err := l.WriteTo(make([]byte, 85), got.from); !errors.Is(err, transport.ErrTooLarge) {
				t.Error(err)
			}
			if err := l.WriteTo([]byte{1}, LoRaLinkAddr(1)); err == nil {
				t.Error("short address accepted")
			}
		})
	}
}

func TestXBeeGarbageAndShortRead(t *testing.T) {
	path := devPath(t, "xbee")
	dev := newFakeDev(t, path)
	l, ev := openLink(t, Config{Kind: KindXBee, Device: path, PayloadLimit: 100})
	ev.waitUp(t)
	rx := reader(t, l)
	good := radios.XBeeRxPacket{Src64: 1, Src16: 2, Data: []byte{2, 0x16}}
	raw, _ := radios.AppendXBeeFrame(nil, radios.APIMode2, good.AppendFrameData(nil))
	bad := append([]byte(nil), raw...)
	bad[len(bad)-1]++
	dev.write(append(append([]byte{0x55, 0x7E, 0x00}, bad...), raw...))
	if got := recv(t, rx); !bytes.Equal(got.data, []byte{2, 0x16}) {
		t.Fatal(got)
	}
	st := l.Stats()
	if st.Decoder.BadChecksum+st.Decoder.Truncated == 0 || l.MTU() != 100 {
		t.Errorf("%+v", st)
	}
}
