package semtech

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sngate/sngate/radios"
)

// Config configures a concentrator Link. It is a plain struct: cmd/sngate
// fills it from the configuration file. Zero fields take the defaults
// noted.
type Config struct {
	// Listen is the UDP address the packet forwarders send to (their
	// server_address, serv_port_up and serv_port_down); default ":1700".
	Listen string
	// Name labels the link in logs and metrics; default "semtech".
	Name string
	// NetworkID is the raw-LoRa address header network
	// (docs/RADIO_HEADER.md). Frames of other networks are ignored.
	NetworkID uint8

	// RXDelay is the time from the end of a node's uplink to its receive
	// window: a downlink is scheduled at the uplink's tmst + RXDelay.
	// Default 1 s; it must match the node firmware.
	RXDelay time.Duration
	// TxLead is how long before the receive window the PULL_RESP must
	// leave the gateway, to cover the forwarder's scheduling margin and
	// the network in between; default 200 ms. Raise it for forwarders
	// reached over a slow backhaul. A frame handed over later waits for
	// the node's next uplink.
	TxLead time.Duration
	// DedupWindow is how long after the first copy of an uplink other
	// forwarders' copies count as duplicates; default 200 ms. While
	// more than one forwarder is connected the downlink waits this long,
	// so it goes through the forwarder that heard the node best. It
	// must be shorter than RXDelay - TxLead.
	DedupWindow time.Duration

	// NoIQInversion sends downlinks with normal IQ polarity (txpk ipol
	// false). By default downlinks are IQ-inverted (ipol true), as in
	// LoRaWAN, so nodes never hear each other's uplinks; the node's
	// receiver must then invert IQ too (RN2483: "radio set iqi on").
	NoIQInversion bool
	// PowerDBm is the downlink transmit power; default 14 dBm.
	PowerDBm int
	// RFChain is the concentrator RF chain used to transmit (txpk rfch);
	// default 0.
	RFChain uint
	// Preamble is the downlink preamble length in symbols; 0 leaves the
	// forwarder's default (8).
	Preamble int
	// NoCRC sends downlinks without a payload CRC (txpk ncrc).
	NoCRC bool

	// Region names the duty-cycle rules: "EU868" (default), "US915" or
	// "none". RegionRules, when it has sub-bands, overrides it.
	Region      string
	RegionRules radios.Region
	// Budget tunes the airtime ledgers (one per forwarder and sub-band).
	Budget radios.BudgetConfig

	// BroadcastFreqHz is the frequency of ADVERTISE and GWINFO
	// broadcasts, sent at once ("imme") through every forwarder; 0 (the
	// default) disables Broadcast, and the gateway answers SEARCHGW with
	// a unicast GWINFO in the searching node's receive window instead.
	BroadcastFreqHz uint32
	// BroadcastDataRate and BroadcastCodingRate are the broadcast
	// modulation; default "SF12BW125" and "4/5".
	BroadcastDataRate   string
	BroadcastCodingRate string

	// Forwarders lists the gateway EUIs (16 hex digits) allowed to feed
	// the link; empty allows any.
	Forwarders []string
	// MaxForwarders bounds the forwarders tracked; default 16. A new one
	// beyond it replaces the one heard least recently.
	MaxForwarders int
	// MaxNodes bounds the nodes tracked (signal, receive window, queue);
	// default 4096. A new one beyond it replaces the one heard least
	// recently, preferring nodes with nothing queued.
	MaxNodes int
	// NodeQueue bounds the downlinks waiting for one node's receive
	// window; default 8. MaxQueued bounds them over all nodes; default
	// 4096. A full queue answers transport.ErrCongested.
	NodeQueue int
	MaxQueued int
	// FrameTTL is how long a downlink may wait for a receive window
	// before it is dropped and reported on TxFailures; default 1 h.
	FrameTTL time.Duration
	// RxQueue bounds uplinks waiting for ReadFrom; default 64.
	RxQueue int
	// FailureQueue bounds undelivered TxFailures; default 64.
	FailureQueue int
	// MaxInflight bounds the downlinks awaiting a TX_ACK; default 256.
	MaxInflight int
	// PayloadLimit caps the MQTT-SN frame size (the link MTU); default
	// and maximum 251 (a 255-byte LoRa frame less the address header).
	PayloadLimit int

	// Logger receives link events; nil discards them.
	Logger *slog.Logger
	// Now is the clock of receive windows, expiry and airtime budgets;
	// nil means time.Now.
	Now func() time.Time

	// afterFunc schedules the end of a dedup window; tests replace it.
	afterFunc func(d time.Duration, f func()) (stop func() bool)
}

