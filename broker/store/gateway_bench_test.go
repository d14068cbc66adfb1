package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/store"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/sn/client"
	"github.com/sngate/sngate/transport/udp"
)

// ackingSink acks QoS 1 deliveries from a goroutine of its own.
type ackingSink struct{ ch chan uint16 }

func (s *ackingSink) Deliver(d broker.Delivery) bool {
	select {
	case s.ch <- d.PacketID:
		return true
	default:
		return false
	}
}

func (s *ackingSink) Closed(error) {}

// BenchmarkGatewayQoS1 measures MQTT-SN QoS 1 PUBLISH through the gateway
// (UDP loopback, closed loop: each client waits for its PUBACK) to one
// persistent subscriber session, with the bbolt store and without.
func BenchmarkGatewayQoS1(b *testing.B) {
	for _, mode := range []string{"memory", "bbolt"} {
		for _, clients := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("%s/clients=%d", mode, clients), func(b *testing.B) {
				benchGateway(b, mode == "bbolt", clients)
			})
		}
	}
}

func benchGateway(b *testing.B, persist bool, clients int) {
	var opts []broker.Option
	var st *store.Store
	if persist {
		var err error
		st, err = store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		opts = append(opts, broker.WithStore(st))
	}
	cfg := broker.DefaultConfig()
	cfg.SysInterval = 0
	srv, err := broker.New(cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	link, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	gcfg := gateway.DefaultConfig()
	gcfg.NewClientRate, gcfg.NewClientBurst = 1e9, 1<<30
	gcfg.Logger = slog.New(slog.DiscardHandler)
	gw, err := gateway.New(gcfg, srv, link)
	if err != nil {
		b.Fatal(err)
	}
	go gw.Serve()
	defer gw.Close()

	sink := &ackingSink{ch: make(chan uint16, 2*broker.DefaultMaxInflight)}
	sub, _, err := srv.Connect(broker.ConnectInfo{ClientID: "sub", SessionExpiry: broker.NoExpiry}, sink)
	if err != nil {
		b.Fatal(err)
	}
	sub.Subscribe([]broker.Subscription{{Filter: "bench/#", QoS: 1}})
	sub.Resume()
	done, acked := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(acked)
		for {
			select {
			case id := <-sink.ch:
				sub.Ack(id)
			case <-done:
				return
			}
		}
	}()
	defer func() { close(done); <-acked }()

	ctx := context.Background()
	addr := link.LocalAddr().String()
	cs := make([]*client.Client, clients)
	ids := make([]uint16, clients)
	for i := range cs {
		c, err := client.Dial(ctx, "udp", addr, client.Options{ClientID: fmt.Sprintf("c%d", i), KeepAlive: time.Hour,
			PingInterval: -1, RetryInterval: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		if ids[i], err = c.Register(ctx, fmt.Sprintf("bench/%d", i)); err != nil {
			b.Fatal(err)
		}
		cs[i] = c
	}
	payload := []byte("21.5")
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var congested atomic.Int64
	for i, c := range cs {
		n := b.N / clients
		if i < b.N%clients {
			n++
		}
		wg.Go(func() {
			for j := 0; j < n; {
				err := c.Publish(ctx, client.TopicID(ids[i]), sn.QoS1, false, payload)
				var rc *client.ReturnCodeError
				switch {
				case err == nil:
					j++
				case errors.As(err, &rc) && rc.Code == sn.RejectedCongestion:
					// The subscriber's queue is full: back off and send it
					// again, as a real client does (T_retry).
					congested.Add(1)
					time.Sleep(time.Millisecond)
				default:
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
	b.ReportMetric(float64(congested.Load())/float64(b.N), "congested/op")
	if st != nil {
		if ss := st.Stats(); ss.Commits > 0 {
			b.ReportMetric(float64(ss.Changes)/float64(ss.Commits), "changes/commit")
			b.ReportMetric(float64(ss.CommitDur.Microseconds())/float64(ss.Commits), "µs/commit")
		}
	}
	if s := srv.Stats(); s.DroppedQueueFull > 0 {
		b.Fatalf("%d messages dropped by the subscriber's full queue", s.DroppedQueueFull)
	}
}
