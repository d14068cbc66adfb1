package radios

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestEU868SubBands(t *testing.T) {
	cases := []struct {
		hz   uint32
		name string
		dc   float64
	}{
		{868_100_000, "868.0-868.6", 0.01},
		{868_500_000, "868.0-868.6", 0.01},
		{869_525_000, "869.4-869.65", 0.10},
		{868_800_000, "868.7-869.2", 0.001},
		{864_000_000, "863-865", 0.001},
		{867_100_000, "865-868", 0.01},
		{869_800_000, "869.7-870", 0.01},
	}
	for _, c := range cases {
		sb, err := EU868.SubBandFor(c.hz)
		if err != nil || sb.Name != c.name || sb.DutyCycle != c.dc {
			t.Errorf("%d: %+v %v", c.hz, sb, err)
		}
	}
	for _, hz := range []uint32{868_650_000, 869_300_000, 869_675_000, 915_000_000} {
		if _, err := EU868.SubBandFor(hz); !errors.Is(err, ErrNoSubBand) {
			t.Errorf("%d: %v", hz, err)
		}
	}
	for _, n := range []string{"eu868", "US915", "none", ""} {
		if _, err := RegionByName(n); err != nil {
			t.Error(n, err)
		}
	}
	if _, err := RegionByName("mars"); err == nil {
		t.Error("unknown region accepted")
	}
}

func TestBudgetOnePercent(t *testing.T) {
	sb, _ := EU868.SubBandFor(868_100_000)
	b := NewBudget(sb, BudgetConfig{})
	if b.Limit() != 36*time.Second || b.Unlimited() {
		t.Fatalf("limit %v", b.Limit())
	}
	// SF12 27-byte PUBLISH: 1646.6 ms; 21 fit in 36 s at ack priority.
	toa := LoRaParams{SF: 12, BandwidthHz: 125000}.Airtime(27)
	n := 0
	for b.Reserve(toa, PriorityAck, t0) == nil {
		n++
	}
	if n != 21 {
		t.Errorf("fit %d frames", n)
	}
	if b.Used(t0) != time.Duration(n)*toa || b.Remaining(t0) != 36*time.Second-time.Duration(n)*toa {
		t.Errorf("used %v remaining %v", b.Used(t0), b.Remaining(t0))
	}
	err := b.Reserve(toa, PriorityAck, t0)
	if !errors.Is(err, ErrDutyCycle) || b.Rejected(PriorityAck) != 2 {
		t.Errorf("%v %d", err, b.Rejected(PriorityAck))
	}
	// Still counted 59 minutes later (within the window) ...
	if b.Reserve(toa, PriorityAck, t0.Add(59*time.Minute)) == nil {
		t.Error("budget freed too early")
	}
	w := b.WaitTime(toa, PriorityAck, t0)
	if w <= 59*time.Minute || w > 61*time.Minute {
		t.Errorf("wait %v", w)
	}
	// ... and free once the whole bucket has left the window.
	later := t0.Add(w)
	if err := b.Reserve(toa, PriorityAck, later); err != nil {
		t.Errorf("after wait: %v", err)
	}
	if b.Used(later) != toa || b.Sent() != uint64(n+1) {
		t.Errorf("used %v sent %d", b.Used(later), b.Sent())
	}
}

func TestBudgetPriorityShares(t *testing.T) {
	b := NewBudget(SubBand{Name: "x", DutyCycle: 0.01}, BudgetConfig{})
	// Fill to 60 % of 36 s.
	if err := b.Reserve(21600*time.Millisecond, PriorityAck, t0); err != nil {
		t.Fatal(err)
	}
	frame := time.Second
	if !errors.Is(b.Reserve(frame, PriorityAdvertise, t0), ErrDutyCycle) {
		t.Error("advertise allowed past 50 %")
	}
	if b.WaitTime(frame, PriorityAdvertise, t0) <= 0 {
		t.Error("advertise wait")
	}
	for _, p := range []Priority{PriorityRegister, PriorityDelivery, PriorityAck} {
		if err := b.Reserve(frame, p, t0); err != nil {
			t.Errorf("prio %d: %v", p, err)
		}
	}
	// 24.6 s used: register (27 s cap) still, delivery (32.4 s) yes.
	if err := b.Reserve(3*time.Second, PriorityRegister, t0); !errors.Is(err, ErrDutyCycle) {
		t.Errorf("register past share: %v", err)
	}
	if b.WaitTime(40*time.Second, PriorityAck, t0) != -1 {
		t.Error("frame larger than budget should never fit")
	}
	if b.WaitTime(time.Millisecond, PriorityAck, t0) != 0 {
		t.Error("small ack should fit now")
	}
}

