package gateway

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/udp"
)

// memLink is a link without a network: the test injects frames with
// Gateway.route and counts what the gateway writes.
type memLink struct {
	done    chan struct{}
	written atomic.Uint64
	last    atomic.Pointer[[]byte]
}

func newMemLink() *memLink { return &memLink{done: make(chan struct{})} }

func (l *memLink) ReadFrom([]byte) (int, transport.Addr, error) {
	<-l.done
	return 0, transport.Addr{}, transport.ErrClosed
}
func (l *memLink) WriteTo(p []byte, _ transport.Addr) error {
	l.written.Add(1)
	return nil
}
func (l *memLink) Broadcast([]byte) error { return transport.ErrNoBroadcast }
func (l *memLink) MTU() int               { return 1500 }
func (l *memLink) Name() string           { return "mem" }
func (l *memLink) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

// memEnv is a gateway on a memLink.
type memEnv struct {
	srv  *broker.Server
	gw   *Gateway
	link *memLink
	ls   *linkState
	p    sn.Packet
}

func newMemEnv(tb testing.TB, mutate func(*Config)) *memEnv {
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	bcfg.MaxSessions = 0
	srv, err := broker.New(bcfg)
	if err != nil {
		tb.Fatal(err)
	}
	l := newMemLink()
	cfg := testConfig()
	cfg.second = time.Second
	cfg.RetryInterval = time.Minute
	cfg.NewClientRate, cfg.NewClientBurst = 1e9, 1<<30
	cfg.InboxSize = 8192
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := New(cfg, srv, l)
	if err != nil {
		tb.Fatal(err)
	}
	go gw.Serve()
	tb.Cleanup(func() { gw.Close(); srv.Close() })
	return &memEnv{srv: srv, gw: gw, link: l, ls: gw.links[0]}
}

func addrN(i int) transport.Addr {
	return transport.AddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 5000))
}

func (m *memEnv) inject(from transport.Addr, msg sn.Message) {
	b, err := msg.Append(nil)
	if err != nil {
		panic(err)
	}
	m.gw.route(m.ls, from, b, &m.p)
}

