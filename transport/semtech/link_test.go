package semtech

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/serial"
)

var pingreq = []byte{0x02, 0x16} // MQTT-SN PINGREQ

// A captured-shape PUSH_DATA (rxpk and stat) is acknowledged, and its
// frame comes out of ReadFrom from the node's address with its signal
// recorded.
func TestUplinkCapturedSample(t *testing.T) {
	l, _ := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 2)
	msg := []byte("\x1c\x04\x04\x01\x00\x3csensor-0102-abcdef1234") // CONNECT, 28 bytes
	phy := uplink(0x0102, msg)
	if len(phy) != 32 {
		t.Fatalf("sample payload is %d bytes", len(phy))
	}
	f.pushJSON(`{"rxpk":[{"tmst":3512348611,"chan":2,"rfch":0,"freq":866.349812,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"size":32,"data":"` +
		base64.StdEncoding.EncodeToString(phy) + `"}],"stat":{"time":"2025-06-01 12:00:00 GMT","rxnb":2,"rxok":2,"rxfw":2,"ackr":100.0,"dwnb":2,"txnb":2}}`)
	got, from := read(t, l)
	if !bytes.Equal(got, msg) {
		t.Fatalf("frame % x, want % x", got, msg)
	}
	if from != NodeAddr(0x0102) || from != serial.NodeAddr(0x0102) || from.String() != "0102" {
		t.Fatalf("from %v", from)
	}
	ni, ok := l.Node(from)
	if !ok || ni.RSSI != -35 || ni.SNR != 5.1 || ni.FreqHz != 866349812 || ni.DataRate != "SF7BW125" || ni.CodeRate != "4/6" ||
		ni.Forwarder != "AA555A0000000001" || ni.Uplinks != 1 {
		t.Fatalf("node info %+v", ni)
	}
	st := l.Stats()
	if st.PushData != 1 || st.RxPackets != 1 || st.RxFrames != 1 {
		t.Fatalf("stats %+v", st)
	}
	fs := l.Forwarders()
	if len(fs) != 1 || fs[0].EUI != "AA555A0000000001" || fs[0].Uplinks != 1 || fs[0].PushAddr == "" || fs[0].PullAddr != "" {
		t.Fatalf("forwarders %+v", fs)
	}
}

// Acknowledgements echo the version and token, for v1 and v2.
func TestAcks(t *testing.T) {
	l, _ := newTestLink(t, nil)
	for _, v := range []uint8{1, 2} {
		f := newForwarder(t, l, "0000000000000001", v)
		f.pull() // checks PULL_ACK version and token
		f.push() // empty rxpk list: checks PUSH_ACK
		f.pushJSON(`{"stat":{"time":"2025-06-01 12:00:00 GMT","rxnb":0,"rxok":0,"rxfw":0,"ackr":0,"dwnb":0,"txnb":0}}`)
	}
	if st := l.Stats(); st.PullData != 2 || st.PushData != 4 {
		t.Fatalf("stats %+v", st)
	}
	if fs := l.Forwarders(); len(fs) != 1 || fs[0].Version != 2 || fs[0].PullAddr == "" {
		t.Fatalf("forwarders %+v", fs)
	}
}

