package radios

import (
	"errors"
	"testing"
	"time"
)

func TestSimMediumLossDeterministic(t *testing.T) {
	run := func() (SimStats, []int) {
		m := NewSimMedium(SimConfig{Seed: 42, LossRate: 0.3, QueueLen: 2000})
		defer m.Close()
		n, _ := m.Node(1)
		for i := range 1000 {
			_ = n.Send(SimGateway, []byte{byte(i), byte(i >> 8)}, PriorityDelivery)
		}
		var got []int
		for len(m.Gateway().C()) > 0 {
			f, _ := m.Gateway().Recv()
			got = append(got, int(f.Data[0])|int(f.Data[1])<<8)
		}
		return m.Stats(), got
	}
	s1, g1 := run()
	s2, g2 := run()
	if s1 != s2 || len(g1) != len(g2) {
		t.Fatalf("not deterministic: %+v %+v", s1, s2)
	}
	for i := range g1 {
		if g1[i] != g2[i] {
			t.Fatal("different frames lost")
		}
	}
	if s1.Lost < 250 || s1.Lost > 350 || s1.Delivered+s1.Lost != 1000 {
		t.Errorf("%+v", s1)
	}
}

func TestSimMediumBroadcastMTUAndDuty(t *testing.T) {
	m := NewSimMedium(SimConfig{MTU: 20, DutyCycle: 0.01, LoRa: LoRaParams{SF: 12, BandwidthHz: 125000}, QueueLen: 4, Now: func() time.Time { return t0 }})
	defer m.Close()
	var nodes []*SimEndpoint
	for id := uint16(1); id <= 3; id++ {
		n, err := m.Node(id)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	if _, err := m.Node(0); err == nil {
		t.Error("node 0 accepted")
	}
	gw := m.Gateway()
	if err := gw.Send(NodeBroadcast, []byte{5, 0, 1, 3, 0x84}, PriorityAdvertise); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		f, err := n.Recv()
		if err != nil || f.From != SimGateway || len(f.Data) != 5 {
			t.Fatalf("%+v %v", f, err)
		}
	}
	if err := gw.Send(2, make([]byte, 21), PriorityAck); !errors.Is(err, ErrFrameTooLarge) {
		t.Error(err)
	}
	if err := gw.Send(99, []byte{1}, PriorityAck); err == nil {
		t.Error("unknown node accepted")
	}
	if err := nodes[0].Send(2, []byte{1}, PriorityAck); err == nil {
		t.Error("node-to-node accepted")
	}
	// SF12: 1.3 s for 20 bytes; 36 s budget at ack priority.
	var sent int
	for {
		err := gw.Send(2, make([]byte, 20), PriorityAck)
		if errors.Is(err, ErrDutyCycle) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if sent < 20 || sent > 30 {
		t.Errorf("sent %d before the duty cycle closed", sent)
	}
	st := m.Stats()
	if st.Dropped == 0 { // node 2's queue of 4 overflowed
		t.Errorf("%+v", st)
	}
	if gw.Budget().Remaining(t0) >= gw.Airtime(20) {
		t.Error("budget not spent")
	}
}

func TestSimMediumLatencyAndClose(t *testing.T) {
	m := NewSimMedium(SimConfig{Latency: time.Millisecond})
	n, _ := m.Node(9)
	for i := range 5 {
		if err := n.Send(SimGateway, []byte{byte(i)}, PriorityDelivery); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		f, err := m.Gateway().Recv()
		if err != nil || f.Data[0] != byte(i) || f.From != 9 {
			t.Fatalf("%d: %+v %v", i, f, err)
		}
	}
	m.Close()
	m.Close()
	if _, err := m.Gateway().Recv(); !errors.Is(err, ErrSimClosed) {
		t.Error(err)
	}
	if err := n.Send(SimGateway, []byte{1}, PriorityAck); !errors.Is(err, ErrSimClosed) {
		t.Error(err)
	}
	if _, err := m.Node(10); !errors.Is(err, ErrSimClosed) {
		t.Error(err)
	}
}

func BenchmarkSimMediumUplink(b *testing.B) {
	m := NewSimMedium(SimConfig{Seed: 1, LossRate: 0.1, QueueLen: 1 << 16})
	defer m.Close()
	n, _ := m.Node(1)
	gw := m.Gateway()
	frame := make([]byte, 27)
	for b.Loop() {
		_ = n.Send(SimGateway, frame, PriorityDelivery)
		select {
		case <-gw.C():
		default:
		}
	}
}

// SendAcked tells whether a frame reached its receiver; NodeDutyCycle
// meters the gateway alone.
func TestSimMediumSendAckedAndNodeDutyCycle(t *testing.T) {
	m := NewSimMedium(SimConfig{Seed: 7, LossRate: 0.5, DutyCycle: 0.01, NodeDutyCycle: -1,
		LoRa: LoRaParams{SF: 7, BandwidthHz: 125000}, QueueLen: 1000})
	defer m.Close()
	n, _ := m.Node(3)
	if m.Gateway().Budget() == nil || n.Budget() != nil {
		t.Fatal("NodeDutyCycle -1: only the gateway has a budget")
	}
	var acked, lost int
	for range 100 {
		ok, err := m.Gateway().SendAcked(3, []byte{2, 0x16}, PriorityAck)
		if errors.Is(err, ErrDutyCycle) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			acked++
		} else {
			lost++
		}
	}
	if st := m.Stats(); uint64(acked) != st.Delivered || uint64(lost) != st.Lost || acked == 0 || lost == 0 {
		t.Errorf("acked %d lost %d, stats %+v", acked, lost, st)
	}
	m2 := NewSimMedium(SimConfig{DutyCycle: 0.01, NodeDutyCycle: 0.1})
	defer m2.Close()
	n2, _ := m2.Node(1)
	if n2.Budget().Limit() != 10*m2.Gateway().Budget().Limit() {
		t.Errorf("node budget %v, gateway %v", n2.Budget().Limit(), m2.Gateway().Budget().Limit())
	}
}
