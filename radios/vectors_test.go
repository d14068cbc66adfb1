package radios

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// hx decodes space-separated hex from PROTOCOL.md §6.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

const (
	vecConnackAP1   = "7E 00 11 10 01 00 13 A2 00 40 52 2B AA FF FE 00 00 03 05 00 CD"
	vecConnackAP2   = "7E 00 7D 31 10 01 00 7D 33 A2 00 40 52 2B AA FF FE 00 00 03 05 00 CD"
	vecAdvertise    = "7E 00 13 10 00 00 00 00 00 00 00 FF FF FF FE 00 00 05 00 01 03 84 67"
	vecRxConnectAP2 = "7E 00 1B 90 00 7D 33 A2 00 40 52 2B AA 7D 5D 84 01 0F 04 04 01 00 3C 73 65 6E 73 6F 72 2D 30 31 D5"
	vecLLTxConnack  = "7E 00 06 05 40 03 05 00 B2"
	vecLLRxConnect  = "7E 00 16 05 FF C4 00 07 40 0F 04 04 01 00 3C 73 65 6E 73 6F 72 2D 30 31 74"
	vecQoSm1        = "0B 0C 62 74 31 00 00 32 31 2E 35"
	vecConnect      = "0F 04 04 01 00 3C 73 65 6E 73 6F 72 2D 30 31"
)

func decodeAll(d FrameDecoder, in []byte) [][]byte {
	var out [][]byte
	d.Feed(in, func(f []byte) { out = append(out, append([]byte(nil), f...)) })
	return out
}

func TestXBeeTxRequestVectors(t *testing.T) {
	req := XBeeTxRequest{FrameID: 1, Dest64: 0x0013A20040522BAA, Dest16: XBeeUnknown16, Data: hx(t, "03 05 00")}
	fd := req.AppendFrameData(nil)
	for _, tc := range []struct {
		mode APIMode
		want string
	}{{APIMode1, vecConnackAP1}, {APIMode2, vecConnackAP2}} {
		got, err := AppendXBeeFrame(nil, tc.mode, fd)
		if err != nil || !bytes.Equal(got, hx(t, tc.want)) {
			t.Errorf("AP=%d: got % X, %v; want %s", tc.mode, got, err, tc.want)
		}
		frames := decodeAll(NewXBeeDecoder(tc.mode, 0), got)
		if len(frames) != 1 || !bytes.Equal(frames[0], fd) {
			t.Fatalf("AP=%d decode: %x", tc.mode, frames)
		}
		back, err := ParseXBeeTxRequest(frames[0])
		if err != nil || back.FrameID != 1 || back.Dest64 != req.Dest64 || back.Dest16 != 0xFFFE || !bytes.Equal(back.Data, req.Data) {
			t.Errorf("parse: %+v %v", back, err)
		}
	}
	adv := XBeeTxRequest{Dest64: XBeeBroadcast64, Dest16: XBeeUnknown16, Data: hx(t, "05 00 01 03 84")}
	got, _ := AppendXBeeFrame(nil, APIMode1, adv.AppendFrameData(nil))
	if !bytes.Equal(got, hx(t, vecAdvertise)) {
		t.Errorf("advertise: % X", got)
	}
	// In AP=2 only the length 0x13 needs escaping.
	got2, _ := AppendXBeeFrame(nil, APIMode2, adv.AppendFrameData(nil))
	want2 := append(hx(t, "7E 00 7D 33"), hx(t, vecAdvertise)[3:]...)
	if !bytes.Equal(got2, want2) {
		t.Errorf("advertise AP=2: % X", got2)
	}
	if f := decodeAll(NewXBeeDecoder(APIMode2, 0), got2); len(f) != 1 || !bytes.Equal(f[0], adv.AppendFrameData(nil)) {
		t.Errorf("advertise AP=2 decode %x", f)
	}
}