// A downlink goes out in the node's window: tmst + RXDelay, the
// uplink's frequency, data rate and coding rate, configured ipol, power
// and RF chain; the counter wraps.
func TestDownlinkInWindow(t *testing.T) {
	l, _ := newTestLink(t, func(c *Config) { c.PowerDBm = 27; c.RFChain = 1 })
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	for _, tc := range []struct {
		tmst, want uint32
		freq       float64
		datr, codr string
	}{
		{3512348611, 3513348611, 866.349812, "SF7BW125", "4/6"},
		{4294000000, 32704, 868.1, "SF12BW125", "4/5"},
	} {
		f.push(rx{tmst: tc.tmst, freq: tc.freq, datr: tc.datr, codr: tc.codr, rssi: -90, lsnr: -3.5, data: uplink(0x0a0b, pingreq)})
		read(t, l)
		reply := []byte{0x02, 0x17}
		if err := l.WriteToPriority(reply, NodeAddr(0x0a0b), transport.PriorityAck); err != nil {
			t.Fatal(err)
		}
		r := f.resp()
		tx := r.txpk
		if tx.Tmst == nil || *tx.Tmst != tc.want || tx.Imme || tx.Freq != tc.freq || tx.DatR.LoRa != tc.datr || tx.CodR != tc.codr ||
			!tx.IPol || tx.Powe != 27 || tx.RFCh != 1 || tx.Modu != "LORA" || tx.NCRC || int(tx.Size) != len(r.payload) {
			t.Fatalf("txpk %+v (tmst %v)", tx, tx.Tmst)
		}
		if r.version != 2 || !bytes.Equal(r.payload, onAir(0x0a0b, reply)) {
			t.Fatalf("PULL_RESP v%d payload % x", r.version, r.payload)
		}
	}
	if st := l.Stats(); st.TxQueued != 2 || st.TxSent != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// NoIQInversion clears ipol.
func TestDownlinkNormalIQ(t *testing.T) {
	l, _ := newTestLink(t, func(c *Config) { c.NoIQInversion = true })
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	f.push(rx{tmst: 1000, data: uplink(1, pingreq)})
	read(t, l)
	if err := l.WriteTo([]byte{2, 0x17}, NodeAddr(1)); err != nil {
		t.Fatal(err)
	}
	if r := f.resp(); r.txpk.IPol {
		t.Fatalf("ipol set: %+v", r.txpk)
	}
}

// One frame per window: the rest waits, in order, for later uplinks;
// an identical frame is coalesced.
func TestOneFramePerWindow(t *testing.T) {
	l, _ := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	to := NodeAddr(0x0102)
	f.push(rx{tmst: 1_000_000, data: uplink(0x0102, pingreq)})
	read(t, l)
	frames := [][]byte{{3, 0x0c, 0x01}, {3, 0x0c, 0x02}, {2, 0x17}}
	for _, b := range frames {
		if err := l.WriteTo(b, to); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WriteTo([]byte{2, 0x17}, to); err != nil { // same bytes as the last
		t.Fatal(err)
	}
	if r := f.resp(); !bytes.Equal(r.payload, onAir(0x0102, frames[0])) {
		t.Fatalf("first window: % x", r.payload)
	}
	f.noResp()
	if ni, _ := l.Node(to); ni.Queued != 2 {
		t.Fatalf("queued %d", ni.Queued)
	}
	for i, b := range frames[1:] {
		tm := uint32(5_000_000 * (i + 2))
		f.push(rx{tmst: tm, data: uplink(0x0102, []byte{4, 0x0d, 0, byte(i)})}) // distinct uplinks
		read(t, l)
		r := f.resp()
		if !bytes.Equal(r.payload, onAir(0x0102, b)) || *r.txpk.Tmst != tm+1_000_000 {
			t.Fatalf("window %d: % x at %d", i+2, r.payload, *r.txpk.Tmst)
		}
		f.noResp()
	}
	if st := l.Stats(); st.TxCoalesced != 1 || st.TxSent != 3 || st.TxQueued != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// A frame handed over too close to the window waits for the next one.
func TestLateFrameWaitsForNextUplink(t *testing.T) {
	l, clk := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	f.push(rx{tmst: 100, data: uplink(9, pingreq)})
	read(t, l)
	clk.Advance(l.cfg.RXDelay - l.cfg.TxLead)
	if err := l.WriteTo([]byte{2, 0x17}, NodeAddr(9)); err != nil {
		t.Fatal(err)
	}
	f.noResp()
	clk.Advance(time.Minute)
	f.push(rx{tmst: 60_000_100, data: uplink(9, pingreq)})
	read(t, l)
	if r := f.resp(); *r.txpk.Tmst != 61_000_100 {
		t.Fatalf("tmst %d", *r.txpk.Tmst)
	}
}

// TX_ACK errors become TxFailures for the node and are counted; success
// and unknown tokens are counted too.
func TestTxAckErrors(t *testing.T) {
	l, clk := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	to := NodeAddr(0x0042)
	codes := []struct {
		code string
		want error
	}{
		{"TOO_LATE", ErrTooLate},
		{"TOO_EARLY", ErrTooEarly},
		{"COLLISION_PACKET", ErrCollisionPacket},
		{"COLLISION_BEACON", ErrCollisionBeacon},
		{"TX_FREQ", ErrTxFreq},
		{"TX_POWER", ErrTxPower},
		{"GPS_UNLOCKED", ErrGPSUnlocked},
		{"SOMETHING_NEW", ErrTxAck},
		{"NONE", nil},
		{"", nil},
	}
	for i, tc := range codes {
		clk.Advance(10 * time.Second)
		f.push(rx{tmst: uint32(i) * 10_000_000, data: uplink(0x0042, []byte{4, 0x0d, 0, byte(i)})})
		read(t, l)
		if err := l.WriteTo([]byte{2, 0x17}, to); err != nil {
			t.Fatal(err)
		}
		r := f.resp()
		f.txAck(r.token, tc.code)
		if tc.want == nil {
			continue
		}
		fl := failure(t, l)
		if fl.To != to || !errors.Is(fl.Err, tc.want) || !errors.Is(fl.Err, ErrTxAck) {
			t.Fatalf("%s: failure %+v", tc.code, fl)
		}
	}
	f.txAck(0xdead, "TOO_LATE") // no such downlink
	f.pull()
	st := l.Stats()
	if st.TxAckTooLate != 1 || st.TxAckTooEarly != 1 || st.TxAckCollisionPacket != 1 || st.TxAckCollisionBeacon != 1 ||
		st.TxAckTxFreq != 1 || st.TxAckTxPower != 1 || st.TxAckGPSUnlocked != 1 || st.TxAckOther != 1 ||
		st.TxAckCongestion != 4 || st.TxAcked != 2 || st.TxAckUnknown != 1 || st.TxFailures != 8 || st.TxAcks != 11 {
		t.Fatalf("stats %+v", st)
	}
	select {
	case fl := <-l.TxFailures():
		t.Fatalf("extra failure %+v", fl)
	default:
	}
}

// A version 1 forwarder gets version 1 PULL_RESPs and no TX_ACK is
// awaited.
func TestVersion1Forwarder(t *testing.T) {
	l, _ := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 1)
	f.pull()
	f.push(rx{tmst: 5, data: uplink(3, pingreq)})
	read(t, l)
	if err := l.WriteTo([]byte{2, 0x17}, NodeAddr(3)); err != nil {
		t.Fatal(err)
	}
	if r := f.resp(); r.version != 1 || *r.txpk.Tmst != 1_000_005 {
		t.Fatalf("PULL_RESP %+v", r)
	}
	l.mu.Lock()
	n := len(l.inflight)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d downlinks await a TX_ACK from a v1 forwarder", n)
	}
}

// An uplink heard by two forwarders is delivered once, and the reply
// goes through the one with the best SNR, timed on its own counter.
func TestDuplicateUplinkBestSNR(t *testing.T) {
	l, clk := newTestLink(t, nil)
	weak := newForwarder(t, l, "AA555A0000000001", 2)
	strong := newForwarder(t, l, "AA555A0000000002", 2)
	weak.pull()
	strong.pull()
	phy := uplink(0x0707, []byte{4, 0x0d, 0x12, 0x34}) // SEARCHGW-sized frame
	weak.push(rx{tmst: 111_000_000, rssi: -118, lsnr: -12.5, data: phy})
	strong.push(rx{tmst: 222_000_000, rssi: -70, lsnr: 7.25, data: phy})
	got, from := read(t, l)
	if !bytes.Equal(got, phy[4:]) || from != NodeAddr(0x0707) {
		t.Fatalf("frame % x from %v", got, from)
	}
	if err := l.WriteTo([]byte{3, 0x02, 0x01}, from); err != nil {
		t.Fatal(err)
	}
	weak.noResp()
	strong.noResp() // the window opens when the dedup window ends
	clk.Advance(l.cfg.DedupWindow)
	r := strong.resp()
	if *r.txpk.Tmst != 223_000_000 {
		t.Fatalf("tmst %d", *r.txpk.Tmst)
	}
	weak.noResp()
	st := l.Stats()
	if st.RxDuplicates != 1 || st.RxFrames != 1 || st.TxSent != 1 {
		t.Fatalf("stats %+v", st)
	}
	if ni, _ := l.Node(from); ni.Forwarder != "AA555A0000000002" || ni.SNR != 7.25 || ni.RSSI != -70 {
		t.Fatalf("node %+v", ni)
	}
	// After the dedup window the same bytes are a new uplink.
	weak.push(rx{tmst: 300_000_000, lsnr: 1, data: phy})
	if got, _ := read(t, l); !bytes.Equal(got, phy[4:]) {
		t.Fatalf("frame % x", got)
	}
}

// When the best forwarder's transmitter is already booked for the
// window, the next best carries the frame.
func TestBusyTransmitterUsesNextForwarder(t *testing.T) {
	l, clk := newTestLink(t, nil)
	a := newForwarder(t, l, "AA555A0000000001", 2)
	b := newForwarder(t, l, "AA555A0000000002", 2)
	a.pull()
	b.pull()
	// Node 1 only heard by a; node 2 heard by a (best) and b, at the
	// same moment.
	a.push(rx{tmst: 10_000_000, lsnr: 9, data: uplink(1, pingreq)}, rx{tmst: 10_000_500, lsnr: 9, data: uplink(2, pingreq)})
	b.push(rx{tmst: 70_000_500, lsnr: 1, data: uplink(2, pingreq)})
	read(t, l)
	read(t, l)
	for _, n := range []uint16{1, 2} {
		if err := l.WriteTo([]byte{2, 0x17}, NodeAddr(n)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(l.cfg.DedupWindow)
	if r := a.resp(); *r.txpk.Tmst != 11_000_000 || !bytes.Equal(r.payload, onAir(1, []byte{2, 0x17})) {
		t.Fatalf("a: %d % x", *r.txpk.Tmst, r.payload)
	}
	if r := b.resp(); *r.txpk.Tmst != 71_000_500 || !bytes.Equal(r.payload, onAir(2, []byte{2, 0x17})) {
		t.Fatalf("b: %d % x", *r.txpk.Tmst, r.payload)
	}
	a.noResp()
}

// Malformed and foreign input is counted and dropped, never delivered.
func TestMalformedInput(t *testing.T) {
	l, _ := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pushJSON(`{"rxpk":[{"tmst":1,`)                                                                                                  // bad JSON
	f.pushJSON(`{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","size":4,"data":"%%%%"}]}`)      // bad base64
	f.pushJSON(`{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","size":9,"data":"0QcBAgIW"}]}`)  // size mismatch
	f.pushJSON(`{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF99BW125","codr":"4/5","size":6,"data":"0QcBAgIW"}]}`) // bad datr
	f.pushJSON(`{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","size":6,"data":"` + "\u0000" + `"}]}`)
	f.push(
		rx{tmst: 2, stat: -1, data: uplink(5, pingreq)},                                    // CRC bad
		rx{tmst: 3, data: append([]byte{0xD1, 9, 0, 5}, 2, 0x16)},                          // other network
		rx{tmst: 4, data: []byte{0x40, 1, 2, 3, 4, 0, 0, 0, 0x01, 0xaa, 0xbb, 0xcc, 0xdd}}, // LoRaWAN unconfirmed data up
		rx{tmst: 5, data: []byte{0x17, 7, 0, 5, 2, 0x16}},                                  // neither
		rx{tmst: 6, data: onAir(5, pingreq)},                                               // another gateway's downlink
		rx{tmst: 7, data: uplink(5, nil)},                                                  // header only
	)
	f.pushJSON(`{"rxpk":[{"tmst":8,"freq":868.1,"stat":1,"modu":"FSK","datr":50000,"size":6,"data":"` +
		base64.StdEncoding.EncodeToString(uplink(5, pingreq)) + `"}]}`)
	f.raw([]byte{3, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8})    // unknown version
	f.raw([]byte{2, 0})                                  // short
	f.raw([]byte{2, 0, 1, 0x09})                         // unknown type
	f.raw([]byte{2, 0, 1, radios.GWMPPushAck})           // server-to-forwarder type
	f.raw([]byte{2, 0, 1, radios.GWMPPushData, 1, 2, 3}) // EUI cut short
	f.raw(append([]byte{2, 0, 1, radios.GWMPTxAck}, make([]byte, 8)...))
	f.raw(append(append([]byte{2, 0, 1, radios.GWMPTxAck}, make([]byte, 8)...), '{'))
	f.pull()
	st := l.Stats()
	want := Stats{UnknownVersion: 1, BadPacket: 4, BadJSON: 3, BadData: 3, RxCRCBad: 1, RxOtherNetwork: 1, RxLoRaWAN: 1,
		RxBadHeader: 3, RxNotLoRa: 1}
	got := Stats{UnknownVersion: st.UnknownVersion, BadPacket: st.BadPacket, BadJSON: st.BadJSON, BadData: st.BadData,
		RxCRCBad: st.RxCRCBad, RxOtherNetwork: st.RxOtherNetwork, RxLoRaWAN: st.RxLoRaWAN, RxBadHeader: st.RxBadHeader, RxNotLoRa: st.RxNotLoRa}
	if got != want {
		t.Fatalf("stats\n got %+v\nwant %+v", got, want)
	}
	// The link still works, and nothing above was delivered.
	f.push(rx{tmst: 9, data: uplink(5, pingreq)})
	if got, from := read(t, l); !bytes.Equal(got, pingreq) || from != NodeAddr(5) {
		t.Fatalf("frame % x from %v", got, from)
	}
	if st := l.Stats(); st.RxFrames != 1 {
		t.Fatalf("delivered %d frames", st.RxFrames)
	}
}

// Only listed forwarders are served; the table is bounded.
func TestForwarderAllowListAndBound(t *testing.T) {
	l, _ := newTestLink(t, func(c *Config) {
		c.Forwarders = []string{"AA555A0000000001", "aa-55-5a-00-00-00-00-02", "AA555A0000000003"}
		c.MaxForwarders = 2
	})
	stranger := newForwarder(t, l, "0102030405060708", 2)
	stranger.send(stranger.down, radios.GWMPPacket{Version: 2, Token: 1, Type: radios.GWMPPullData, EUI: stranger.eui})
	for _, e := range []string{"AA555A0000000001", "AA555A0000000002", "AA555A0000000003"} {
		newForwarder(t, l, e, 2).pull()
	}
	st := l.Stats()
	if st.Refused != 1 || st.ForwardersEvicted != 1 || st.PullData != 3 {
		t.Fatalf("stats %+v", st)
	}
	if fs := l.Forwarders(); len(fs) != 2 || fs[1].EUI != "AA555A0000000003" {
		t.Fatalf("forwarders %+v", fs)
	}
	select {
	case p := <-stranger.pullAcks:
		t.Fatalf("stranger acknowledged: %+v", p)
	default:
	}
	if _, err := Listen(Config{Listen: "127.0.0.1:0", Forwarders: []string{"xyz"}}); err == nil {
		t.Fatal("bad EUI accepted")
	}
}

// An acknowledgement that missed its window is dropped at the node's
// next uplink; deliveries keep waiting.
func TestStaleAckSuperseded(t *testing.T) {
	l, _ := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	to := NodeAddr(0x0033)
	f.push(rx{tmst: 1_000_000, data: uplink(0x0033, pingreq)})
	read(t, l)
	pub1, pub2, pingresp := []byte{3, 0x0c, 1}, []byte{3, 0x0c, 2}, []byte{2, 0x17}
	if err := l.WriteToPriority(pub1, to, transport.PriorityDelivery); err != nil {
		t.Fatal(err)
	}
	f.resp()
	for _, w := range []struct {
		b []byte
		p transport.Priority
	}{{pub2, transport.PriorityDelivery}, {pingresp, transport.PriorityAck}} {
		if err := l.WriteToPriority(w.b, to, w.p); err != nil {
			t.Fatal(err)
		}
	}
	f.push(rx{tmst: 9_000_000, data: uplink(0x0033, []byte{4, 0x0d, 0, 1})}) // PUBACK-sized uplink
	read(t, l)
	if r := f.resp(); !bytes.Equal(r.payload, onAir(0x0033, pub2)) {
		t.Fatalf("window 2: % x", r.payload)
	}
	if ni, _ := l.Node(to); ni.Queued != 0 {
		t.Fatalf("queued %d after the stale PINGRESP", ni.Queued)
	}
	if st := l.Stats(); st.TxSuperseded != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The answer to the new uplink goes out in its next window.
	f.push(rx{tmst: 20_000_000, data: uplink(0x0033, pingreq)})
	read(t, l)
	if err := l.WriteToPriority(pingresp, to, transport.PriorityAck); err != nil {
		t.Fatal(err)
	}
	if r := f.resp(); !bytes.Equal(r.payload, onAir(0x0033, pingresp)) || *r.txpk.Tmst != 21_000_000 {
		t.Fatalf("window 3: % x", r.payload)
	}
}
