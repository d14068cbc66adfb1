package serial

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// fakeModem plays an ASCII modem on a fakeDev.
type fakeModem struct {
	t       *testing.T
	dev     *fakeDev
	dec     *radios.LineDecoder
	pending [][]byte
}

func newFakeModem(t *testing.T, dev *fakeDev) *fakeModem {
	return &fakeModem{t: t, dev: dev, dec: radios.NewLineDecoder(1024)}
}

// expect reads the next command and checks it (a trailing * matches any
// rest).
func (m *fakeModem) expect(want string) string {
	m.t.Helper()
	got := string(m.dev.next(m.dec, &m.pending))
	if p, ok := strings.CutSuffix(want, "*"); ok {
		if !strings.HasPrefix(got, p) {
			m.t.Fatalf("modem got %q, want %q", got, want)
		}
	} else if got != want {
		m.t.Fatalf("modem got %q, want %q", got, want)
	}
	return got
}

func (m *fakeModem) say(lines ...string) {
	for _, l := range lines {
		m.dev.write([]byte(l + "\r\n"))
	}
}

// exchange expects cmd and answers with the reply lines.
func (m *fakeModem) exchange(cmd string, reply ...string) string {
	m.t.Helper()
	got := m.expect(cmd)
	m.say(reply...)
	return got
}

var p2pLoRa = radios.LoRaParams{SF: 9, BandwidthHz: 125000}

func rnSetup(m *fakeModem) {
	m.t.Helper()
	m.exchange("mac pause", "4294967245")
	for _, c := range []string{"radio set mod lora", "radio set freq 869525000", "radio set sf sf9", "radio set bw 125",
		"radio set cr 4/5", "radio set prlen 8", "radio set crc on", "radio set wdt 0", "radio rx 0"} {
		m.exchange(c, "ok")
	}
}

func rakSetup(m *fakeModem) {
	m.t.Helper()
	m.exchange("AT+NWM=0", "OK")
	m.exchange("AT+P2P=869525000:9:125:0:8:14", "OK")
	m.exchange("AT+PRECV=65534", "OK")
}

func upHex(node uint16, net uint8, payload []byte) string {
	f := radios.AppendHeader(nil, radios.Header{Network: net, Node: node})
	return strings.ToUpper(hex.EncodeToString(append(f, payload...)))
}

