package radios

import (
	"fmt"
	"time"
)

// LowDataRate selects low-data-rate optimisation.
type LowDataRate uint8

// Low-data-rate optimisation modes.
const (
	// LDRAuto turns the optimisation on when a symbol lasts 16 ms or
	// more: SF11 and SF12 at 125 kHz, SF12 at 250 kHz.
	LDRAuto LowDataRate = iota
	LDROn               // always on
	LDROff              // always off
)

// LoRaParams are the modulation parameters that determine time on air.
// The zero value of the optional fields gives the common defaults: an
// 8-symbol preamble, explicit header, CRC on, automatic low-data-rate
// optimisation.
type LoRaParams struct {
	SF          int // spreading factor 6..12
	BandwidthHz int // 125000, 250000 or 500000 (any positive value accepted)
	CodingRate  int // 1..4 for 4/5..4/8; 0 means 1
	Preamble    int // preamble symbols; 0 means 8
	// ImplicitHeader drops the PHY header (both ends must agree on length).
	ImplicitHeader bool
	// NoCRC disables the payload CRC.
	NoCRC bool
	// LowDataRate selects low-data-rate optimisation; LDRAuto by default.
	LowDataRate LowDataRate
}

// withDefaults fills the optional fields.
func (p LoRaParams) withDefaults() LoRaParams {
	if p.CodingRate == 0 {
		p.CodingRate = 1
	}
	if p.Preamble == 0 {
		p.Preamble = 8
	}
	return p
}

// Validate reports an error for parameters outside the LoRa range.
func (p LoRaParams) Validate() error {
	p = p.withDefaults()
	switch {
	case p.SF < 6 || p.SF > 12:
		return fmt.Errorf("lora: spreading factor %d outside 6..12", p.SF)
	case p.BandwidthHz <= 0:
		return fmt.Errorf("lora: bandwidth %d Hz not positive", p.BandwidthHz)
	case p.CodingRate < 1 || p.CodingRate > 4:
		return fmt.Errorf("lora: coding rate %d outside 1..4 (4/5..4/8)", p.CodingRate)
	case p.Preamble < 0 || p.Preamble > 65535:
		return fmt.Errorf("lora: preamble %d symbols outside 0..65535", p.Preamble)
	}
	return nil
}

// Symbol returns the duration of one symbol, 2^SF / BW.
func (p LoRaParams) Symbol() time.Duration {
	if p.BandwidthHz <= 0 || p.SF < 0 || p.SF > 30 {
		return 0
	}
	return time.Duration(int64(time.Second) * (int64(1) << p.SF) / int64(p.BandwidthHz))
}

// lowDataRate reports whether the optimisation applies.
func (p LoRaParams) lowDataRate() bool {
	switch p.LowDataRate {
	case LDROn:
		return true
	case LDROff:
		return false
	}
	return p.Symbol() >= 16*time.Millisecond
}

// PayloadSymbols returns the number of payload symbols (including the 8
// fixed ones) for a PHY payload of n bytes.
func (p LoRaParams) PayloadSymbols(n int) int {
	p = p.withDefaults()
	de, ih, crc := 0, 0, 1
	if p.lowDataRate() {
		de = 1
	}
	if p.ImplicitHeader {
		ih = 1
	}
	if p.NoCRC {
		crc = 0
	}
	num := 8*n - 4*p.SF + 28 + 16*crc - 20*ih
	den := 4 * (p.SF - 2*de)
	if den <= 0 {
		return 8
	}
	blocks := 0
	if num > 0 {
		blocks = (num + den - 1) / den
	}
	return 8 + blocks*(p.CodingRate+4)
}

// Airtime returns the time on air of a PHY payload of n bytes, by the
// Semtech formula (SX127x datasheet, AN1200.13):
//
//	Tsym = 2^SF / BW
//	Tpreamble = (Npreamble + 4.25) * Tsym
//	Npayload = 8 + max(ceil((8n - 4SF + 28 + 16CRC - 20IH) / (4(SF - 2DE))) * (CR + 4), 0)
//	ToA = Tpreamble + Npayload * Tsym
//
// Invalid parameters (see Validate) give 0.
func (p LoRaParams) Airtime(n int) time.Duration {
	if p.Validate() != nil || n < 0 {
		return 0
	}
	p = p.withDefaults()
	// Work in quarter symbols to keep the 4.25 exact.
	quarters := int64(4*p.Preamble+17) + 4*int64(p.PayloadSymbols(n))
	return time.Duration(quarters * int64(time.Second) * (int64(1) << p.SF) / (4 * int64(p.BandwidthHz)))
}

// String formats the parameters like "SF7BW125 4/5".
func (p LoRaParams) String() string {
	p = p.withDefaults()
	return fmt.Sprintf("SF%dBW%d 4/%d", p.SF, p.BandwidthHz/1000, p.CodingRate+4)
}
