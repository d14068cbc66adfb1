package broker

import (
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// nopSink takes every delivery and counts it.
type nopSink struct{ n atomic.Int64 }

func (s *nopSink) Deliver(Delivery) bool { s.n.Add(1); return true }
func (s *nopSink) Closed(error)          {}

// tinySink is a zero-size sink, so that memory figures are the broker's.
type tinySink struct{}

func (tinySink) Deliver(Delivery) bool { return true }
func (tinySink) Closed(error)          {}

// matchServer builds a server with n sessions: each has one exact
// subscription sensors/<i>/temp, and every 100th also sensors/+/temp
// or sensors/<i>/#.
func matchServer(tb testing.TB, n int) *Server {
	srv := newServer(tb, testConfig())
	for i := range n {
		s, _, err := srv.Connect(ConnectInfo{ClientID: "c" + strconv.Itoa(i)}, tinySink{})
		if err != nil {
			tb.Fatal(err)
		}
		subs := []Subscription{{Filter: fmt.Sprintf("sensors/%d/temp", i)}}
		switch i % 100 {
		case 0:
			subs = append(subs, Subscription{Filter: "sensors/+/temp"})
		case 1:
			subs = append(subs, Subscription{Filter: fmt.Sprintf("sensors/%d/#", i)})
		}
		s.Subscribe(subs)
	}
	return srv
}

func TestMatchDoesNotAllocate(t *testing.T) {
	srv := matchServer(t, 10000)
	sc := scratchPool.Get().(*matchScratch)
	allocs := testing.AllocsPerRun(1000, func() {
		srv.tree.match("sensors/4242/temp", "", sc)
	})
	srv.tree.match("sensors/4242/temp", "", sc)
	if len(sc.targets) != 101 { // 4242's own + 100 sensors/+/temp
		t.Fatalf("%d targets", len(sc.targets))
	}
	if allocs != 0 {
		t.Errorf("%v allocations per match", allocs)
	}
}

// BenchmarkMatch10k matches one topic against 10k subscriptions (10k exact
// filters, 100 "+" filters and 100 "#" filters). No allocation.
func BenchmarkMatch10k(b *testing.B) {
	srv := matchServer(b, 10000)
	topics := make([]string, 1024)
	for i := range topics {
		topics[i] = fmt.Sprintf("sensors/%d/temp", i*9)
	}
	b.ReportAllocs()
	b.ResetTimer()
	sc := scratchPool.Get().(*matchScratch)
	for i := 0; b.Loop(); i++ {
		srv.tree.match(topics[i&1023], "", sc)
	}
}

// BenchmarkMatch10kExactOnly: the common case of a topic with one exact
// subscriber among 10k and no wildcard hit.
func BenchmarkMatch10kExactOnly(b *testing.B) {
	srv := newServer(b, testConfig())
	for i := range 10000 {
		s, _, _ := srv.Connect(ConnectInfo{ClientID: "c" + strconv.Itoa(i)}, tinySink{})
		s.Subscribe([]Subscription{{Filter: fmt.Sprintf("dev/%d/cmd", i)}})
	}
	b.ReportAllocs()
	sc := scratchPool.Get().(*matchScratch)
	for b.Loop() {
		srv.tree.match("dev/5000/cmd", "", sc)
	}
}

// BenchmarkFanIn: many publishing goroutines, one subscriber (QoS 0
// and QoS 1 deliveries; acks come from a separate goroutine).
func BenchmarkFanIn(b *testing.B) {
	for _, qos := range []QoS{0, 1} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			srv := newServer(b, testConfig())
			var (
				sink Sink = &nopSink{}
				ack  *ackSink
			)
			if qos > 0 {
				ack = &ackSink{ids: make(chan uint16, 1<<16)}
				sink = ack
			}
			sub, _, _ := srv.Connect(ConnectInfo{ClientID: "sub", ReceiveMaximum: 1024}, sink)
			sub.Resume()
			sub.Subscribe([]Subscription{{Filter: "in/#", QoS: qos}})
			sub.Resume()
			stop, done := make(chan struct{}), make(chan struct{})
			if ack != nil {
				go func() {
					defer close(done)
					for {
						select {
						case id := <-ack.ids:
							sub.Ack(id)
						case <-stop:
							return
						}
					}
				}()
			}
			var n atomic.Int64
			payload := make([]byte, 32)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := "pub" + strconv.FormatInt(n.Add(1), 10)
				p, _, _ := srv.Connect(ConnectInfo{ClientID: id}, tinySink{})
				for pb.Next() {
					p.Publish(&Message{Topic: "in/x", Payload: payload, QoS: qos})
				}
			})
			b.StopTimer()
			if ack != nil {
				close(stop)
				<-done
			}
			st := srv.Stats()
			b.ReportMetric(float64(st.MessagesSent)/b.Elapsed().Seconds(), "delivered/s")
			b.ReportMetric(float64(st.DroppedQueueFull)/float64(b.N), "dropped/op")
		})
	}
}

