package semtech

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// oneBand is a region with a single 0.1 % sub-band: 3.6 s of airtime per
// hour, about one 50-byte SF12 frame.
var oneBand = radios.Region{Name: "test", SubBands: []radios.SubBand{
	{Name: "all", MinHz: 800_000_000, MaxHz: 1_000_000_000, DutyCycle: 0.001},
}}

// The duty-cycle budget is charged per priority share: ADVERTISE-class
// frames are refused first, acknowledgements last, with ErrCongested.
func TestBudgetCongestion(t *testing.T) {
	l, _ := newTestLink(t, func(c *Config) { c.RegionRules = oneBand })
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	f.push(rx{tmst: 1, datr: "SF12BW125", codr: "4/5", freq: 868.1, data: uplink(0x0100, pingreq)})
	read(t, l)
	to := NodeAddr(0x0100)
	big := bytes.Repeat([]byte{0x33}, 46) // 50 bytes on air: about 2.3 s at SF12
	big[0] = 46
	err := l.WriteToPriority(big, to, transport.PriorityAdvertise)
	if !errors.Is(err, transport.ErrCongested) || !errors.Is(err, radios.ErrDutyCycle) {
		t.Fatalf("advertise-class frame: %v", err)
	}
	if err := l.WriteToPriority(big, to, transport.PriorityAck); err != nil {
		t.Fatalf("ack: %v", err)
	}
	f.resp()
	big[1] = 0x34
	if err := l.WriteToPriority(big, to, transport.PriorityAck); !errors.Is(err, transport.ErrCongested) {
		t.Fatalf("second ack: %v", err)
	}
	st := l.Stats()
	if st.TxCongested != 2 || st.TxSent != 1 {
		t.Fatalf("stats %+v", st)
	}
	fs := l.Forwarders()
	if len(fs) != 1 || len(fs[0].Bands) != 1 || fs[0].Bands[0].SubBand != "all" || fs[0].Bands[0].Sent != 1 ||
		fs[0].Bands[0].Limit != 3600*time.Millisecond || fs[0].Bands[0].Used < 2*time.Second {
		t.Fatalf("forwarders %+v", fs)
	}
}

// The per-node queue is bounded.
func TestQueueBound(t *testing.T) {
	l, _ := newTestLink(t, func(c *Config) { c.NodeQueue = 2 })
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	f.push(rx{tmst: 1, data: uplink(4, pingreq)})
	read(t, l)
	for i := byte(0); i < 3; i++ { // the first goes out, two wait
		if err := l.WriteTo([]byte{3, 0x0c, i}, NodeAddr(4)); err != nil {
			t.Fatal(err)
		}
	}
	err := l.WriteTo([]byte{3, 0x0c, 9}, NodeAddr(4))
	if !errors.Is(err, transport.ErrCongested) || !errors.Is(err, radios.ErrQueueFull) {
		t.Fatalf("full queue: %v", err)
	}
}

// Writes the link cannot route are refused with a reason.
func TestWriteErrors(t *testing.T) {
	l, _ := newTestLink(t, nil)
	if err := l.WriteTo([]byte{2, 0x17}, NodeAddr(77)); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}
	for _, a := range []transport.Addr{NodeAddr(0), NodeAddr(0xFFFF), transport.AddrFromAddrPort(l.LocalAddr())} {
		if err := l.WriteTo([]byte{2, 0x17}, a); err == nil {
			t.Fatalf("address %v accepted", a)
		}
	}
	if err := l.WriteTo(make([]byte, l.MTU()+1), NodeAddr(1)); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if l.MTU() != 251 || l.Name() != "semtech" {
		t.Fatalf("MTU %d name %q", l.MTU(), l.Name())
	}
	if err := l.Broadcast([]byte{3, 0x01, 0x01}); !errors.Is(err, transport.ErrNoBroadcast) {
		t.Fatalf("broadcast: %v", err)
	}
	if st := l.Stats(); st.TxNoRoute != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// The retry interval grows with the frame's airtime and with the
// slowest data rate heard.
func TestRetryInterval(t *testing.T) {
	l, _ := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	f.push(rx{tmst: 1, datr: "SF7BW125", freq: 868.1, data: uplink(1, pingreq)})
	read(t, l)
	sf7small, sf7big := l.RetryInterval(10), l.RetryInterval(100)
	if sf7small <= l.cfg.RXDelay || sf7big <= sf7small {
		t.Fatalf("SF7: %v, %v", sf7small, sf7big)
	}
	f.push(rx{tmst: 2, datr: "SF12BW125", freq: 868.3, data: uplink(2, pingreq)})
	read(t, l)
	sf12 := l.RetryInterval(10)
	// 1 %: at least 100 times the airtime of a 14-byte SF12 frame (~1 s).
	if sf12 <= sf7big || sf12 < 100*time.Second {
		t.Fatalf("SF12: %v (SF7 %v)", sf12, sf7big)
	}
}

