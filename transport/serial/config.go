package serial

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/sngate/sngate/radios"
)

// Kind selects what the serial device speaks.
type Kind string

// Supported framer kinds.
const (
	KindXBee     Kind = "xbee"     // Digi XBee in API mode (AP=1 or AP=2)
	KindLoRaLink Kind = "loralink" // Paho LoRaLink modems (one or two ports)
	KindSLIP     Kind = "slip"     // a bridge MCU speaking SLIP
	KindCOBS     Kind = "cobs"     // a bridge MCU speaking COBS
	KindRN2483   Kind = "rn2483"   // Microchip RN2483/RN2903 in LoRa P2P mode
	KindRAK      Kind = "rak"      // RAK RUI3 modules in LoRa P2P mode
)

// Config configures a serial Link. It is a plain struct: cmd/sngate fills
// it from the configuration file. Zero fields take the defaults noted.
type Config struct {
	// Kind is the framer; required.
	Kind Kind
	// Device is the serial device path, e.g. /dev/ttyUSB0; required.
	Device string
	// Baud is the line speed; default 9600 (xbee), 57600 (rn2483) or
	// 115200 (the others). 8N1 always.
	Baud int
	// Name labels the link in logs and metrics; default the Kind.
	Name string

	// APIMode is the XBee AP parameter, 1 or 2; default 2 (escaped).
	APIMode int
	// PayloadLimit caps the MQTT-SN frame size (the link MTU). Defaults:
	// xbee 84 (Zigbee unicast; use 100 for 802.15.4), loralink 244,
	// slip/cobs 255; the ASCII modems take their frame limit (255 RN2483,
	// 250 RUI3) minus the 4-byte address header.
	PayloadLimit int
	// XBeeRadius is the broadcast radius of XBee broadcasts (0 = max).
	XBeeRadius uint8

	// TxDevice is LoRaLink's separate transmit modem; empty means Device
	// both receives and transmits.
	TxDevice string
	// TxBaud is the TxDevice line speed; default Baud.
	TxBaud int
	// DeliveryTimeout is how long LoRaLink waits for the TX modem's
	// answer; default 10 s.
	DeliveryTimeout time.Duration

	// NetworkID is the raw-LoRa address header network (rn2483, rak).
	NetworkID uint8
	// LoRa are the modulation parameters (rn2483, rak); SF and
	// BandwidthHz are required for them.
	LoRa radios.LoRaParams
	// FrequencyHz is the P2P channel (rn2483, rak); required for them.
	FrequencyHz uint32
	// PowerDBm is the transmit power; 0 = modem default.
	PowerDBm int
	// SyncWord sets the RN2483 sync word; 0 = modem default.
	SyncWord uint8
	// Region names the duty-cycle rules: "EU868", "US915" or "none";
	// default EU868. RegionRules, when it has sub-bands, overrides it.
	Region      string
	RegionRules radios.Region
	// Budget tunes the duty-cycle ledger (window, priority shares).
	Budget radios.BudgetConfig
	// CommandTimeout bounds an ASCII modem's answer; default 2 s. A modem
	// that misses it is reported and reopened.
	CommandTimeout time.Duration

	// MaxFrame bounds one decoded frame on the wire; default 512.
	MaxFrame int
	// RxQueue bounds frames waiting for ReadFrom; default 64. Frames
	// arriving at a full queue are dropped and counted.
	RxQueue int
	// TxQueue bounds frames waiting for a modem (loralink, rn2483, rak);
	// default 32. A full queue answers transport.ErrCongested.
	TxQueue int
	// FailureQueue bounds undelivered TxFailures; default 64.
	FailureQueue int
	// MaxNodes bounds the per-address signal table; default 4096.
	MaxNodes int

	// ReopenMin and ReopenMax bound the exponential back-off between
	// attempts to reopen a failed device; default 100 ms and 30 s.
	ReopenMin, ReopenMax time.Duration

	// Logger receives link events; nil discards them.
	Logger *slog.Logger
	// Now is the clock of the airtime budget; nil means time.Now.
	Now func() time.Time
	// OnPortState, if set, is called (from the link's goroutines) when a
	// device opens or fails; for metrics and tests.
	OnPortState func(PortEvent)
}

// PortEvent reports a device opening or failing.
type PortEvent struct {
	Device string
	Up     bool  // true: opened (or reopened); false: failed
	Err    error // the cause when Up is false
}

func (c Config) withDefaults() (Config, error) {
	if c.Device == "" {
		return c, fmt.Errorf("serial: no device for %s link", c.Kind)
	}
	if c.Name == "" {
		c.Name = string(c.Kind)
	}
	if c.Baud == 0 {
		switch c.Kind {
		case KindXBee:
			c.Baud = 9600
		case KindRN2483:
			c.Baud = 57600
		default:
			c.Baud = 115200
		}
	}
	if c.TxBaud == 0 {
		c.TxBaud = c.Baud
	}
	if c.APIMode == 0 {
		c.APIMode = 2
	}
	if c.APIMode != 1 && c.APIMode != 2 {
		return c, fmt.Errorf("serial: XBee API mode %d, want 1 or 2", c.APIMode)
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = 10 * time.Second
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 2 * time.Second
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 512
	}
	if c.RxQueue <= 0 {
		c.RxQueue = 64
	}
	if c.TxQueue <= 0 {
		c.TxQueue = 32
	}
	if c.FailureQueue <= 0 {
		c.FailureQueue = 64
	}
	if c.MaxNodes <= 0 {
		c.MaxNodes = 4096
	}
	if c.ReopenMin <= 0 {
		c.ReopenMin = 100 * time.Millisecond
	}
	if c.ReopenMax < c.ReopenMin {
		c.ReopenMax = max(30*time.Second, c.ReopenMin)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	defLimit := 0
	switch c.Kind {
	case KindXBee:
		defLimit = 84
	case KindLoRaLink:
		defLimit = 244
	case KindSLIP, KindCOBS:
		defLimit = 255
	case KindRN2483:
		defLimit = 255 - radios.HeaderLen
	case KindRAK:
		defLimit = 250 - radios.HeaderLen
	default:
		return c, fmt.Errorf("serial: unknown link kind %q", c.Kind)
	}
	if c.PayloadLimit <= 0 || c.PayloadLimit > defLimit && (c.Kind == KindRN2483 || c.Kind == KindRAK) {
		c.PayloadLimit = defLimit
	}
	c.PayloadLimit = min(c.PayloadLimit, c.MaxFrame)
	if c.Kind == KindRN2483 || c.Kind == KindRAK {
		if err := c.LoRa.Validate(); err != nil {
			return c, fmt.Errorf("serial: %s link: %w", c.Kind, err)
		}
		if c.FrequencyHz == 0 {
			return c, fmt.Errorf("serial: %s link: no frequency", c.Kind)
		}
		if len(c.RegionRules.SubBands) == 0 {
			r, err := radios.RegionByName(defaultStr(c.Region, "EU868"))
			if err != nil {
				return c, fmt.Errorf("serial: %w", err)
			}
			c.RegionRules = r
		}
	}
	return c, nil
}

func defaultStr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
