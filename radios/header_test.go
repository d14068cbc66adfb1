package radios

import (
	"errors"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	up := AppendHeader(nil, Header{Network: 7, Node: 0x0102})
	if len(up) != HeaderLen || up[0] != 0xD1 || up[1] != 7 || up[2] != 1 || up[3] != 2 {
		t.Fatalf("uplink % X", up)
	}
	down := AppendHeader(nil, Header{Downlink: true, Network: 7, Node: NodeBroadcast})
	if down[0] != 0xD9 {
		t.Fatalf("downlink % X", down)
	}
	frame := append(up, 0x02, 0x16) // PINGREQ
	node, payload, err := DecodeUplink(frame, 7)
	if err != nil || node != 0x0102 || len(payload) != 2 || payload[1] != 0x16 {
		t.Fatalf("%v %x %v", node, payload, err)
	}
	h, _, err := DecodeHeader(down)
	if err != nil || !h.Downlink || h.Node != NodeBroadcast {
		t.Fatalf("%+v %v", h, err)
	}
	if err := CheckHeader(h, 7, true); err != nil {
		t.Error(err)
	}
}

func TestHeaderRejects(t *testing.T) {
	up := AppendHeader(nil, Header{Network: 7, Node: 1})
	cases := []struct {
		name  string
		frame []byte
		net   uint8
		want  error
	}{
		{"short", up[:3], 7, ErrHeaderShort},
		{"other network", up, 8, ErrOtherNetwork},
		{"downlink heard by gateway", AppendHeader(nil, Header{Downlink: true, Network: 7, Node: 1}), 7, ErrWrongDirection},
		{"node zero", AppendHeader(nil, Header{Network: 7}), 7, ErrNodeID},
		{"uplink broadcast", AppendHeader(nil, Header{Network: 7, Node: NodeBroadcast}), 7, ErrNodeID},
		{"version 2", []byte{0xD2, 7, 0, 1}, 7, ErrHeaderVersion},
		{"version 0", []byte{0xD0, 7, 0, 1}, 7, ErrHeaderVersion},
		{"reserved bit", []byte{0xD5, 7, 0, 1}, 7, ErrHeaderMagic},
		{"other magic", []byte{0x51, 7, 0, 1}, 7, ErrHeaderMagic},
	}
	// Every LoRaWAN R1 MHDR (join request/accept, (un)confirmed up/down,
	// rejoin, proprietary) is recognised as LoRaWAN.
	for mtype := 0; mtype < 8; mtype++ {
		mhdr := byte(mtype << 5)
		cases = append(cases, struct {
			name  string
			frame []byte
			net   uint8
			want  error
		}{"lorawan", []byte{mhdr, 0x01, 0x02, 0x03, 0x04, 0x05}, 7, ErrLoRaWAN})
	}
	for _, c := range cases {
		_, _, err := DecodeUplink(c.frame, c.net)
		if !errors.Is(err, c.want) {
			t.Errorf("%s (% X): got %v, want %v", c.name, c.frame, err, c.want)
		}
	}
	// No header byte 0 we write is a LoRaWAN MHDR.
	for _, d := range []bool{false, true} {
		if IsLoRaWANMHDR(AppendHeader(nil, Header{Downlink: d, Node: 1})[0]) {
			t.Error("header collides with LoRaWAN")
		}
	}
}
