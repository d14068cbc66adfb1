package store

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
)

// ackSink acks every delivery from a goroutine of its own (a sink must not
// call back into the session from Deliver), like a fast MQTT client.
type ackSink struct {
	ch chan uint16
}

func (s *ackSink) Deliver(d broker.Delivery) bool {
	select {
	case s.ch <- d.PacketID:
		return true
	default:
		return false
	}
}

func (s *ackSink) Closed(error) {}

// BenchmarkPublishQoS1 measures QoS 1 messages per second through the
// session API: N concurrent publishers, each to a topic with one
// persistent subscriber that acks at once, with the bbolt store (each
// Publish returns after the fsync of its group commit) and without. Each
// publisher keeps at most benchWindow messages unacknowledged by its
// subscriber, so the rate is what is delivered, not what queues overflow
// drop.
func BenchmarkPublishQoS1(b *testing.B) {
	for _, mode := range []string{"memory", "bbolt"} {
		for _, pubs := range []int{1, 16, 64, 256} {
			b.Run(fmt.Sprintf("%s/publishers=%d", mode, pubs), func(b *testing.B) {
				benchPublish(b, mode == "bbolt", pubs)
			})
		}
	}
}

// benchWindow bounds each publisher's messages not yet acked end to end.
const benchWindow = broker.DefaultMaxInflight

func benchPublish(b *testing.B, persist bool, pubs int) {
	var opts []broker.Option
	var st *Store
	if persist {
		var err error
		st, err = Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		opts = append(opts, broker.WithStore(st))
	}
	srv, err := broker.New(testConfig(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	var ackers sync.WaitGroup
	done := make(chan struct{})
	defer ackers.Wait()
	defer close(done) // runs first: the ackers stop, then Wait
	publishers := make([]*broker.Session, pubs)
	credits := make([]chan struct{}, pubs)
	for i := range pubs {
		credit := make(chan struct{}, benchWindow)
		credits[i] = credit
		sink := &ackSink{ch: make(chan uint16, 2*broker.DefaultMaxInflight)}
		sub, _, err := srv.Connect(broker.ConnectInfo{ClientID: fmt.Sprintf("sub%d", i),
			SessionExpiry: broker.NoExpiry}, sink)
		if err != nil {
			b.Fatal(err)
		}
		sub.Subscribe([]broker.Subscription{{Filter: fmt.Sprintf("bench/%d", i), QoS: 1}})
		sub.Resume()
		ackers.Go(func() {
			for {
				select {
				case id := <-sink.ch:
					sub.Ack(id)
					<-credit
				case <-done:
					return
				}
			}
		})
		p, _, err := srv.Connect(broker.ConnectInfo{ClientID: fmt.Sprintf("pub%d", i), CleanStart: true}, &ackSink{})
		if err != nil {
			b.Fatal(err)
		}
		p.Resume()
		publishers[i] = p
	}
	payload := []byte("21.5")
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range publishers {
		n := b.N / pubs
		if i < b.N%pubs {
			n++
		}
		topic := fmt.Sprintf("bench/%d", i)
		credit := credits[i]
		wg.Go(func() {
			for range n {
				credit <- struct{}{}
				if err := p.Publish(&broker.Message{Topic: topic, Payload: payload, QoS: 1}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	if s := srv.Stats(); s.DroppedQueueFull+s.DroppedQoS0+s.DroppedExpired > 0 {
		b.Fatalf("messages dropped: %+v", s)
	}
	if st != nil {
		s := st.Stats()
		if s.Commits > 0 {
			b.ReportMetric(float64(s.Changes)/float64(s.Commits), "changes/commit")
		}
	}
}
