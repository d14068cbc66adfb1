package radios

import (
	"math"
	"testing"
	"time"
)

// TestAirtimePROTOCOL checks the table of PROTOCOL.md §4 (BW125, CR4/5,
// 8-symbol preamble, explicit header, CRC on, LDRO auto), to 0.1 ms.
func TestAirtimePROTOCOL(t *testing.T) {
	table := []struct {
		pl int
		ms [6]float64 // SF7..SF12
	}{
		{5, [6]float64{31.0, 62.0, 123.9, 247.8, 495.6, 827.4}},
		{2, [6]float64{31.0, 51.7, 103.4, 206.8, 413.7, 827.4}},
		{15, [6]float64{46.3, 92.7, 164.9, 329.7, 659.5, 1155.1}},
		{27, [6]float64{66.8, 123.4, 226.3, 411.6, 823.3, 1646.6}},
		{57, [6]float64{107.8, 195.1, 349.2, 657.4, 1396.7, 2629.6}},
		{255, [6]float64{399.6, 707.1, 1250.3, 2295.8, 5001.2, 9019.4}},
	}
	for _, row := range table {
		for i, want := range row.ms {
			p := LoRaParams{SF: 7 + i, BandwidthHz: 125000}
			got := float64(p.Airtime(row.pl)) / float64(time.Millisecond)
			if math.Abs(got-want) > 0.06 {
				t.Errorf("SF%d PL%d: %.2f ms, want %.1f", 7+i, row.pl, got, want)
			}
		}
	}
}

func TestAirtimeOptions(t *testing.T) {
	base := LoRaParams{SF: 12, BandwidthHz: 125000}
	if !base.lowDataRate() || (LoRaParams{SF: 10, BandwidthHz: 125000}).lowDataRate() {
		t.Error("LDRO auto at 125 kHz")
	}
	if (LoRaParams{SF: 11, BandwidthHz: 250000}).lowDataRate() || !(LoRaParams{SF: 12, BandwidthHz: 250000}).lowDataRate() {
		t.Error("LDRO auto at 250 kHz")
	}
	off := base
	off.LowDataRate = LDROff
	if off.Airtime(27) >= base.Airtime(27) {
		t.Error("LDRO off should be shorter")
	}
	ih := base
	ih.ImplicitHeader = true
	nocrc := base
	nocrc.NoCRC = true
	if ih.Airtime(27) > base.Airtime(27) || nocrc.Airtime(27) > base.Airtime(27) {
		t.Error("implicit header / no CRC should not be longer")
	}
	cr8 := LoRaParams{SF: 7, BandwidthHz: 125000, CodingRate: 4}
	if cr8.Airtime(27) <= (LoRaParams{SF: 7, BandwidthHz: 125000}).Airtime(27) {
		t.Error("CR 4/8 should be longer")
	}
	wide := LoRaParams{SF: 7, BandwidthHz: 500000}
	if got := wide.Airtime(5); got*4 != (LoRaParams{SF: 7, BandwidthHz: 125000}).Airtime(5) {
		t.Errorf("500 kHz: %v", got)
	}
	for _, bad := range []LoRaParams{{SF: 5, BandwidthHz: 125000}, {SF: 13, BandwidthHz: 125000}, {SF: 7}, {SF: 7, BandwidthHz: 125000, CodingRate: 5}} {
		if bad.Validate() == nil || bad.Airtime(10) != 0 {
			t.Errorf("%+v accepted", bad)
		}
	}
	if s := (LoRaParams{SF: 9, BandwidthHz: 125000}).String(); s != "SF9BW125 4/5" {
		t.Error(s)
	}
	// The 4-byte address header costs one 5-symbol block at SF12 for a
	// 27-byte PUBLISH (docs/RADIO_HEADER.md).
	if d := base.Airtime(31) - base.Airtime(27); d != 5*base.Symbol() {
		t.Errorf("header cost %v", d)
	}
}

func BenchmarkAirtime(b *testing.B) {
	p := LoRaParams{SF: 12, BandwidthHz: 125000}
	for i := 0; b.Loop(); i++ {
		_ = p.Airtime(i & 0xFF)
	}
}
