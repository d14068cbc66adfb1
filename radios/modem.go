package radios

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ModemState is a state of the ASCII modem driver.
type ModemState uint8

// Driver states.
const (
	StateClosed      ModemState = iota // not started
	StateConfiguring                   // sending the set-up commands
	StateArmingRx                      // receive command sent, waiting for ok
	StateListening                     // receiving; ready to transmit
	StateQuerySNR                      // RN2483: asked "radio get snr" after a frame
	StateQueryRSSI                     // RN2483: asked "radio get rssi"
	StateStoppingRx                    // stop-receive sent before a transmission
	StateTxCommand                     // transmit command sent, waiting for ok
	StateTxWaiting                     // waiting for the end of the transmission
	StateFailed                        // unresponsive or refused set-up: reopen
	numModemStates
	stateDynamic // table marker: the action chooses the next state
)

var modemStateNames = [...]string{"closed", "configuring", "arming-rx", "listening", "query-snr", "query-rssi", "stopping-rx", "tx-command", "tx-waiting", "failed"}

// String names the state.
func (s ModemState) String() string {
	if int(s) < len(modemStateNames) {
		return modemStateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Errors reported by the modem driver.
var (
	// ErrModemNotReady: Send was called while the modem is not listening.
	ErrModemNotReady = errors.New("radios: modem not ready to transmit")
	// ErrModemTimeout: the modem did not answer a command in time.
	ErrModemTimeout = errors.New("radios: modem command timeout")
	// ErrModemRefused: the modem refused a command (busy, invalid
	// parameter, error) or the radio reported a failure.
	ErrModemRefused = errors.New("radios: modem refused command")
)

// ModemConfig configures the ASCII modem driver.
type ModemConfig struct {
	Kind        ModemKind
	LoRa        LoRaParams
	FrequencyHz uint32
	// PowerDBm is the transmit power; 0 leaves the modem default
	// (RN2483) or uses 14 dBm (RUI3, where the command needs a value).
	PowerDBm int
	// SyncWord sets the RN2483 sync word (e.g. 0x12 private); 0 leaves
	// the modem default. RUI3 P2P has no sync-word command here.
	SyncWord uint8
	// CommandTimeout bounds the wait for a command's answer; default 2 s.
	// A transmission may take its airtime on top.
	CommandTimeout time.Duration
	// MaxFrame is the largest radio frame; default 255 (RN2483) or 250
	// (RUI3, whose AT+PSEND limit is 500 hex digits on common firmware).
	MaxFrame int
}

// ModemOutput is what the driver must do after one event.
type ModemOutput struct {
	// Write is a command line (with CR LF) to send to the modem. It
	// aliases the Modem's buffer and is valid until the next event.
	Write []byte
	// Rx is a received radio frame (aliases the Modem's buffer).
	Rx []byte
	// RSSI (dBm) and SNR (dB) of Rx when HasSignal is set.
	RSSI, SNR int
	HasSignal bool
	// TxDone reports the end of a transmission; TxErr is its failure.
	TxDone bool
	TxErr  error
	// Timer > 0 (re)arms the response deadline that far from now, a
	// negative Timer stops it, 0 leaves it as it is.
	Timer time.Duration
	// Failed is set when the modem is unusable: close and reopen it,
	// then call Start again.
	Failed error
}

type modemEvent uint8

// Non-line events follow the line kinds in one event space.
const (
	evStart modemEvent = modemEvent(numLineKinds) + iota
	evSend
	evTimeout
	numModemEvents
)

type modemAction func(m *Modem, l *ModemLine, out *ModemOutput) ModemState

// modemTransition is one row of the transition table.
type modemTransition struct {
	kinds []ModemKind // dialects the row applies to
	from  ModemState
	on    modemEvent
	to    ModemState // stateDynamic: the action decides
	act   modemAction
}

// Modem is the pure state machine driving an RN2483 or RUI3 modem in
// LoRa P2P mode: set-up, continuous receive, one transmission at a time
// (half duplex: receive is stopped for a transmission and re-armed
// after). It does no I/O: the caller feeds it lines, send requests and
// timer expiries, and carries out each ModemOutput. Not safe for
// concurrent use.
type Modem struct {
	cfg     ModemConfig
	state   ModemState
	table   *[numModemStates][numModemEvents]*modemTransition
	init    []string
	initIdx int
	tx      []byte // pending frame to send
	rx      []byte // frame held while RN2483 signal is queried
	rxBuf   []byte
	cmd     []byte
	snr     int
	hasSNR  bool
}

// NewModem validates cfg and returns a driver in StateClosed.
func NewModem(cfg ModemConfig) (*Modem, error) {
	if err := cfg.LoRa.Validate(); err != nil {
		return nil, err
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 2 * time.Second
	}
	m := &Modem{cfg: cfg}
	switch cfg.Kind {
	case ModemRN2483:
		if cfg.MaxFrame <= 0 || cfg.MaxFrame > 255 {
			m.cfg.MaxFrame = 255
		}
		m.table = &rn2483Table
	case ModemRAK:
		if cfg.MaxFrame <= 0 || cfg.MaxFrame > 250 {
			m.cfg.MaxFrame = 250
		}
		m.table = &rakTable
	default:
		return nil, fmt.Errorf("radios: unknown modem kind %d", cfg.Kind)
	}
	m.init = initCommands(m.cfg)
	m.rxBuf = make([]byte, 0, m.cfg.MaxFrame)
	m.rx = make([]byte, 0, m.cfg.MaxFrame)
	m.tx = make([]byte, 0, m.cfg.MaxFrame)
	m.cmd = make([]byte, 0, 2*m.cfg.MaxFrame+32)
	return m, nil
}

// initCommands lists the set-up commands for cfg.
func initCommands(c ModemConfig) []string {
	lp := c.LoRa.withDefaults()
	if c.Kind == ModemRAK {
		pwr := c.PowerDBm
		if pwr == 0 {
			pwr = 14
		}
		return []string{
			"AT+NWM=0",
			fmt.Sprintf("AT+P2P=%d:%d:%d:%d:%d:%d", c.FrequencyHz, lp.SF, lp.BandwidthHz/1000, lp.CodingRate-1, lp.Preamble, pwr),
		}
	}
	cmds := []string{
		"mac pause",
		"radio set mod lora",
		"radio set freq " + strconv.FormatUint(uint64(c.FrequencyHz), 10),
		"radio set sf sf" + strconv.Itoa(lp.SF),
		"radio set bw " + strconv.Itoa(lp.BandwidthHz/1000),
		"radio set cr 4/" + strconv.Itoa(lp.CodingRate+4),
		"radio set prlen " + strconv.Itoa(lp.Preamble),
	}
	if lp.NoCRC {
		cmds = append(cmds, "radio set crc off")
	} else {
		cmds = append(cmds, "radio set crc on")
	}
	if c.PowerDBm != 0 {
		cmds = append(cmds, "radio set pwr "+strconv.Itoa(c.PowerDBm))
	}
	if c.SyncWord != 0 {
		cmds = append(cmds, fmt.Sprintf("radio set sync %02x", c.SyncWord))
	}
	return append(cmds, "radio set wdt 0")
}

// State returns the current state.
func (m *Modem) State() ModemState { return m.state }

// Ready reports whether Send may be called.
func (m *Modem) Ready() bool { return m.state == StateListening }

// MaxFrame returns the largest frame the modem sends.
func (m *Modem) MaxFrame() int { return m.cfg.MaxFrame }

// Reset forgets the modem's state (the port was closed or lost) and
// reports whether a transmission was in progress; call Start once the
// port is open again.
func (m *Modem) Reset() (txLost bool) {
	txLost = m.state == StateStoppingRx || m.state == StateTxCommand || m.state == StateTxWaiting
	m.state = StateClosed
	return txLost
}

// Start begins (or restarts, after Failed) the set-up sequence.
func (m *Modem) Start() ModemOutput { return m.fire(evStart, nil) }

// Timeout reports that the deadline of the last armed Timer passed.
func (m *Modem) Timeout() ModemOutput { return m.fire(evTimeout, nil) }

// Line feeds one response line (without CR/LF).
func (m *Modem) Line(line []byte) (ModemOutput, error) {
	var l ModemLine
	var err error
	if m.cfg.Kind == ModemRAK {
		l, err = ParseRAKLine(line, m.rxBuf[:0])
	} else {
		l, err = ParseRN2483Line(line, m.rxBuf[:0])
	}
	return m.fire(modemEvent(l.Kind), &l), err
}

// Send starts transmitting frame; the modem must be Ready. The frame is
// copied.
func (m *Modem) Send(frame []byte) (ModemOutput, error) {
	if m.state != StateListening {
		return ModemOutput{}, fmt.Errorf("%w (state %s)", ErrModemNotReady, m.state)
	}
	if len(frame) == 0 || len(frame) > m.cfg.MaxFrame {
		return ModemOutput{}, fmt.Errorf("%w: %d bytes, modem takes 1..%d", ErrFrameTooLarge, len(frame), m.cfg.MaxFrame)
	}
	m.tx = append(m.tx[:0], frame...)
	return m.fire(evSend, nil), nil
}

func (m *Modem) fire(ev modemEvent, l *ModemLine) ModemOutput {
	var out ModemOutput
	if l == nil {
		l = &ModemLine{}
	}
	tr := m.table[m.state][ev]
	if tr == nil {
		return out // event ignored in this state
	}
	next := tr.act(m, l, &out)
	if tr.to != stateDynamic {
		next = tr.to
	}
	m.state = next
	return out
}

// command fills out.Write with a command line and arms the timer.
func (m *Modem) command(out *ModemOutput, parts ...string) {
	m.cmd = m.cmd[:0]
	for _, p := range parts {
		m.cmd = append(m.cmd, p...)
	}
	m.cmd = append(m.cmd, '\r', '\n')
	out.Write = m.cmd
	out.Timer = m.cfg.CommandTimeout
}

func (m *Modem) rxCommand(out *ModemOutput) {
	if m.cfg.Kind == ModemRAK {
		m.command(out, "AT+PRECV=65534")
	} else {
		m.command(out, "radio rx 0")
	}
}

// Actions. Each returns the next state when its row says stateDynamic.

func actStart(m *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	m.initIdx = 0
	m.command(out, m.init[0])
	return StateConfiguring
}

func actConfigNext(m *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	m.initIdx++
	if m.initIdx < len(m.init) {
		m.command(out, m.init[m.initIdx])
		return StateConfiguring
	}
	m.rxCommand(out)
	return StateArmingRx
}

func actConfigRefused(m *Modem, l *ModemLine, out *ModemOutput) ModemState {
	out.Failed = fmt.Errorf("%w: %q answered %s", ErrModemRefused, m.init[min(m.initIdx, len(m.init)-1)], l.Kind)
	out.Timer = -1
	return StateFailed
}

func actFail(m *Modem, l *ModemLine, out *ModemOutput) ModemState {
	cause := fmt.Errorf("%w in state %s", ErrModemRefused, m.state)
	if l.Kind == LineUnknown {
		cause = fmt.Errorf("%w in state %s", ErrModemTimeout, m.state)
	}
	if m.state == StateTxCommand || m.state == StateTxWaiting || m.state == StateStoppingRx {
		out.TxDone, out.TxErr = true, cause
	}
	out.Failed = cause
	out.Timer = -1
	return StateFailed
}

func actTimeout(m *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	return actFail(m, &ModemLine{Kind: LineUnknown}, out)
}

func actListening(_ *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	out.Timer = -1
	return StateListening
}

func actDeliver(m *Modem, l *ModemLine, out *ModemOutput) ModemState {
	out.Rx = l.Data
	out.RSSI, out.SNR, out.HasSignal = l.RSSI, l.SNR, l.HasSignal
	return m.state
}

// actDeliverKeepTimer delivers a frame heard while waiting for a command
// answer; the pending deadline stays armed.
func actDeliverKeepTimer(m *Modem, l *ModemLine, out *ModemOutput) ModemState {
	return actDeliver(m, l, out)
}

func actRearm(m *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	m.rxCommand(out)
	return StateArmingRx
}

func actRNHoldFrame(m *Modem, l *ModemLine, out *ModemOutput) ModemState {
	m.rx = append(m.rx[:0], l.Data...)
	m.hasSNR = false
	m.command(out, "radio get snr")
	return StateQuerySNR
}

func actRNGotSNR(m *Modem, l *ModemLine, out *ModemOutput) ModemState {
	if l.Kind == LineNumber {
		m.snr, m.hasSNR = int(l.Num), true
	}
	m.command(out, "radio get rssi")
	return StateQueryRSSI
}

func actRNGotRSSI(m *Modem, l *ModemLine, out *ModemOutput) ModemState {
	out.Rx = m.rx
	if l.Kind == LineNumber && m.hasSNR {
		out.RSSI, out.SNR, out.HasSignal = int(l.Num), m.snr, true
	}
	m.rxCommand(out)
	return StateArmingRx
}

func actStopRx(m *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	if m.cfg.Kind == ModemRAK {
		m.command(out, "AT+PRECV=0")
	} else {
		m.command(out, "radio rxstop")
	}
	return StateStoppingRx
}

func actTxCommand(m *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	const digits = "0123456789ABCDEF"
	if m.cfg.Kind == ModemRAK {
		m.command(out, "AT+PSEND=")
	} else {
		m.command(out, "radio tx ")
	}
	m.cmd = m.cmd[:len(m.cmd)-2] // reopen the line for the hex payload
	for _, b := range m.tx {
		m.cmd = append(m.cmd, digits[b>>4], digits[b&0x0F])
	}
	m.cmd = append(m.cmd, '\r', '\n')
	out.Write = m.cmd
	return StateTxCommand
}

func actTxStarted(m *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	out.Timer = m.cfg.CommandTimeout + m.cfg.LoRa.Airtime(len(m.tx))
	return StateTxWaiting
}

func actTxOK(m *Modem, _ *ModemLine, out *ModemOutput) ModemState {
	out.TxDone = true
	m.rxCommand(out)
	return StateArmingRx
}

func actTxRefused(m *Modem, l *ModemLine, out *ModemOutput) ModemState {
	out.TxDone = true
	out.TxErr = fmt.Errorf("%w: transmission answered %s", ErrModemRefused, l.Kind)
	m.rxCommand(out)
	return StateArmingRx
}

var (
	both   = []ModemKind{ModemRN2483, ModemRAK}
	rnOnly = []ModemKind{ModemRN2483}
	rkOnly = []ModemKind{ModemRAK}
)

// modemTransitions is the whole behaviour of the driver. Events not
// listed for a state are ignored (unknown lines, late answers).
var modemTransitions = []modemTransition{
	{both, StateClosed, evStart, StateConfiguring, actStart},
	{both, StateFailed, evStart, StateConfiguring, actStart},

	{both, StateConfiguring, modemEvent(LineOK), stateDynamic, actConfigNext},
	{rnOnly, StateConfiguring, modemEvent(LineNumber), stateDynamic, actConfigNext}, // mac pause
	{both, StateConfiguring, modemEvent(LineBusy), StateFailed, actConfigRefused},
	{both, StateConfiguring, modemEvent(LineInvalid), StateFailed, actConfigRefused},
	{both, StateConfiguring, modemEvent(LineError), StateFailed, actConfigRefused},
	{rnOnly, StateConfiguring, modemEvent(LineRadioErr), StateFailed, actConfigRefused},
	{both, StateConfiguring, evTimeout, StateFailed, actTimeout},

	{both, StateArmingRx, modemEvent(LineOK), StateListening, actListening},
	{both, StateArmingRx, modemEvent(LineBusy), StateFailed, actFail},
	{both, StateArmingRx, modemEvent(LineInvalid), StateFailed, actFail},
	{both, StateArmingRx, modemEvent(LineError), StateFailed, actFail},
	{rkOnly, StateArmingRx, modemEvent(LineRx), StateArmingRx, actDeliverKeepTimer},
	{both, StateArmingRx, evTimeout, StateFailed, actTimeout},

	{rnOnly, StateListening, modemEvent(LineRx), StateQuerySNR, actRNHoldFrame},
	{rkOnly, StateListening, modemEvent(LineRx), StateListening, actDeliver},
	{rnOnly, StateListening, modemEvent(LineRadioErr), StateArmingRx, actRearm},
	{rkOnly, StateListening, modemEvent(LineRxTimeout), StateArmingRx, actRearm},
	{both, StateListening, evSend, StateStoppingRx, actStopRx},

	{rnOnly, StateQuerySNR, modemEvent(LineNumber), StateQueryRSSI, actRNGotSNR},
	{rnOnly, StateQuerySNR, modemEvent(LineInvalid), StateQueryRSSI, actRNGotSNR},
	{rnOnly, StateQuerySNR, evTimeout, StateFailed, actTimeout},
	{rnOnly, StateQueryRSSI, modemEvent(LineNumber), StateArmingRx, actRNGotRSSI},
	{rnOnly, StateQueryRSSI, modemEvent(LineInvalid), StateArmingRx, actRNGotRSSI},
	{rnOnly, StateQueryRSSI, evTimeout, StateFailed, actTimeout},

	{both, StateStoppingRx, modemEvent(LineOK), StateTxCommand, actTxCommand},
	{rnOnly, StateStoppingRx, modemEvent(LineInvalid), StateTxCommand, actTxCommand}, // rx had already ended
	{both, StateStoppingRx, modemEvent(LineRx), StateStoppingRx, actDeliverKeepTimer},
	{rnOnly, StateStoppingRx, modemEvent(LineRadioErr), StateStoppingRx, actIgnoreKeep},
	{both, StateStoppingRx, modemEvent(LineBusy), StateFailed, actFail},
	{rkOnly, StateStoppingRx, modemEvent(LineInvalid), StateFailed, actFail},
	{both, StateStoppingRx, modemEvent(LineError), StateFailed, actFail},
	{both, StateStoppingRx, evTimeout, StateFailed, actTimeout},

	{both, StateTxCommand, modemEvent(LineOK), StateTxWaiting, actTxStarted},
	{both, StateTxCommand, modemEvent(LineBusy), StateArmingRx, actTxRefused},
	{both, StateTxCommand, modemEvent(LineInvalid), StateArmingRx, actTxRefused},
	{both, StateTxCommand, modemEvent(LineError), StateArmingRx, actTxRefused},
	{rkOnly, StateTxCommand, modemEvent(LineRx), StateTxCommand, actDeliverKeepTimer},
	{both, StateTxCommand, evTimeout, StateFailed, actTimeout},

	{both, StateTxWaiting, modemEvent(LineTxDone), StateArmingRx, actTxOK},
	{rnOnly, StateTxWaiting, modemEvent(LineRadioErr), StateArmingRx, actTxRefused},
	{rkOnly, StateTxWaiting, modemEvent(LineError), StateArmingRx, actTxRefused},
	{rkOnly, StateTxWaiting, modemEvent(LineRx), StateTxWaiting, actDeliverKeepTimer},
	{both, StateTxWaiting, evTimeout, StateFailed, actTimeout},
}

// actIgnoreKeep ignores an event; the current deadline stays armed.
func actIgnoreKeep(m *Modem, _ *ModemLine, _ *ModemOutput) ModemState { return m.state }

var rn2483Table, rakTable [numModemStates][numModemEvents]*modemTransition

func init() {
	for i := range modemTransitions {
		tr := &modemTransitions[i]
		for _, k := range tr.kinds {
			t := &rn2483Table
			if k == ModemRAK {
				t = &rakTable
			}
			if t[tr.from][tr.on] == nil { // first row wins; a test forbids duplicates
				t[tr.from][tr.on] = tr
			}
		}
	}
}
