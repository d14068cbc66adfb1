package semtech

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// waitFor bounds every wait on an event in these tests. It is a safety
// net against hangs, not a timing assertion.
const waitFor = 10 * time.Second

const testNet = 7

func testLogger() *slog.Logger {
	if os.Getenv("SNGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fakeClock is the link's clock in tests: time moves only when the test
// says so, and dedup timers fire from Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	due     time.Time
	f       func()
	stopped bool
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{due: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock and runs the timers that became due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.due.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

// newTestLink starts a link on loopback with the fake clock.
func newTestLink(t *testing.T, mutate func(*Config)) (*Link, *fakeClock) {
	t.Helper()
	clk := newClock()
	cfg := Config{
		Listen:    "127.0.0.1:0",
		NetworkID: testNet,
		Logger:    testLogger(),
		Now:       clk.Now,
		afterFunc: clk.AfterFunc,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	l, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, clk
}

// pullResp is one PULL_RESP as a forwarder receives it.
type pullResp struct {
	version uint8
	token   uint16
	txpk    radios.TXPK
	payload []byte
}

// fakeForwarder is a simulated packet forwarder: an "up" socket for
// PUSH_DATA and a "down" socket for PULL_DATA, PULL_RESP and TX_ACK, as
// the reference lora_pkt_fwd uses.
type fakeForwarder struct {
	t        *testing.T
	eui      [8]byte
	version  uint8
	up, down *net.UDPConn
	token    uint16
	pushAcks chan radios.GWMPPacket
	pullAcks chan radios.GWMPPacket
	resps    chan pullResp
}

func newForwarder(t *testing.T, l *Link, eui string, version uint8) *fakeForwarder {
	t.Helper()
	e, err := ParseEUI(eui)
	if err != nil {
		t.Fatal(err)
	}
	srv := net.UDPAddrFromAddrPort(l.LocalAddr())
	f := &fakeForwarder{t: t, eui: e, version: version, token: 0x1000,
		pushAcks: make(chan radios.GWMPPacket, 64), pullAcks: make(chan radios.GWMPPacket, 64), resps: make(chan pullResp, 64)}
	for _, c := range []**net.UDPConn{&f.up, &f.down} {
		conn, err := net.DialUDP("udp4", nil, srv)
		if err != nil {
			t.Fatal(err)
		}
		*c = conn
		t.Cleanup(func() { conn.Close() })
		go f.read(conn)
	}
	return f
}

func (f *fakeForwarder) read(c *net.UDPConn) {
	buf := make([]byte, 65535)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		p, err := radios.ParseGWMP(buf[:n])
		if err != nil {
			f.t.Errorf("forwarder got a bad datagram % x: %v", buf[:n], err)
			continue
		}
		p.JSON = append([]byte(nil), p.JSON...)
		switch p.Type {
		case radios.GWMPPushAck:
			f.pushAcks <- p
		case radios.GWMPPullAck:
			f.pullAcks <- p
		case radios.GWMPPullResp:
			r, err := radios.DecodePullResp(p.JSON)
			if err != nil {
				f.t.Errorf("bad PULL_RESP %s: %v", p.JSON, err)
				continue
			}
			pl, err := r.TXPK.Payload()
			if err != nil {
				f.t.Errorf("bad PULL_RESP payload %s: %v", p.JSON, err)
				continue
			}
			f.resps <- pullResp{version: p.Version, token: p.Token, txpk: r.TXPK, payload: pl}
		default:
			f.t.Errorf("forwarder got unexpected type %d", p.Type)
		}
	}
}

func (f *fakeForwarder) nextToken() uint16 { f.token++; return f.token }

func (f *fakeForwarder) send(c *net.UDPConn, p radios.GWMPPacket) {
	f.t.Helper()
	if _, err := c.Write(p.Append(nil)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeForwarder) raw(b []byte) {
	f.t.Helper()
	if _, err := f.up.Write(b); err != nil {
		f.t.Fatal(err)
	}
}

func waitPacket(t *testing.T, ch chan radios.GWMPPacket, what string) radios.GWMPPacket {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(waitFor):
		t.Fatalf("no %s", what)
		return radios.GWMPPacket{}
	}
}

// pull sends PULL_DATA and waits for PULL_ACK. Because the link handles
// datagrams in order, it is also a barrier: every datagram sent before
// it has been processed, and its PULL_RESPs are in f.resps.
func (f *fakeForwarder) pull() {
	f.t.Helper()
	tok := f.nextToken()
	f.send(f.down, radios.GWMPPacket{Version: f.version, Token: tok, Type: radios.GWMPPullData, EUI: f.eui})
	a := waitPacket(f.t, f.pullAcks, "PULL_ACK")
	if a.Token != tok || a.Version != f.version {
		f.t.Fatalf("PULL_ACK %+v for token %#x version %d", a, tok, f.version)
	}
}

// pushJSON sends PUSH_DATA with body and waits for PUSH_ACK.
func (f *fakeForwarder) pushJSON(body string) {
	f.t.Helper()
	tok := f.nextToken()
	f.send(f.up, radios.GWMPPacket{Version: f.version, Token: tok, Type: radios.GWMPPushData, EUI: f.eui, JSON: []byte(body)})
	a := waitPacket(f.t, f.pushAcks, "PUSH_ACK")
	if a.Token != tok || a.Version != f.version {
		f.t.Fatalf("PUSH_ACK %+v for token %#x version %d", a, tok, f.version)
	}
}

// rx describes one received packet; zero fields take the captured
// sample's values.
type rx struct {
	tmst uint32
	freq float64
	datr string
	codr string
	rssi int
	lsnr float64
	stat int
	data []byte // whole PHY payload
}

// rxpkJSON writes an rxpk entry the way lora_pkt_fwd does.
func rxpkJSON(r rx) string {
	if r.freq == 0 {
		r.freq = 866.349812
	}
	if r.datr == "" {
		r.datr = "SF7BW125"
	}
	if r.codr == "" {
		r.codr = "4/6"
	}
	if r.stat == 0 {
		r.stat = 1
	}
	return fmt.Sprintf(`{"time":"2025-06-01T12:00:00.000000Z","tmst":%d,"chan":2,"rfch":0,"freq":%v,"stat":%d,"modu":"LORA","datr":"%s","codr":"%s","rssi":%d,"lsnr":%v,"size":%d,"data":"%s"}`,
		r.tmst, r.freq, r.stat, r.datr, r.codr, r.rssi, r.lsnr, len(r.data), base64.StdEncoding.EncodeToString(r.data))
}

func (f *fakeForwarder) push(rs ...rx) {
	f.t.Helper()
	body := `{"rxpk":[`
	for i, r := range rs {
		if i > 0 {
			body += ","
		}
		body += rxpkJSON(r)
	}
	f.pushJSON(body + `]}`)
}

// txAck answers a PULL_RESP; code "" sends an empty body (success).
func (f *fakeForwarder) txAck(token uint16, code string) {
	f.t.Helper()
	var body []byte
	if code != "" {
		body = fmt.Appendf(nil, `{"txpk_ack":{"error":"%s"}}`, code)
	}
	f.send(f.down, radios.GWMPPacket{Version: f.version, Token: token, Type: radios.GWMPTxAck, EUI: f.eui, JSON: body})
}

func (f *fakeForwarder) resp() pullResp {
	f.t.Helper()
	select {
	case r := <-f.resps:
		return r
	case <-time.After(waitFor):
		f.t.Fatal("no PULL_RESP")
		return pullResp{}
	}
}

// noResp checks that no PULL_RESP was sent up to now (a barrier first).
func (f *fakeForwarder) noResp() {
	f.t.Helper()
	f.pull()
	select {
	case r := <-f.resps:
		f.t.Fatalf("unexpected PULL_RESP %+v payload % x", r.txpk, r.payload)
	default:
	}
}

// uplink builds a node's PHY payload: address header + MQTT-SN frame.
func uplink(node uint16, msg []byte) []byte {
	return append(radios.AppendHeader(nil, radios.Header{Network: testNet, Node: node}), msg...)
}

// onAir is what the gateway's frame msg to node looks like on air.
func onAir(node uint16, msg []byte) []byte {
	return append(radios.AppendHeader(nil, radios.Header{Downlink: true, Network: testNet, Node: node}), msg...)
}

// read returns the next frame from the link.
func read(t *testing.T, l *Link) ([]byte, transport.Addr) {
	t.Helper()
	type res struct {
		b    []byte
		from transport.Addr
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 256)
		n, from, err := l.ReadFrom(buf)
		ch <- res{buf[:n], from, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.b, r.from
	case <-time.After(waitFor):
		t.Fatal("no frame from ReadFrom")
		return nil, transport.Addr{}
	}
}

func failure(t *testing.T, l *Link) transport.TxFailure {
	t.Helper()
	select {
	case f := <-l.TxFailures():
		return f
	case <-time.After(waitFor):
		t.Fatal("no TxFailure")
		return transport.TxFailure{}
	}
}
