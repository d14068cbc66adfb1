package radios

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// ModemKind selects the ASCII LoRa P2P modem dialect.
type ModemKind uint8

// Supported ASCII modems.
const (
	ModemRN2483 ModemKind = iota + 1 // Microchip RN2483/RN2903, "radio ..." commands
	ModemRAK                         // RAKwireless RUI3 (RAK3172, RAK4630 ...), "AT+P..." commands
)

// String names the modem kind.
func (k ModemKind) String() string {
	switch k {
	case ModemRN2483:
		return "rn2483"
	case ModemRAK:
		return "rak"
	}
	return fmt.Sprintf("modem(%d)", uint8(k))
}

// LineKind classifies one response line of an ASCII modem.
type LineKind uint8

// Response line kinds.
const (
	LineUnknown   LineKind = iota // anything else (banners, echoes); ignored
	LineOK                        // "ok" / "OK"
	LineNumber                    // a decimal number (mac pause, radio get snr/rssi)
	LineRx                        // a received frame
	LineRxTimeout                 // RUI3 receive window ended without a frame
	LineTxDone                    // "radio_tx_ok" / "+EVT:TXP2P DONE"
	LineRadioErr                  // RN2483 "radio_err" (TX failed, RX error or watchdog)
	LineBusy                      // "busy" / "AT_BUSY_ERROR"
	LineInvalid                   // "invalid_param" / "AT_PARAM_ERROR"
	LineError                     // other RUI3 errors ("AT_ERROR" ...)
	numLineKinds
)

var lineKindNames = [...]string{"unknown", "ok", "number", "rx", "rx-timeout", "tx-done", "radio-err", "busy", "invalid", "error"}

// String names the line kind.
func (k LineKind) String() string {
	if int(k) < len(lineKindNames) {
		return lineKindNames[k]
	}
	return fmt.Sprintf("line(%d)", uint8(k))
}

// ModemLine is one classified response line.
type ModemLine struct {
	Kind LineKind
	// Data is the received frame (LineRx), decoded from hex into the
	// buffer given to the parser.
	Data []byte
	// RSSI and SNR come with RUI3 receive events (HasSignal set).
	RSSI, SNR int
	HasSignal bool
	// Num is the value of a LineNumber.
	Num int64
}

// ErrBadLine is wrapped by the line parsers for malformed frame lines.
var ErrBadLine = errors.New("radios: malformed modem line")

func decodeHexInto(buf, h []byte) ([]byte, error) {
	if len(h)%2 != 0 {
		return nil, fmt.Errorf("%w: odd number of hex digits (%d)", ErrBadLine, len(h))
	}
	if len(h)/2 > cap(buf) {
		return nil, fmt.Errorf("%w: %d-byte frame exceeds %d", ErrBadLine, len(h)/2, cap(buf))
	}
	out := buf[:len(h)/2]
	if _, err := hex.Decode(out, h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLine, err)
	}
	return out, nil
}

func parseNumber(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	return v, err == nil
}

// ParseRN2483Line classifies one RN2483 response line (without CR/LF).
// A "radio_rx" frame is hex-decoded into buf (its capacity bounds the
// frame size). Malformed frame lines give LineUnknown and an error.
func ParseRN2483Line(line, buf []byte) (ModemLine, error) {
	line = bytes.TrimSpace(line)
	switch string(line) {
	case "ok":
		return ModemLine{Kind: LineOK}, nil
	case "radio_tx_ok":
		return ModemLine{Kind: LineTxDone}, nil
	case "radio_err":
		return ModemLine{Kind: LineRadioErr}, nil
	case "busy":
		return ModemLine{Kind: LineBusy}, nil
	case "invalid_param":
		return ModemLine{Kind: LineInvalid}, nil
	}
	if rest, ok := bytes.CutPrefix(line, []byte("radio_rx ")); ok {
		data, err := decodeHexInto(buf, bytes.TrimLeft(rest, " "))
		if err != nil {
			return ModemLine{}, fmt.Errorf("rn2483 radio_rx: %w", err)
		}
		return ModemLine{Kind: LineRx, Data: data}, nil
	}
	if v, ok := parseNumber(line); ok {
		return ModemLine{Kind: LineNumber, Num: v}, nil
	}
	return ModemLine{}, nil
}