func TestRN2483Link(t *testing.T) {
	path := devPath(t, "rn2483")
	dev := newFakeDev(t, path)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, ev := openLink(t, Config{Kind: KindRN2483, Device: path, LoRa: p2pLoRa, FrequencyHz: 869_525_000, NetworkID: 7,
		CommandTimeout: time.Hour, Now: func() time.Time { return now }})
	ev.waitUp(t)
	m := newFakeModem(t, dev)
	rnSetup(m)
	rx := reader(t, l)

	// Uplink with every awkward byte; SNR and RSSI are queried after it.
	m.say("radio_rx  " + upHex(0x0102, 7, binaryNasties))
	m.exchange("radio get snr", "-3")
	m.exchange("radio get rssi", "-97")
	m.exchange("radio rx 0", "ok")
	got := recv(t, rx)
	if got.from != NodeAddr(0x0102) || !bytes.Equal(got.data, binaryNasties) {
		t.Fatalf("% X from %s", got.data, got.from)
	}
	if s, ok := l.Signal(got.from); !ok || s.SNR != -3 || s.RSSI != -97 || !s.At.Equal(now) {
		t.Fatalf("signal %+v", s)
	}
	// A LoRaWAN frame and a frame of network 8 are ignored.
	for _, f := range []string{"40112233440000010002", upHex(0x0102, 8, []byte{2, 0x16})} {
		m.say("radio_rx  " + f)
		m.exchange("radio get snr", "invalid_param")
		m.exchange("radio get rssi", "invalid_param")
		m.exchange("radio rx 0", "ok")
	}

	// Downlink: stop receiving, transmit, re-arm.
	puback := hx(t, "07 0D 00 01 00 05 00")
	if err := l.WriteToPriority(puback, got.from, transport.PriorityAck); err != nil {
		t.Fatal(err)
	}
	m.exchange("radio rxstop", "ok")
	m.exchange("radio tx D9070102070D0001000500", "ok", "radio_tx_ok")
	m.exchange("radio rx 0", "ok")
	// The radio fails a transmission: reported to the gateway.
	if err := l.WriteTo([]byte{2, 0x17}, got.from); err != nil {
		t.Fatal(err)
	}
	m.exchange("radio rxstop", "ok")
	m.exchange("radio tx D907010202*", "ok", "radio_err")
	m.exchange("radio rx 0", "ok")
	f := failure(t, l)
	if f.To != got.from || !errors.Is(f.Err, radios.ErrModemRefused) {
		t.Fatalf("%+v", f)
	}
	// Only the 0x0102 frame was delivered; the two foreign ones counted.
	st := l.Stats()
	if st.RxFrames != 1 || st.RxRejected != 2 || st.TxFrames != 1 || st.TxFailures != 1 {
		t.Errorf("stats %+v", st)
	}
	if l.MTU() != 251 || l.Airtime(7) != p2pLoRa.Airtime(11) || l.Budget() == nil {
		t.Error(l.MTU(), l.Airtime(7))
	}
	if used := l.Budget().Used(now); used != p2pLoRa.Airtime(11)+p2pLoRa.Airtime(6) {
		t.Errorf("used %v", used)
	}
	if r := l.RetryInterval(7); r < 10*time.Second {
		t.Errorf("retry %v", r)
	}
	for _, bad := range []transport.Addr{NodeAddr(0), NodeAddr(0xFFFF), LoRaLinkAddr(1)} {
		if err := l.WriteTo([]byte{1}, bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := l.WriteTo(make([]byte, 252), got.from); !errors.Is(err, transport.ErrTooLarge) {
		t.Error(err)
	}
}

func TestModemDutyCycleCongestion(t *testing.T) {
	path := devPath(t, "rak")
	dev := newFakeDev(t, path)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, ev := openLink(t, Config{Kind: KindRAK, Device: path, LoRa: p2pLoRa, FrequencyHz: 868_800_000, // 0.1 %: 3.6 s/h
		NetworkID: 7, CommandTimeout: time.Hour, TxQueue: 100, Now: func() time.Time { return now }})
	ev.waitUp(t)
	m := newFakeModem(t, dev)
	m.exchange("AT+NWM=0", "OK")
	m.exchange("AT+P2P=868800000:9:125:0:8:14", "OK")
	m.exchange("AT+PRECV=65534", "OK")

	adv := hx(t, "05 00 01 03 84")
	toa := p2pLoRa.Airtime(len(adv) + radios.HeaderLen)
	var sent int
	for {
		err := l.Broadcast(adv)
		if errors.Is(err, transport.ErrCongested) {
			if !errors.Is(err, radios.ErrDutyCycle) {
				t.Fatal(err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	// ADVERTISE may fill half of 3.6 s.
	if want := int(1800 * time.Millisecond / toa); sent != want {
		t.Errorf("advertise sent %d, want %d", sent, want)
	}
	// Acknowledgements still go out.
	if err := l.WriteToPriority([]byte{3, 5, 0}, NodeAddr(9), transport.PriorityAck); err != nil {
		t.Fatal(err)
	}
	b := l.Budget()
	if b.Limit() != 3600*time.Millisecond || b.Used(now) != time.Duration(sent+1)*toa-toa+p2pLoRa.Airtime(7) {
		t.Errorf("used %v", b.Used(now))
	}
	if b.Remaining(now) != b.Limit()-b.Used(now) || b.Rejected(radios.PriorityAdvertise) != 1 {
		t.Error("getters")
	}
	if l.Stats().TxCongested != 1 {
		t.Error(l.Stats())
	}
	// The acknowledgement goes out ahead of every ADVERTISE still queued
	// (priority order). The transmitter may have taken the first
	// ADVERTISE before the acknowledgement was queued; then that one goes
	// first and the acknowledgement right after it.
	const ackLine, advLine = "AT+PSEND=D9070009030500", "AT+PSEND=D907FFFF0500010384"
	m.exchange("AT+PRECV=0", "OK")
	first := m.exchange("AT+PSEND=*", "OK", "+EVT:TXP2P DONE")
	m.exchange("AT+PRECV=65534", "OK")
	m.exchange("AT+PRECV=0", "OK")
	switch first {
	case ackLine:
		m.expect(advLine)
	case advLine:
		m.expect(ackLine)
	default:
		t.Fatalf("first transmission %q, want the acknowledgement or one ADVERTISE", first)
	}
}

// TestRAKReopenAfterUnplug unplugs the modem (the device vanishes), plugs
// a new one in at the same path, and checks that ReadFrom carries on.
func TestRAKReopenAfterUnplug(t *testing.T) {
	path := devPath(t, "rak")
	dev := newFakeDev(t, path)
	l, ev := openLink(t, Config{Kind: KindRAK, Device: path, LoRa: p2pLoRa, FrequencyHz: 869_525_000, NetworkID: 1, CommandTimeout: time.Hour})
	ev.waitUp(t)
	m := newFakeModem(t, dev)
	rakSetup(m)
	rx := reader(t, l)
	m.say("+EVT:RXP2P:-45:10:" + upHex(0x0203, 1, []byte{2, 0x16}))
	got := recv(t, rx)
	if got.from != NodeAddr(0x0203) {
		t.Fatal(got.from)
	}
	if s, _ := l.Signal(got.from); s.RSSI != -45 || s.SNR != 10 {
		t.Fatalf("%+v", s)
	}

	dev.unplug()
	down := ev.wait(t, false)
	if down.Device != path || down.Err == nil {
		t.Fatalf("%+v", down)
	}
	// A downlink while the modem is gone waits in the queue.
	if err := l.WriteTo([]byte{2, 0x17}, got.from); err != nil {
		t.Fatal(err)
	}

	dev2 := newFakeDev(t, path)
	ev.waitUp(t)
	m2 := newFakeModem(t, dev2)
	rakSetup(m2)
	m2.exchange("AT+PRECV=0", "OK")
	m2.exchange("AT+PSEND=D901020302*", "OK", "+EVT:TXP2P DONE")
	m2.exchange("AT+PRECV=65534", "OK")
	m2.say("+EVT:RXP2P:-50:5:" + upHex(0x0203, 1, []byte{2, 0x16}))
	if got := recv(t, rx); got.from != NodeAddr(0x0203) {
		t.Fatal(got.from)
	}
	if st := l.Stats(); st.Opens != 2 || st.Failures != 1 || st.RxFrames != 2 {
		t.Errorf("%+v", st)
	}
	_ = l.Close()
	if _, ok := <-rx; ok {
		t.Error("reader still open after Close")
	}
	if err := l.WriteTo([]byte{1}, got.from); !errors.Is(err, transport.ErrClosed) {
		t.Error(err)
	}
}

// TestRN2483CommandTimeoutReopens: a modem that stops answering is
// reported with its cause and reopened.
func TestRN2483CommandTimeoutReopens(t *testing.T) {
	path := devPath(t, "rn2483")
	dev := newFakeDev(t, path)
	l, ev := openLink(t, Config{Kind: KindRN2483, Device: path, LoRa: p2pLoRa, FrequencyHz: 869_525_000, CommandTimeout: 20 * time.Millisecond})
	ev.waitUp(t)
	m := newFakeModem(t, dev)
	m.expect("mac pause") // no answer
	down := ev.wait(t, false)
	if !errors.Is(down.Err, radios.ErrModemTimeout) {
		t.Fatalf("%+v", down)
	}
	ev.waitUp(t)
	m.expect("mac pause")
	if l.Stats().Failures == 0 {
		t.Error(l.Stats())
	}
}

func TestOpenConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Kind: KindXBee},
		{Kind: "morse", Device: "/dev/null"},
		{Kind: KindXBee, Device: "/dev/null", APIMode: 3},
		{Kind: KindRN2483, Device: "/dev/null", FrequencyHz: 868_100_000},
		{Kind: KindRAK, Device: "/dev/null", LoRa: p2pLoRa},
		{Kind: KindRAK, Device: "/dev/null", LoRa: p2pLoRa, FrequencyHz: 868_650_000},
		{Kind: KindRAK, Device: "/dev/null", LoRa: p2pLoRa, FrequencyHz: 868_100_000, Region: "mars"},
	} {
		if l, err := Open(c); err == nil {
			_ = l.Close()
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestOpenMissingDevice: a device that does not exist yet is retried
// until it appears.
func TestOpenMissingDevice(t *testing.T) {
	path := devPath(t, "later")
	l, ev := openLink(t, Config{Kind: KindSLIP, Device: path})
	if e := ev.wait(t, false); e.Err == nil {
		t.Fatal(e)
	}
	dev := newFakeDev(t, path)
	ev.waitUp(t)
	rx := reader(t, l)
	dev.write(radios.AppendSLIP(nil, []byte{2, 0x16}))
	if got := recv(t, rx); !bytes.Equal(got.data, []byte{2, 0x16}) {
		t.Fatal(got)
	}
}