func waitStat(tb testing.TB, what string, cond func(Stats) bool, g *Gateway) {
	deadline := time.Now().Add(60 * time.Second)
	for !cond(g.Stats()) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s: %+v", what, g.Stats())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkShardDispatch measures QoS 0 PUBLISH frames per second through
// route, a shard and the broker (no subscriber), on one shard.
func BenchmarkShardDispatch(b *testing.B) {
	benchPublish(b, false)
}

// BenchmarkPublishPath measures MQTT-SN PUBLISH in, through the broker,
// to an in-process subscriber's sink.
func BenchmarkPublishPath(b *testing.B) {
	benchPublish(b, true)
}

type countSink struct{ n atomic.Uint64 }

func (s *countSink) Deliver(broker.Delivery) bool { s.n.Add(1); return true }
func (s *countSink) Closed(error)                 {}

func benchPublish(b *testing.B, subscriber bool) {
	m := newMemEnv(b, func(c *Config) { c.Shards = 1 })
	var sink countSink
	if subscriber {
		sess, _, err := m.srv.Connect(broker.ConnectInfo{ClientID: "app", CleanStart: true}, &sink)
		if err != nil {
			b.Fatal(err)
		}
		sess.Subscribe([]broker.Subscription{{Filter: "bench/#"}})
		sess.Resume()
	}
	from := addrN(1)
	m.inject(from, &sn.Connect{ClientID: []byte("bench"), ProtocolID: sn.V12, CleanSession: true, Duration: 600})
	m.inject(from, &sn.Register{MsgID: 1, TopicName: []byte("bench/t")})
	waitStat(b, "connect", func(s Stats) bool { return s.Connects == 1 }, m.gw)
	frame, _ := (&sn.Publish{TopicID: 1, Data: make([]byte, 32)}).Append(nil)
	sh := m.gw.shards[0]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for len(sh.frames) > cap(sh.frames)-64 {
			runtime.Gosched() // keep the inbox from overflowing: measure the shard, not drops
		}
		m.gw.route(m.ls, from, frame, &m.p)
	}
	waitStat(b, "publishes", func(s Stats) bool { return s.PublishIn+s.InboxFull >= uint64(b.N) }, m.gw)
	b.StopTimer()
	st := m.gw.Stats()
	b.ReportMetric(float64(st.PublishIn)/b.Elapsed().Seconds(), "msgs/s")
	if st.InboxFull > 0 {
		b.ReportMetric(float64(st.InboxFull), "dropped")
	}
	if subscriber && sink.n.Load() < st.PublishIn {
		deadline := time.Now().Add(5 * time.Second)
		for sink.n.Load() < st.PublishIn && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
}

// sleepers connects n clients the way a battery sensor fleet does: CONNECT
// (persistent session), REGISTER one topic, SUBSCRIBE one plain topic
// (which registers a second ID), DISCONNECT(duration).
func sleepers(tb testing.TB, m *memEnv, first, n int) {
	for i := first; i < first+n; i++ {
		from := addrN(i + 10)
		id := []byte(fmt.Sprintf("sensor-%06d", i))
		m.inject(from, &sn.Connect{ClientID: id, ProtocolID: sn.V12, Duration: 600})
		m.inject(from, &sn.Register{MsgID: 1, TopicName: []byte(fmt.Sprintf("data/%06d/temp", i))})
		m.inject(from, &sn.Subscribe{MsgID: 2, TopicName: []byte(fmt.Sprintf("cmd/%06d", i))})
		m.inject(from, &sn.Disconnect{HasDuration: true, Duration: 3600})
		if i%500 == 499 {
			waitStat(tb, "sleepers", func(s Stats) bool { return s.Sleeping == int64(i+1) }, m.gw)
		}
	}
	waitStat(tb, "sleepers", func(s Stats) bool { return s.Sleeping == int64(first+n) }, m.gw)
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryPerSleepingClient measures the heap cost of a sleeping client
// with 2 topic IDs and 1 subscription: all-in, and broker sessions alone
// (the same sessions attached directly), so the gateway's share is the
// difference.
func TestMemoryPerSleepingClient(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory measurement")
	}
	const n = 10000
	// One shard keeps the pipelined frames of each client in order (a
	// real client waits for CONNACK before it registers).
	m := newMemEnv(t, func(c *Config) { c.Shards = 1 })
	sleepers(t, m, 0, 2000) // warm the frame buffer pool and the maps
	base := heap()
	sleepers(t, m, 2000, n)
	all := heap()
	perAll := float64(all-base) / n

	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, _ := broker.New(bcfg)
	defer srv.Close()
	base = heap()
	sess := make([]*broker.Session, n)
	for i := range sess {
		s, _, err := srv.Connect(broker.ConnectInfo{ClientID: fmt.Sprintf("sensor-%06d", i), SessionExpiry: broker.NoExpiry,
			ReceiveMaximum: 1, QueueQoS0: true, Listener: "sn-mem", RemoteAddr: "10.0.0.1:5000"}, &countSink{})
		if err != nil {
			t.Fatal(err)
		}
		s.Subscribe([]broker.Subscription{{Filter: fmt.Sprintf("cmd/%06d", i)}})
		s.Resume()
		sess[i] = s
	}
	brokerOnly := float64(heap()-base) / n
	runtime.KeepAlive(sess)
	gw := perAll - brokerOnly
	t.Logf("per sleeping client: all-in %.0f B, broker session %.0f B, gateway %.0f B", perAll, brokerOnly, gw)
	if gw > 1024 {
		t.Errorf("gateway cost %.0f B per sleeping client, want under 1 KiB", gw)
	}
}

// BenchmarkUDPPublishQoS0 is the whole path over loopback: MQTT-SN QoS 0
// PUBLISH datagrams (sent with sendmmsg by 4 sensors) through the UDP
// link, the gateway and the broker to an in-process subscriber. It
// reports the delivered rate and the datagrams lost on the way.
func BenchmarkUDPPublishQoS0(b *testing.B) {
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, _ := broker.New(bcfg)
	defer srv.Close()
	link, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0", ReadBuffer: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.second = time.Second
	gw, _ := New(cfg, srv, link)
	go gw.Serve()
	defer gw.Close()
	var sink countSink
	sess, _, _ := srv.Connect(broker.ConnectInfo{ClientID: "app", CleanStart: true}, &sink)
	sess.Subscribe([]broker.Subscription{{Filter: "bench/#"}})
	sess.Resume()

	const sensors = 4
	gwAddr := transport.AddrFromAddrPort(link.LocalAddr())
	var senders []*udp.Link
	for i := 0; i < sensors; i++ {
		s, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0", WriteBuffer: 4 << 20})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		senders = append(senders, s)
		c, _ := (&sn.Connect{ClientID: []byte(fmt.Sprintf("bench-%d", i)), ProtocolID: sn.V12, CleanSession: true, Duration: 600}).Append(nil)
		r, _ := (&sn.Register{MsgID: 1, TopicName: []byte(fmt.Sprintf("bench/%d", i))}).Append(nil)
		s.WriteTo(c, gwAddr)
		waitStat(b, "connect", func(st Stats) bool { return st.Connects == uint64(i+1) }, gw)
		s.WriteTo(r, gwAddr)
	}
	time.Sleep(50 * time.Millisecond) // the REGACKs; nothing to wait on without reading them
	frame, _ := (&sn.Publish{TopicID: 1, Data: make([]byte, 32)}).Append(nil)
	b.ResetTimer()
	start := time.Now()
	per := b.N / sensors
	done := make(chan struct{}, sensors)
	for _, s := range senders {
		go func(s *udp.Link) {
			ds := make([]udp.Datagram, 32)
			for i := range ds {
				ds[i] = udp.Datagram{Data: frame, Addr: gwAddr}
			}
			for sent := 0; sent < per; sent += len(ds) {
				s.WriteBatch(ds)
				for sent-int(sink.n.Load())/sensors > 2000 { // stay under the socket buffer
					runtime.Gosched()
				}
			}
			done <- struct{}{}
		}(s)
	}
	for range sensors {
		<-done
	}
	target := uint64(per * sensors)
	deadline := time.Now().Add(2 * time.Second)
	for sink.n.Load() < target && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(sink.n.Load())/el.Seconds(), "delivered/s")
	b.ReportMetric(float64(target-min(target, sink.n.Load())), "lost")
}