// ackSink passes packet IDs to a goroutine that acknowledges them.
type ackSink struct{ ids chan uint16 }

func (s *ackSink) Deliver(d Delivery) bool {
	select {
	case s.ids <- d.PacketID:
		return true
	default:
		return false
	}
}
func (s *ackSink) Closed(error) {}

// BenchmarkFanOut: one publisher, N subscribers of the same filter, QoS 0.
// ns/op is per published message (N deliveries).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			srv := newServer(b, testConfig())
			sink := &nopSink{}
			for i := range n {
				s, _, _ := srv.Connect(ConnectInfo{ClientID: "s" + strconv.Itoa(i)}, sink)
				s.Resume()
				s.Subscribe([]Subscription{{Filter: "out/+"}})
				s.Resume()
			}
			p, _, _ := srv.Connect(ConnectInfo{ClientID: "p"}, tinySink{})
			payload := make([]byte, 32)
			b.ReportAllocs()
			for b.Loop() {
				p.Publish(&Message{Topic: "out/x", Payload: payload})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sink.n.Load()), "ns/delivery")
		})
	}
}

// TestIdleSessionMemory measures the heap cost of idle sessions with one
// subscription each: connected (in-process zero-size sink), and offline
// persistent (a sleeping client). It reports, it does not assert.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 20000
	measure := func(name string, offline bool) {
		srv, err := New(testConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		ids := make([]string, n)
		filters := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("sensor-%06d", i)
			filters[i] = fmt.Sprintf("sn/%06d/cmd", i)
		}
		keep := make([]*Session, n)
		before := heap()
		for i := range n {
			info := ConnectInfo{ClientID: ids[i], ReceiveMaximum: 1}
			if offline {
				info.SessionExpiry = NoExpiry
			}
			s, _, err := srv.Connect(info, tinySink{})
			if err != nil {
				t.Fatal(err)
			}
			s.Resume()
			s.Subscribe([]Subscription{{Filter: filters[i], QoS: 1}})
			s.Resume()
			if offline {
				s.Disconnect(false)
			} else {
				keep[i] = s
			}
		}
		after := heap()
		t.Logf("%s: %d bytes per idle session with 1 subscription (client ID and filter strings excluded)",
			name, (int64(after)-int64(before))/n)
		runtime.KeepAlive(keep)
		runtime.KeepAlive(ids)
		runtime.KeepAlive(filters)
	}
	measure("connected", false)
	measure("offline persistent", true)
}

func heap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkPublishOneToOne: one publisher goroutine, one subscriber, QoS
// 0: the uncontended cost of a publish and its delivery.
func BenchmarkPublishOneToOne(b *testing.B) {
	srv := newServer(b, testConfig())
	sink := &nopSink{}
	s, _, _ := srv.Connect(ConnectInfo{ClientID: "s"}, sink)
	s.Resume()
	s.Subscribe([]Subscription{{Filter: "a/+"}})
	s.Resume()
	p, _, _ := srv.Connect(ConnectInfo{ClientID: "p"}, tinySink{})
	msgs := make([]Message, 1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m := &msgs[i&1023]
		*m = Message{Topic: "a/b"}
		p.Publish(m)
	}
}

// BenchmarkQoS1RoundTrip: publish QoS 1 to one subscriber with window 1
// (an MQTT-SN client) and acknowledge it: the per-message cost of the
// QoS 1 flow. No allocation beyond the message itself.
func BenchmarkQoS1RoundTrip(b *testing.B) {
	srv := newServer(b, testConfig())
	ack := &ackSink{ids: make(chan uint16, 1)}
	s, _, _ := srv.Connect(ConnectInfo{ClientID: "s", ReceiveMaximum: 1}, ack)
	s.Resume()
	s.Subscribe([]Subscription{{Filter: "a", QoS: 1}})
	s.Resume()
	p, _, _ := srv.Connect(ConnectInfo{ClientID: "p"}, tinySink{})
	msgs := make([]Message, 1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m := &msgs[i&1023]
		*m = Message{Topic: "a", QoS: 1}
		p.Publish(m)
		s.Ack(<-ack.ids)
	}
}