func TestBudgetUnlimitedAndDwell(t *testing.T) {
	b := NewBudget(US915.SubBands[0], BudgetConfig{})
	if !b.Unlimited() || b.Remaining(t0) != -1 {
		t.Error("US915 has no duty cycle")
	}
	for range 1000 {
		if err := b.Reserve(300*time.Millisecond, PriorityAdvertise, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Reserve(500*time.Millisecond, PriorityAck, t0); !errors.Is(err, ErrDwellTime) {
		t.Errorf("dwell: %v", err)
	}
	if b.WaitTime(500*time.Millisecond, PriorityAck, t0) != -1 {
		t.Error("dwell wait")
	}
}

func TestRetryIntervalGrowsWithAirtime(t *testing.T) {
	b := NewBudget(SubBand{Name: "x", DutyCycle: 0.01}, BudgetConfig{})
	var last time.Duration
	for sf := 7; sf <= 12; sf++ {
		r := b.RetryInterval(LoRaParams{SF: sf, BandwidthHz: 125000}.Airtime(27), t0)
		if r <= last {
			t.Errorf("SF%d: %v not above %v", sf, r, last)
		}
		last = r
	}
	if last < 170*time.Second || last > 180*time.Second {
		t.Errorf("SF12 retry %v", last)
	}
	// An exhausted budget adds the wait.
	toa := LoRaParams{SF: 12, BandwidthHz: 125000}.Airtime(27)
	before := b.RetryInterval(toa, t0)
	_ = b.Reserve(36*time.Second-toa/2, PriorityAck, t0)
	if after := b.RetryInterval(toa, t0); after < before+50*time.Minute {
		t.Errorf("exhausted retry %v", after)
	}
	u := NewBudget(SubBand{Name: "u"}, BudgetConfig{})
	if u.RetryInterval(time.Second, t0) != 11*time.Second {
		t.Error("unlimited retry")
	}
}

func TestDutyCyclePerSubBand(t *testing.T) {
	d := NewDutyCycle(EU868, BudgetConfig{})
	// 0.1 % band: 3.6 s per hour.
	if err := d.Reserve(868_800_000, 3500*time.Millisecond, PriorityAck, t0); err != nil {
		t.Fatal(err)
	}
	if err := d.Reserve(868_900_000, 200*time.Millisecond, PriorityAck, t0); !errors.Is(err, ErrDutyCycle) {
		t.Errorf("same sub-band: %v", err)
	}
	if err := d.Reserve(869_525_000, 200*time.Millisecond, PriorityAck, t0); err != nil {
		t.Errorf("other sub-band: %v", err)
	}
	if err := d.Reserve(869_300_000, time.Millisecond, PriorityAck, t0); !errors.Is(err, ErrNoSubBand) {
		t.Errorf("gap: %v", err)
	}
	b, _ := d.Budget(868_850_000)
	if b.Used(t0) != 3500*time.Millisecond {
		t.Error("ledger not shared within sub-band")
	}
}

func TestTxQueueOrder(t *testing.T) {
	q := NewTxQueue[string](5)
	_ = q.Push(PriorityAdvertise, "adv")
	_ = q.Push(PriorityDelivery, "pub1")
	_ = q.Push(PriorityAck, "ack")
	_ = q.Push(PriorityRegister, "reg")
	_ = q.Push(PriorityDelivery, "pub2")
	if err := q.Push(PriorityAck, "ack2"); !errors.Is(err, ErrQueueFull) {
		t.Fatal("bound not enforced")
	}
	want := []string{"ack", "pub1", "pub2", "reg", "adv"}
	for _, w := range want {
		v, _, ok := q.Pop()
		if !ok || v != w {
			t.Fatalf("got %q want %q", v, w)
		}
	}
	if _, _, ok := q.Pop(); ok || q.Len() != 0 {
		t.Error("queue not empty")
	}
	// Interleaved pushes and pops (exercising compaction) keep FIFO order.
	big := NewTxQueue[int](100)
	var ref []int
	next := 0
	for round := range 2000 {
		if round%3 != 2 {
			if big.Push(Priority(9), next) == nil { // clamped to the lowest priority
				ref = append(ref, next)
			}
			next++
			continue
		}
		v, p, ok := big.Pop()
		if !ok || v != ref[0] || p != PriorityAdvertise {
			t.Fatalf("round %d: got %d %v, want %d", round, v, ok, ref[0])
		}
		ref = ref[1:]
	}
	if big.Len() != len(ref) {
		t.Errorf("len %d want %d", big.Len(), len(ref))
	}
}

func BenchmarkBudgetReserve(b *testing.B) {
	bud := NewBudget(SubBand{Name: "x", DutyCycle: 0.1}, BudgetConfig{})
	now := t0
	for b.Loop() {
		now = now.Add(time.Second)
		_ = bud.Reserve(time.Millisecond, PriorityAck, now)
	}
}