const (
	maxPayload    = 255 - radios.HeaderLen
	defaultListen = ":1700"
)

func (c Config) withDefaults() (Config, error) {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if c.Name == "" {
		c.Name = "semtech"
	}
	if c.RXDelay <= 0 {
		c.RXDelay = time.Second
	}
	if c.TxLead <= 0 {
		c.TxLead = 200 * time.Millisecond
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = 200 * time.Millisecond
	}
	if c.RXDelay > time.Hour {
		return c, fmt.Errorf("semtech: rx delay %v longer than an hour", c.RXDelay)
	}
	if c.TxLead+c.DedupWindow >= c.RXDelay {
		return c, fmt.Errorf("semtech: tx lead %v plus dedup window %v leave no time before the %v receive window", c.TxLead, c.DedupWindow, c.RXDelay)
	}
	if c.PowerDBm == 0 {
		c.PowerDBm = 14
	}
	if c.Preamble < 0 || c.Preamble > 65535 {
		return c, fmt.Errorf("semtech: preamble %d symbols outside 0..65535", c.Preamble)
	}
	if len(c.RegionRules.SubBands) == 0 {
		r, err := radios.RegionByName(defaultStr(c.Region, "EU868"))
		if err != nil {
			return c, fmt.Errorf("semtech: %w", err)
		}
		c.RegionRules = r
	}
	c.BroadcastDataRate = defaultStr(c.BroadcastDataRate, "SF12BW125")
	c.BroadcastCodingRate = defaultStr(c.BroadcastCodingRate, "4/5")
	if c.BroadcastFreqHz != 0 {
		if _, err := loraParams(radios.DataRate{LoRa: c.BroadcastDataRate}, c.BroadcastCodingRate, c.Preamble, c.NoCRC); err != nil {
			return c, fmt.Errorf("semtech: broadcast: %w", err)
		}
		if _, err := c.RegionRules.SubBandFor(c.BroadcastFreqHz); err != nil {
			return c, fmt.Errorf("semtech: broadcast: %w", err)
		}
	}
	for _, s := range c.Forwarders {
		if _, err := ParseEUI(s); err != nil {
			return c, err
		}
	}
	c.MaxForwarders = defaultInt(c.MaxForwarders, 16)
	c.MaxNodes = defaultInt(c.MaxNodes, 4096)
	c.NodeQueue = defaultInt(c.NodeQueue, 8)
	c.MaxQueued = defaultInt(c.MaxQueued, 4096)
	c.RxQueue = defaultInt(c.RxQueue, 64)
	c.FailureQueue = defaultInt(c.FailureQueue, 64)
	c.MaxInflight = min(defaultInt(c.MaxInflight, 256), 1<<15)
	if c.FrameTTL <= 0 {
		c.FrameTTL = time.Hour
	}
	if c.PayloadLimit <= 0 || c.PayloadLimit > maxPayload {
		c.PayloadLimit = maxPayload
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.afterFunc == nil {
		c.afterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	return c, nil
}

// ParseEUI parses a gateway EUI written as 16 hex digits (separators
// '-' and ':' allowed).
func ParseEUI(s string) ([8]byte, error) {
	var e [8]byte
	h := strings.NewReplacer("-", "", ":", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 8 {
		return e, fmt.Errorf("semtech: gateway EUI %q: want 16 hex digits", s)
	}
	copy(e[:], b)
	return e, nil
}

// FormatEUI writes a gateway EUI as 16 upper-case hex digits.
func FormatEUI(e [8]byte) string { return strings.ToUpper(hex.EncodeToString(e[:])) }

// loraParams turns a forwarder data rate and coding rate into the
// modulation parameters of the airtime formula.
func loraParams(d radios.DataRate, codr string, preamble int, noCRC bool) (radios.LoRaParams, error) {
	sf, bw, err := d.SFBW()
	if err != nil {
		return radios.LoRaParams{}, err
	}
	cr := 1
	if codr != "" {
		var den int
		if _, err := fmt.Sscanf(codr, "4/%d", &den); err != nil || den < 5 || den > 8 {
			return radios.LoRaParams{}, fmt.Errorf("%w: codr %q", radios.ErrGWMPData, codr)
		}
		cr = den - 4
	}
	p := radios.LoRaParams{SF: sf, BandwidthHz: bw, CodingRate: cr, Preamble: preamble, NoCRC: noCRC}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: datr %q: %v", radios.ErrGWMPData, d.LoRa, err)
	}
	return p, nil
}

func defaultStr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func defaultInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}