// ParseRAKLine classifies one RUI3 response line (without CR/LF). A
// "+EVT:RXP2P:<rssi>:<snr>:<hex>" frame is hex-decoded into buf.
func ParseRAKLine(line, buf []byte) (ModemLine, error) {
	line = bytes.TrimSpace(line)
	switch string(line) {
	case "OK":
		return ModemLine{Kind: LineOK}, nil
	case "+EVT:TXP2P DONE":
		return ModemLine{Kind: LineTxDone}, nil
	case "+EVT:RXP2P RECEIVE TIMEOUT":
		return ModemLine{Kind: LineRxTimeout}, nil
	case "AT_BUSY_ERROR":
		return ModemLine{Kind: LineBusy}, nil
	case "AT_PARAM_ERROR":
		return ModemLine{Kind: LineInvalid}, nil
	}
	if rest, ok := bytes.CutPrefix(line, []byte("+EVT:RXP2P:")); ok {
		f := bytes.SplitN(rest, []byte(":"), 3)
		if len(f) != 3 {
			return ModemLine{}, fmt.Errorf("rak rxp2p: %w: want rssi:snr:hex", ErrBadLine)
		}
		rssi, ok1 := parseNumber(f[0])
		snr, ok2 := parseNumber(f[1])
		if !ok1 || !ok2 || rssi < -1000 || rssi > 1000 || snr < -1000 || snr > 1000 {
			return ModemLine{}, fmt.Errorf("rak rxp2p: %w: bad rssi %q or snr %q", ErrBadLine, f[0], f[1])
		}
		data, err := decodeHexInto(buf, f[2])
		if err != nil {
			return ModemLine{}, fmt.Errorf("rak rxp2p: %w", err)
		}
		return ModemLine{Kind: LineRx, Data: data, RSSI: int(rssi), SNR: int(snr), HasSignal: true}, nil
	}
	if bytes.HasPrefix(line, []byte("AT_")) || bytes.HasSuffix(line, []byte("ERROR")) {
		return ModemLine{Kind: LineError}, nil
	}
	return ModemLine{}, nil
}

// LineDecoder splits a modem's output into lines ended by LF (a CR
// before it is dropped). Empty lines are skipped; lines longer than the
// bound are dropped and counted as Oversize.
type LineDecoder struct {
	buf     []byte
	discard bool
	stats   DecoderStats
}

// NewLineDecoder returns a line splitter for lines of at most maxLine
// bytes (0 means 1024).
func NewLineDecoder(maxLine int) *LineDecoder {
	if maxLine <= 0 {
		maxLine = 1024
	}
	return &LineDecoder{buf: make([]byte, 0, maxLine)}
}

// Stats returns the counters (Frames counts lines).
func (d *LineDecoder) Stats() DecoderStats { return d.stats }

// Reset drops a partial line.
func (d *LineDecoder) Reset() { d.buf, d.discard = d.buf[:0], false }

// Feed consumes p and calls emit for every complete line.
func (d *LineDecoder) Feed(p []byte, emit func(line []byte)) {
	for len(p) > 0 {
		i := indexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !d.discard {
			if len(d.buf)+len(chunk) > cap(d.buf) {
				d.stats.Oversize++
				d.discard = true
			} else {
				d.buf = append(d.buf, chunk...)
			}
		}
		if i < 0 {
			return
		}
		p = p[i+1:]
		if !d.discard {
			line := bytes.TrimRight(d.buf, "\r")
			if len(line) > 0 {
				d.stats.Frames++
				emit(line)
			}
		}
		d.Reset()
	}
}
