package radios

import (
	"bytes"
	"errors"
	"testing"
)

const pushJSON = `{"rxpk":[{"time":"2013-03-31T16:21:17.528002Z","tmst":3512348611,"chan":2,"rfch":0,"freq":866.349812,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"size":6,"data":"0QcBAgIW"},{"tmst":1,"chan":0,"rfch":0,"freq":868.1,"stat":1,"modu":"FSK","datr":50000,"rssi":-75,"size":1,"data":"AA=="}],"stat":{"time":"2014-01-12 08:59:28 GMT","lati":46.24,"long":3.2523,"alti":145,"rxnb":2,"rxok":2,"rxfw":2,"ackr":100.0,"dwnb":2,"txnb":2}}`

func TestGWMPPushData(t *testing.T) {
	eui := [8]byte{0xAA, 0x55, 0x5A, 0, 0, 0, 0, 1}
	p := GWMPPacket{Version: 2, Token: 0x1234, Type: GWMPPushData, EUI: eui, JSON: []byte(pushJSON)}
	raw := p.Append(nil)
	if !bytes.Equal(raw[:12], []byte{2, 0x12, 0x34, 0, 0xAA, 0x55, 0x5A, 0, 0, 0, 0, 1}) {
		t.Fatalf("% X", raw[:12])
	}
	back, err := ParseGWMP(raw)
	if err != nil || back.Token != 0x1234 || back.EUI != eui || string(back.JSON) != pushJSON {
		t.Fatalf("%+v %v", back, err)
	}
	d, err := DecodePushData(back.JSON)
	if err != nil || len(d.RXPK) != 2 || d.Stat == nil || d.Stat.RXNb != 2 {
		t.Fatalf("%+v %v", d, err)
	}
	r := d.RXPK[0]
	if r.Tmst != 3512348611 || r.RSSI != -35 || r.LSNR != 5.1 || r.DatR.LoRa != "SF7BW125" || r.CodR != "4/6" {
		t.Errorf("%+v", r)
	}
	sf, bw, err := r.DatR.SFBW()
	if err != nil || sf != 7 || bw != 125000 {
		t.Errorf("%d %d %v", sf, bw, err)
	}
	pl, err := r.Payload()
	if err != nil {
		t.Fatal(err)
	}
	if node, _, err := DecodeUplink(pl, 7); err != nil || node != 0x0102 {
		t.Errorf("header in rxpk: %v %v", node, err)
	}
	if d.RXPK[1].DatR.FSK != 50000 {
		t.Errorf("fsk datr %+v", d.RXPK[1].DatR)
	}
	if _, _, err := d.RXPK[1].DatR.SFBW(); err == nil {
		t.Error("fsk datr parsed as LoRa")
	}
	// Acknowledgement: header only.
	ack := GWMPPacket{Version: 2, Token: 0x1234, Type: GWMPPushAck}
	if got := ack.Append(nil); !bytes.Equal(got, []byte{2, 0x12, 0x34, 1}) {
		t.Errorf("push ack % X", got)
	}
}

func TestGWMPPullAndTx(t *testing.T) {
	pull := GWMPPacket{Version: 1, Token: 7, Type: GWMPPullData, EUI: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	back, err := ParseGWMP(pull.Append(nil))
	if err != nil || back.EUI != pull.EUI || back.JSON != nil {
		t.Fatalf("%+v %v", back, err)
	}
	tmst := uint32(1_000_000)
	tx := TXPK{Tmst: &tmst, Freq: 869.525, RFCh: 0, Powe: 14, Modu: "LORA", DatR: DataRate{LoRa: "SF9BW125"}, CodR: "4/5", Prea: 8}
	tx.SetPayload(AppendHeader(nil, Header{Downlink: true, Network: 7, Node: 0x0102}))
	body, err := EncodeJSON(PullResp{TXPK: tx})
	if err != nil {
		t.Fatal(err)
	}
	resp := GWMPPacket{Version: 2, Token: 9, Type: GWMPPullResp, JSON: body}
	back, err = ParseGWMP(resp.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	pr, err := DecodePullResp(back.JSON)
	if err != nil || pr.TXPK.Size != 4 || *pr.TXPK.Tmst != tmst || pr.TXPK.DatR.LoRa != "SF9BW125" {
		t.Fatalf("%+v %v", pr, err)
	}
	if pl, err := pr.TXPK.Payload(); err != nil || len(pl) != 4 {
		t.Error(err)
	}
	for body, ok := range map[string]bool{
		``:                                  true,
		`{"txpk_ack":{"error":"NONE"}}`:     true,
		`{"txpk_ack":{"error":"TOO_LATE"}}`: false,
		`{"txpk_ack":{"error":"COLLISION_PACKET"}}`: false,
	} {
		a, err := DecodeTxAck([]byte(body))
		if err != nil || a.OK() != ok {
			t.Errorf("%q: %+v %v", body, a, err)
		}
	}
}

func TestGWMPErrors(t *testing.T) {
	cases := []struct {
		raw  []byte
		want error
	}{
		{[]byte{2, 0, 0}, ErrGWMPShort},
		{[]byte{3, 0, 0, 0}, ErrGWMPVersion},
		{[]byte{2, 0, 0, 6}, ErrGWMPType},
		{[]byte{1, 0, 0, GWMPTxAck, 1, 2, 3, 4, 5, 6, 7, 8}, ErrGWMPType},
		{[]byte{2, 0, 0, GWMPPullData, 1, 2, 3}, ErrGWMPShort},
	}
	for _, c := range cases {
		if _, err := ParseGWMP(c.raw); !errors.Is(err, c.want) {
			t.Errorf("% X: %v", c.raw, err)
		}
	}
	if _, err := DecodePushData([]byte(`{"rxpk":[{"tmst":"x"}]}`)); !errors.Is(err, ErrGWMPJSON) {
		t.Error(err)
	}
	if _, err := DecodePullResp([]byte(`{`)); !errors.Is(err, ErrGWMPJSON) {
		t.Error(err)
	}
	if _, err := DecodeTxAck([]byte(`[1]`)); !errors.Is(err, ErrGWMPJSON) {
		t.Error(err)
	}
	r := RXPK{Size: 3, Data: "!!!"}
	if _, err := r.Payload(); !errors.Is(err, ErrGWMPData) {
		t.Error(err)
	}
	r = RXPK{Size: 2, Data: "AAAA"}
	if _, err := r.Payload(); !errors.Is(err, ErrGWMPData) {
		t.Error("size mismatch accepted")
	}
	r = RXPK{Size: 3, Data: "AAAA"}
	if _, err := r.Payload(); err != nil {
		t.Error(err)
	}
	r = RXPK{Size: 2, Data: "AAA"} // unpadded
	if _, err := r.Payload(); err != nil {
		t.Error(err)
	}
}