func TestXBeeReceiveVector(t *testing.T) {
	frames := decodeAll(NewXBeeDecoder(APIMode2, 0), hx(t, vecRxConnectAP2))
	if len(frames) != 1 {
		t.Fatalf("frames: %d", len(frames))
	}
	p, err := ParseXBeeRxPacket(frames[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.Src64 != 0x0013A20040522BAA || p.Src16 != 0x7D84 || p.Options != 0x01 || p.Broadcast() {
		t.Errorf("rx packet %+v", p)
	}
	if !bytes.Equal(p.Data, hx(t, vecConnect)) {
		t.Errorf("data % X", p.Data)
	}
	// Round trip: re-encoding gives the vector.
	enc, _ := AppendXBeeFrame(nil, APIMode2, p.AppendFrameData(nil))
	if !bytes.Equal(enc, hx(t, vecRxConnectAP2)) {
		t.Errorf("re-encode % X", enc)
	}
	if XBeeChecksum(frames[0]) != 0xD5 {
		t.Errorf("checksum")
	}
}

func TestXBeeTxStatus(t *testing.T) {
	s := XBeeTxStatus{FrameID: 9, Dest16: 0x7D84, Retries: 2, Delivery: XBeeDeliveryRouteNotFound}
	fd := s.AppendFrameData(nil)
	back, err := ParseXBeeTxStatus(fd)
	if err != nil || back != s || back.OK() {
		t.Fatalf("%+v %v", back, err)
	}
	if _, err := ParseXBeeTxStatus(fd[:6]); err == nil {
		t.Error("short status accepted")
	}
	if _, err := ParseXBeeTxStatus(hx(t, "90 00 00 00 00 00 00")); err == nil {
		t.Error("wrong type accepted")
	}
	if XBeeDeliveryText(0x25) != "route not found" || !strings.Contains(XBeeDeliveryText(0x99), "0x99") {
		t.Error("delivery text")
	}
}

func TestLoRaLinkVectors(t *testing.T) {
	got, err := AppendLoRaLinkTx(nil, LoRaLinkTx{Dest: 5, Type: LoRaLinkMQTTSN, Payload: hx(t, "03 05 00")})
	if err != nil || !bytes.Equal(got, hx(t, vecLLTxConnack)) {
		t.Fatalf("tx: % X %v", got, err)
	}
	frames := decodeAll(NewLoRaLinkDecoder(0), got)
	if len(frames) != 1 {
		t.Fatalf("tx decode %d", len(frames))
	}
	tx, err := ParseLoRaLinkTx(frames[0])
	if err != nil || tx.Dest != 5 || tx.Type != 0x40 || !bytes.Equal(tx.Payload, hx(t, "03 05 00")) {
		t.Errorf("tx parse %+v %v", tx, err)
	}

	rx := LoRaLinkRx{Src: 5, RSSI: -60, SNR: 7, Type: LoRaLinkMQTTSN, Payload: hx(t, vecConnect)}
	got, _ = AppendLoRaLinkRx(nil, rx)
	if !bytes.Equal(got, hx(t, vecLLRxConnect)) {
		t.Fatalf("rx: % X", got)
	}
	frames = decodeAll(NewLoRaLinkDecoder(0), hx(t, vecLLRxConnect))
	if len(frames) != 1 {
		t.Fatalf("rx decode %d", len(frames))
	}
	back, err := ParseLoRaLinkRx(frames[0])
	if err != nil || back.Src != 5 || back.RSSI != -60 || back.SNR != 7 || !bytes.Equal(back.Payload, rx.Payload) {
		t.Errorf("rx parse %+v %v", back, err)
	}
	if _, err := ParseLoRaLinkRx(frames[0][:5]); err == nil {
		t.Error("short rx accepted")
	}
}

func TestLoRaLinkEscapesEverything(t *testing.T) {
	// A payload of every special byte, with RSSI/SNR needing escapes too.
	rx := LoRaLinkRx{Src: 0x7E, RSSI: 0x117D, SNR: 0x137E, Type: LoRaLinkMQTTSN, Payload: []byte{0x7E, 0x7D, 0x11, 0x13, 0xC0, 0xDB, 0x0D, 0}}
	enc, _ := AppendLoRaLinkRx(nil, rx)
	if bytes.IndexByte(enc[1:], 0x7E) >= 0 {
		t.Fatalf("unescaped 0x7E in % X", enc)
	}
	frames := decodeAll(NewLoRaLinkDecoder(0), enc)
	if len(frames) != 1 {
		t.Fatal("no frame")
	}
	back, _ := ParseLoRaLinkRx(frames[0])
	if back.Src != rx.Src || back.RSSI != rx.RSSI || back.SNR != rx.SNR || !bytes.Equal(back.Payload, rx.Payload) {
		t.Errorf("%+v", back)
	}
}

func TestSLIPCOBSVectors(t *testing.T) {
	msg := hx(t, vecQoSm1)
	if got := AppendSLIP(nil, msg); !bytes.Equal(got, append(append([]byte{0xC0}, msg...), 0xC0)) {
		t.Errorf("slip % X", got)
	}
	if got := AppendCOBS(nil, msg); !bytes.Equal(got, hx(t, "06 0B 0C 62 74 31 01 05 32 31 2E 35 00")) {
		t.Errorf("cobs % X", got)
	}
	edge := hx(t, "05 C0 DB 00 7E")
	if got := AppendSLIP(nil, edge); !bytes.Equal(got, hx(t, "C0 05 DB DC DB DD 00 7E C0")) {
		t.Errorf("slip edge % X", got)
	}
	if got := AppendCOBS(nil, edge); !bytes.Equal(got, hx(t, "04 05 C0 DB 02 7E 00")) {
		t.Errorf("cobs edge % X", got)
	}
	for _, in := range [][]byte{msg, edge} {
		if f := decodeAll(NewSLIPDecoder(0), AppendSLIP(nil, in)); len(f) != 1 || !bytes.Equal(f[0], in) {
			t.Errorf("slip round trip %x", f)
		}
		if f := decodeAll(NewCOBSDecoder(0), AppendCOBS(nil, in)); len(f) != 1 || !bytes.Equal(f[0], in) {
			t.Errorf("cobs round trip %x", f)
		}
	}
}