// Broadcasts go out at once through every forwarder with a downlink
// path, on the configured channel, at the lowest priority.
func TestBroadcast(t *testing.T) {
	l, _ := newTestLink(t, func(c *Config) { c.BroadcastFreqHz = 869_525_000; c.BroadcastDataRate = "SF9BW125" })
	adv := []byte{5, 0x00, 0x01, 0x03, 0x84}
	if err := l.Broadcast(adv); !errors.Is(err, ErrNoForwarder) {
		t.Fatalf("no forwarders: %v", err)
	}
	a := newForwarder(t, l, "AA555A0000000001", 2)
	b := newForwarder(t, l, "AA555A0000000002", 1)
	upOnly := newForwarder(t, l, "AA555A0000000003", 2)
	a.pull()
	b.pull()
	upOnly.push()
	if err := l.Broadcast(adv); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fakeForwarder{a, b} {
		r := f.resp()
		tx := r.txpk
		if !tx.Imme || tx.Tmst != nil || tx.Freq != 869.525 || tx.DatR.LoRa != "SF9BW125" || tx.CodR != "4/5" || !tx.IPol {
			t.Fatalf("txpk %+v", tx)
		}
		if !bytes.Equal(r.payload, []byte{0xD9, testNet, 0xFF, 0xFF, 5, 0x00, 0x01, 0x03, 0x84}) {
			t.Fatalf("payload % x", r.payload)
		}
		if f == a {
			a.txAck(r.token, "COLLISION_PACKET") // counted, not reported
		}
	}
	a.pull()
	if st := l.Stats(); st.Broadcasts != 2 || st.TxAckCollisionPacket != 1 || st.TxFailures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Broadcasts stop when the forwarders' budgets are spent.
func TestBroadcastCongested(t *testing.T) {
	l, _ := newTestLink(t, func(c *Config) { c.RegionRules = oneBand; c.BroadcastFreqHz = 869_525_000 })
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	adv := []byte{5, 0x00, 0x01, 0x03, 0x84} // 9 bytes at SF12: about 1 s, half share 1.8 s
	if err := l.Broadcast(adv); err != nil {
		t.Fatal(err)
	}
	f.resp()
	if err := l.Broadcast(adv); !errors.Is(err, transport.ErrCongested) {
		t.Fatalf("second broadcast: %v", err)
	}
}

// Frames that wait too long are dropped and reported.
func TestFrameExpiry(t *testing.T) {
	l, clk := newTestLink(t, func(c *Config) { c.FrameTTL = time.Minute })
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	f.push(rx{tmst: 1, data: uplink(6, pingreq)})
	read(t, l)
	for i := byte(0); i < 2; i++ {
		if err := l.WriteTo([]byte{3, 0x0c, i}, NodeAddr(6)); err != nil {
			t.Fatal(err)
		}
	}
	f.resp()
	clk.Advance(2 * time.Minute)
	l.sweep()
	if fl := failure(t, l); fl.To != NodeAddr(6) || !errors.Is(fl.Err, ErrExpired) {
		t.Fatalf("failure %+v", fl)
	}
	if ni, _ := l.Node(NodeAddr(6)); ni.Queued != 0 {
		t.Fatalf("node %+v", ni)
	}
	if st := l.Stats(); st.TxExpired != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// The node table is bounded; idle nodes go first, and a node evicted
// with queued frames reports them.
func TestNodeEviction(t *testing.T) {
	l, clk := newTestLink(t, func(c *Config) { c.MaxNodes = 2 })
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	hear := func(n uint16) {
		clk.Advance(time.Second)
		f.push(rx{tmst: uint32(n), data: uplink(n, pingreq)})
		read(t, l)
	}
	hear(1)
	if err := l.WriteTo([]byte{2, 0x17}, NodeAddr(1)); err != nil { // goes out
		t.Fatal(err)
	}
	if err := l.WriteTo([]byte{3, 0x0c, 1}, NodeAddr(1)); err != nil { // waits
		t.Fatal(err)
	}
	hear(2)
	hear(3) // evicts 2 (idle), although 1 is older
	if got := l.Nodes(); len(got) != 2 || got[0].Node != 1 || got[1].Node != 3 {
		t.Fatalf("nodes %+v", got)
	}
	for i := byte(0); i < 2; i++ { // one goes out, one waits
		if err := l.WriteTo([]byte{3, 0x0c, i}, NodeAddr(3)); err != nil {
			t.Fatal(err)
		}
	}
	hear(4) // no idle node left: the oldest, 1, goes
	if fl := failure(t, l); fl.To != NodeAddr(1) || !errors.Is(fl.Err, ErrEvicted) {
		t.Fatalf("failure %+v", fl)
	}
	if got := l.Nodes(); len(got) != 2 || got[0].Node != 3 || got[1].Node != 4 {
		t.Fatalf("nodes %+v", got)
	}
	if st := l.Stats(); st.NodesEvicted != 2 || st.TxDropped != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// ReadFrom drops frames longer than the caller's buffer and ends with
// ErrClosed after Close.
func TestReadFromAndClose(t *testing.T) {
	l, _ := newTestLink(t, nil)
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.push(rx{tmst: 1, data: uplink(8, bytes.Repeat([]byte{1}, 40))})
	f.push(rx{tmst: 2, data: uplink(8, pingreq)})
	buf := make([]byte, 8)
	n, from, err := l.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], pingreq) || from != NodeAddr(8) {
		t.Fatalf("ReadFrom: % x %v %v", buf[:n], from, err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := l.ReadFrom(buf); done <- err }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("ReadFrom after Close: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("ReadFrom still blocked after Close")
	}
	if err := l.WriteTo(pingreq, NodeAddr(8)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	if st := l.Stats(); st.RxTooLong != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Configuration errors are reported, not papered over.
func TestConfigErrors(t *testing.T) {
	for name, c := range map[string]Config{
		"window too short": {Listen: "127.0.0.1:0", RXDelay: 300 * time.Millisecond, TxLead: 200 * time.Millisecond},
		"region":           {Listen: "127.0.0.1:0", Region: "Mars"},
		"broadcast datr":   {Listen: "127.0.0.1:0", BroadcastFreqHz: 869_525_000, BroadcastDataRate: "fast"},
		"broadcast freq":   {Listen: "127.0.0.1:0", BroadcastFreqHz: 433_000_000},
		"address":          {Listen: "nowhere:-1"},
	} {
		if l, err := Listen(c); err == nil {
			l.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// Whatever arrives on the socket, the link does not panic.
func FuzzHandle(f *testing.F) {
	f.Add([]byte{2, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, '{', '}'})
	f.Add(append([]byte{2, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8}, `{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","size":6,"data":"0QcBAgIW"}]}`...))
	f.Add(append([]byte{2, 0, 1, 5, 1, 2, 3, 4, 5, 6, 7, 8}, `{"txpk_ack":{"error":"TOO_LATE"}}`...))
	f.Add([]byte{1, 0, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8})
	clk := newClock()
	l, err := Listen(Config{Listen: "127.0.0.1:0", NetworkID: testNet, Now: clk.Now, afterFunc: clk.AfterFunc, MaxNodes: 8})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	from := l.LocalAddr() // acknowledgements go back to the link itself
	f.Fuzz(func(t *testing.T, b []byte) {
		l.handle(b, from)
		select {
		case <-l.rx:
		default:
		}
	})
}

// Downlinks awaiting a TX_ACK are bounded; the oldest is forgotten.
func TestInflightBound(t *testing.T) {
	l, _ := newTestLink(t, func(c *Config) { c.MaxInflight = 2 })
	f := newForwarder(t, l, "AA555A0000000001", 2)
	f.pull()
	var tokens []uint16
	for i := uint16(1); i <= 3; i++ {
		f.push(rx{tmst: uint32(i) * 10_000_000, data: uplink(i, pingreq)})
		read(t, l)
		if err := l.WriteTo([]byte{2, 0x17}, NodeAddr(i)); err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, f.resp().token)
	}
	for _, tok := range tokens {
		f.txAck(tok, "TOO_LATE")
	}
	for _, want := range []uint16{2, 3} {
		if fl := failure(t, l); fl.To != NodeAddr(want) {
			t.Fatalf("failure for %v, want node %d", fl.To, want)
		}
	}
	f.pull()
	if st := l.Stats(); st.TxAckUnknown != 1 || st.TxFailures != 2 {
		t.Fatalf("stats %+v", st)
	}
}
