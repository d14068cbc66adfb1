package radios

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var testLoRa = LoRaParams{SF: 9, BandwidthHz: 125000}

func newTestModem(t *testing.T, k ModemKind) *Modem {
	t.Helper()
	m, err := NewModem(ModemConfig{Kind: k, LoRa: testLoRa, FrequencyHz: 869_525_000, CommandTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sampleLines gives one line of each kind per dialect.
var sampleLines = map[ModemKind]map[LineKind]string{
	ModemRN2483: {
		LineOK: "ok", LineNumber: "-7", LineRx: "radio_rx  D10701020216", LineTxDone: "radio_tx_ok",
		LineRadioErr: "radio_err", LineBusy: "busy", LineInvalid: "invalid_param", LineUnknown: "RN2483 1.0.5",
	},
	ModemRAK: {
		LineOK: "OK", LineRx: "+EVT:RXP2P:-45:10:D10701020216", LineRxTimeout: "+EVT:RXP2P RECEIVE TIMEOUT",
		LineTxDone: "+EVT:TXP2P DONE", LineBusy: "AT_BUSY_ERROR", LineInvalid: "AT_PARAM_ERROR",
		LineError: "AT_ERROR", LineUnknown: "RAKwireless RAK3172",
	},
}

func TestModemLineParsing(t *testing.T) {
	buf := make([]byte, 0, 16)
	for kind, lines := range sampleLines {
		for want, s := range lines {
			var l ModemLine
			var err error
			if kind == ModemRAK {
				l, err = ParseRAKLine([]byte(s+"\r"), buf)
			} else {
				l, err = ParseRN2483Line([]byte(s), buf)
			}
			if err != nil || l.Kind != want {
				t.Errorf("%s %q: %s %v", kind, s, l.Kind, err)
			}
		}
	}
	l, _ := ParseRAKLine([]byte("+EVT:RXP2P:-45:10:D10701020216"), buf)
	if !l.HasSignal || l.RSSI != -45 || l.SNR != 10 || !bytes.Equal(l.Data, hx(t, "D10701020216")) {
		t.Errorf("%+v", l)
	}
	l, _ = ParseRN2483Line([]byte("radio_rx 0102"), buf) // one space too
	if l.Kind != LineRx || !bytes.Equal(l.Data, []byte{1, 2}) {
		t.Errorf("%+v", l)
	}
	for _, bad := range []string{"radio_rx  0G", "radio_rx  123", "radio_rx  " + strings.Repeat("00", 17)} {
		if _, err := ParseRN2483Line([]byte(bad), buf); !errors.Is(err, ErrBadLine) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, bad := range []string{"+EVT:RXP2P:-45:10", "+EVT:RXP2P:x:10:00", "+EVT:RXP2P:-45:10:0"} {
		if _, err := ParseRAKLine([]byte(bad), buf); !errors.Is(err, ErrBadLine) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// putInState drives m into state s with the context the state implies.
func putInState(m *Modem, s ModemState) {
	m.state = s
	m.initIdx = 0
	m.tx = append(m.tx[:0], 0xD9, 7, 1, 2, 0x02, 0x17)
	m.rx = append(m.rx[:0], 0xD1, 7, 1, 2, 0x02, 0x16)
}

// TestModemTransitions fires every row of the transition table from its
// state and checks the resulting state and the commands written.
func TestModemTransitions(t *testing.T) {
	for _, tr := range modemTransitions {
		for _, k := range tr.kinds {
			m := newTestModem(t, k)
			putInState(m, tr.from)
			var out ModemOutput
			switch tr.on {
			case evStart:
				out = m.Start()
			case evSend:
				var err error
				out, err = m.Send([]byte{0x02, 0x17})
				if err != nil {
					t.Fatal(err)
				}
			case evTimeout:
				out = m.Timeout()
			default:
				line, ok := sampleLines[k][LineKind(tr.on)]
				if !ok {
					continue // the dialect never produces this line
				}
				out, _ = m.Line([]byte(line))
			}
			want := tr.to
			if want == stateDynamic {
				want = StateArmingRx
				if tr.from == StateConfiguring && len(m.init) > 1 {
					want = StateConfiguring
				}
			}
			name := k.String() + " " + tr.from.String() + " on " + eventName(tr.on)
			if m.State() != want {
				t.Errorf("%s: state %s, want %s", name, m.State(), want)
			}
			if want == StateFailed && out.Failed == nil {
				t.Errorf("%s: no failure reported", name)
			}
			if out.Failed != nil && want != StateFailed {
				t.Errorf("%s: unexpected failure %v", name, out.Failed)
			}
			if out.Write != nil && !bytes.HasSuffix(out.Write, []byte("\r\n")) {
				t.Errorf("%s: command without CRLF %q", name, out.Write)
			}
			if out.Write != nil && out.Timer <= 0 {
				t.Errorf("%s: command without deadline", name)
			}
		}
	}
}

func eventName(e modemEvent) string {
	switch e {
	case evStart:
		return "start"
	case evSend:
		return "send"
	case evTimeout:
		return "timeout"
	}
	return LineKind(e).String()
}

func TestModemTableUnique(t *testing.T) {
	seen := map[[3]int]bool{}
	for _, tr := range modemTransitions {
		for _, k := range tr.kinds {
			key := [3]int{int(k), int(tr.from), int(tr.on)}
			if seen[key] {
				t.Errorf("duplicate row %s %s %s", k, tr.from, eventName(tr.on))
			}
			seen[key] = true
		}
	}
}

// dialogue feeds lines and returns every command written.
type dialogue struct {
	t   *testing.T
	m   *Modem
	cmd []string
	rx  [][]byte
	sig []ModemOutput
	tx  []error
}

func (d *dialogue) apply(out ModemOutput) {
	if out.Write != nil {
		d.cmd = append(d.cmd, strings.TrimSuffix(string(out.Write), "\r\n"))
	}
	if out.Rx != nil {
		d.rx = append(d.rx, append([]byte(nil), out.Rx...))
		d.sig = append(d.sig, out)
	}
	if out.TxDone {
		d.tx = append(d.tx, out.TxErr)
	}
}

func (d *dialogue) line(s string) {
	out, err := d.m.Line([]byte(s))
	if err != nil {
		d.t.Fatalf("%q: %v", s, err)
	}
	d.apply(out)
}

func (d *dialogue) last() string { return d.cmd[len(d.cmd)-1] }

func TestRN2483Dialogue(t *testing.T) {
	m, _ := NewModem(ModemConfig{Kind: ModemRN2483, LoRa: testLoRa, FrequencyHz: 869_525_000, SyncWord: 0x12, PowerDBm: 14})
	d := &dialogue{t: t, m: m}
	d.apply(m.Start())
	if d.last() != "mac pause" {
		t.Fatal(d.cmd)
	}
	d.line("4294967245")
	for m.State() == StateConfiguring {
		d.line("ok")
	}
	want := []string{"mac pause", "radio set mod lora", "radio set freq 869525000", "radio set sf sf9", "radio set bw 125",
		"radio set cr 4/5", "radio set prlen 8", "radio set crc on", "radio set pwr 14", "radio set sync 12", "radio set wdt 0", "radio rx 0"}
	if strings.Join(d.cmd, "|") != strings.Join(want, "|") {
		t.Fatalf("set-up:\n%q\nwant\n%q", d.cmd, want)
	}
	d.line("ok")
	if !m.Ready() {
		t.Fatal(m.State())
	}
	// A frame: the driver asks SNR and RSSI, then re-arms.
	d.line("radio_rx  D10701020216")
	if d.last() != "radio get snr" || len(d.rx) != 0 {
		t.Fatal(d.cmd)
	}
	d.line("-3")
	d.line("-101")
	if len(d.rx) != 1 || !d.sig[0].HasSignal || d.sig[0].SNR != -3 || d.sig[0].RSSI != -101 || d.last() != "radio rx 0" {
		t.Fatalf("%v %+v %v", d.rx, d.sig, d.cmd)
	}
	d.line("ok")
	// Old firmware without rssi: frame delivered without signal.
	d.line("radio_rx  D10701020216")
	d.line("5")
	d.line("invalid_param")
	if len(d.rx) != 2 || d.sig[1].HasSignal {
		t.Fatal("rssi-less frame")
	}
	d.line("ok")
	// Transmit: stop rx, tx, wait, re-arm.
	out, err := m.Send([]byte{0xD9, 7, 1, 2, 0x02, 0x17})
	if err != nil {
		t.Fatal(err)
	}
	d.apply(out)
	if d.last() != "radio rxstop" {
		t.Fatal(d.cmd)
	}
	if _, err := m.Send([]byte{1}); !errors.Is(err, ErrModemNotReady) {
		t.Error("second send accepted")
	}
	d.line("ok")
	if d.last() != "radio tx D90701020217" {
		t.Fatal(d.last())
	}
	out, _ = m.Line([]byte("ok"))
	if out.Timer != time.Second*2+testLoRa.Airtime(6) {
		t.Errorf("tx deadline %v", out.Timer)
	}
	d.line("radio_tx_ok")
	if len(d.tx) != 1 || d.tx[0] != nil || d.last() != "radio rx 0" {
		t.Fatal(d.tx, d.cmd)
	}
	d.line("ok")
	// A failed transmission is reported and rx re-armed.
	out, _ = m.Send([]byte{1})
	d.apply(out)
	d.line("ok")
	d.line("ok")
	d.line("radio_err")
	if len(d.tx) != 2 || !errors.Is(d.tx[1], ErrModemRefused) || d.last() != "radio rx 0" {
		t.Fatal(d.tx)
	}
	// Stops answering: timeout fails the modem; Start recovers.
	out = m.Timeout()
	if out.Failed == nil || !errors.Is(out.Failed, ErrModemTimeout) || m.State() != StateFailed {
		t.Fatalf("%+v", out)
	}
	d.apply(m.Start())
	if d.last() != "mac pause" {
		t.Fatal(d.last())
	}
	if _, err := m.Send(make([]byte, 300)); err == nil {
		t.Error("send while configuring")
	}
	if m.Reset() || m.State() != StateClosed {
		t.Error("reset while configuring")
	}
	putInState(m, StateTxWaiting)
	if !m.Reset() {
		t.Error("reset lost the transmission silently")
	}
}

func TestRAKDialogue(t *testing.T) {
	m := newTestModem(t, ModemRAK)
	d := &dialogue{t: t, m: m}
	d.apply(m.Start())
	d.line("OK")
	d.line("OK")
	if strings.Join(d.cmd, "|") != "AT+NWM=0|AT+P2P=869525000:9:125:0:8:14|AT+PRECV=65534" {
		t.Fatal(d.cmd)
	}
	d.line("OK")
	d.line("+EVT:RXP2P:-45:10:D10701020216")
	if len(d.rx) != 1 || d.sig[0].RSSI != -45 || d.sig[0].SNR != 10 || !m.Ready() {
		t.Fatal(d.rx)
	}
	d.line("+EVT:RXP2P RECEIVE TIMEOUT")
	if d.last() != "AT+PRECV=65534" {
		t.Fatal(d.last())
	}
	d.line("OK")
	out, _ := m.Send([]byte{0xD9, 0x7E, 0x11})
	d.apply(out)
	d.line("OK")
	if d.last() != "AT+PSEND=D97E11" {
		t.Fatal(d.last())
	}
	d.line("OK")
	d.line("+EVT:RXP2P:-80:-2:D10701020216") // heard while transmitting
	d.line("+EVT:TXP2P DONE")
	if len(d.tx) != 1 || d.tx[0] != nil || len(d.rx) != 2 {
		t.Fatal(d.tx, d.rx)
	}
	d.line("OK")
	out, _ = m.Send([]byte{1})
	d.apply(out)
	d.line("OK")
	d.line("AT_BUSY_ERROR")
	if len(d.tx) != 2 || d.tx[1] == nil {
		t.Fatal(d.tx)
	}
	// A refused set-up fails the modem.
	m2 := newTestModem(t, ModemRAK)
	m2.Start()
	out, _ = m2.Line([]byte("AT_COMMAND_NOT_FOUND"))
	if out.Failed == nil || m2.State() != StateFailed {
		t.Fatal(out)
	}
}

func TestNewModemErrors(t *testing.T) {
	if _, err := NewModem(ModemConfig{Kind: ModemRAK}); err == nil {
		t.Error("no LoRa params accepted")
	}
	if _, err := NewModem(ModemConfig{Kind: 9, LoRa: testLoRa}); err == nil {
		t.Error("unknown kind accepted")
	}
	m := newTestModem(t, ModemRN2483)
	if m.MaxFrame() != 255 || ModemKind(9).String() == "" || StateFailed.String() != "failed" || LineKind(99).String() == "" {
		t.Error("names")
	}
}
