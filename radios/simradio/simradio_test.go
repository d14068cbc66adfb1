package simradio

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

func TestLinkRoundTrip(t *testing.T) {
	m := radios.NewSimMedium(radios.SimConfig{MTU: 32})
	defer m.Close()
	l := New(m)
	node, _ := m.Node(7)
	connect := []byte{0x0F, 0x04, 0x04, 0x01, 0x00, 0x3C, 's', 'e', 'n', 's', 'o', 'r', '-', '0', '1'}
	if err := node.Send(radios.SimGateway, connect, radios.PriorityDelivery); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := l.ReadFrom(buf)
	if err != nil || from != Addr(7) || !bytes.Equal(buf[:n], connect) {
		t.Fatalf("%x %s %v", buf[:n], from, err)
	}
	if id, ok := NodeID(from); !ok || id != 7 {
		t.Fatal(id)
	}
	if err := l.WriteTo([]byte{3, 5, 0}, from); err != nil {
		t.Fatal(err)
	}
	if f, _ := node.Recv(); !bytes.Equal(f.Data, []byte{3, 5, 0}) {
		t.Fatal(f)
	}
	if err := l.Broadcast([]byte{5, 0, 1, 3, 0x84}); err != nil {
		t.Fatal(err)
	}
	if f, _ := node.Recv(); len(f.Data) != 5 {
		t.Fatal(f)
	}
	if err := l.WriteTo(make([]byte, 33), from); !errors.Is(err, transport.ErrTooLarge) {
		t.Error(err)
	}
	if err := l.WriteTo([]byte{1}, Addr(0)); err == nil {
		t.Error("gateway address accepted")
	}
	if l.MTU() != 32 || l.Name() != "sim" || l.Medium() != m || l.Budget() != nil || l.Airtime(10) != 0 {
		t.Error("getters")
	}
	_ = l.Close()
	if _, _, err := l.ReadFrom(buf); !errors.Is(err, transport.ErrClosed) {
		t.Error(err)
	}
}

func TestLinkDutyCycleCongestion(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := radios.NewSimMedium(radios.SimConfig{DutyCycle: 0.01, LoRa: radios.LoRaParams{SF: 12, BandwidthHz: 125000}, Now: func() time.Time { return now }})
	defer m.Close()
	l := New(m)
	_, _ = m.Node(1)
	var adv, err error
	n := 0
	for adv == nil {
		adv = l.Broadcast([]byte{5, 0, 1, 3, 0x84})
		n++
	}
	if !errors.Is(adv, transport.ErrCongested) || n < 5 {
		t.Fatalf("after %d: %v", n, adv)
	}
	// Acknowledgements still pass while ADVERTISE is refused.
	if err = l.WriteToPriority([]byte{3, 5, 0}, Addr(1), transport.PriorityAck); err != nil {
		t.Fatal(err)
	}
	if l.Budget().Used(now) == 0 || l.Airtime(5) == 0 {
		t.Error("budget")
	}
}

// BenchmarkSimLinkLossy measures frames through a 10 %-loss medium from
// 100 nodes to the gateway Link.
func BenchmarkSimLinkLossy(b *testing.B) {
	m := radios.NewSimMedium(radios.SimConfig{Seed: 1, LossRate: 0.1, QueueLen: 1 << 12})
	defer m.Close()
	l := New(m)
	nodes := make([]*radios.SimEndpoint, 100)
	for i := range nodes {
		nodes[i], _ = m.Node(uint16(i + 1))
	}
	frame := make([]byte, 27)
	buf := make([]byte, 64)
	for i := 0; b.Loop(); i++ {
		_ = nodes[i%len(nodes)].Send(radios.SimGateway, frame, radios.PriorityDelivery)
		if len(m.Gateway().C()) > 0 {
			_, _, _ = l.ReadFrom(buf)
		}
	}
	st := m.Stats()
	b.ReportMetric(float64(st.Lost)/float64(st.Sent)*100, "%lost")
}

// With ReportLoss, unicasts lost on the medium come back as TxFailures;
// RetryInterval follows the duty-cycle ledger.
func TestLinkReportLossAndRetryAdvice(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := radios.NewSimMedium(radios.SimConfig{Seed: 5, LossRate: 0.5, DutyCycle: 0.01,
		LoRa: radios.LoRaParams{SF: 7, BandwidthHz: 125000}, Now: func() time.Time { return now }})
	defer m.Close()
	l := NewWithOptions(m, Options{Name: "sim-lossy", ReportLoss: true, FailureQueue: 4})
	node, _ := m.Node(2)
	for range 20 {
		if err := l.WriteToPriority([]byte{3, 5, 0}, Addr(2), transport.PriorityAck); err != nil {
			t.Fatal(err)
		}
	}
	got := len(node.C())
	lost := 20 - got
	if lost == 0 || len(l.TxFailures()) != min(lost, 4) || l.DroppedFailures() != uint64(max(lost-4, 0)) {
		t.Fatalf("lost %d, failures %d, dropped %d", lost, len(l.TxFailures()), l.DroppedFailures())
	}
	if f := <-l.TxFailures(); f.To != Addr(2) || !errors.Is(f.Err, ErrLost) {
		t.Errorf("%+v", f)
	}
	// At 1 %, the advice is MinRetry plus 100 times the airtime.
	if r, want := l.RetryInterval(10), 10*time.Second+100*l.Airtime(10); r != want || l.Name() != "sim-lossy" {
		t.Errorf("retry %v, want %v", r, want)
	}
	plain := radios.NewSimMedium(radios.SimConfig{})
	defer plain.Close()
	if New(plain).RetryInterval(10) != 0 {
		t.Error("advice without a duty cycle")
	}
}
