package listeners

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

func TestGroup(t *testing.T) {
	srv := newBroker(t, nil)
	g, err := Start(srv, testLogger(t),
		Config{Name: "mqtt", Kind: KindTCP, Addr: "127.0.0.1:0"},
		Config{Name: "web", Kind: KindWS, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ls := g.Listeners()
	if len(ls) != 2 || ls[0].Config().Name != "mqtt" || ls[1].Config().Path != DefaultPath {
		t.Fatalf("listeners %+v", ls)
	}
	tcp := dialV5(t, ls[0].Addr().String(), "tcp-client", nil)
	tcp.sub(t, paho.SubscribeOptions{Topic: "g", QoS: 1})
	r, _, _ := dialWS(t, "ws://"+ls[1].Addr().String()+"/mqtt", nil, packets.V311)
	r.connect(&packets.Connect{ClientID: "ws-client", CleanStart: true})
	r.send(&packets.Publish{Topic: "g", Payload: []byte("across")})
	if m := tcp.recv(t); string(m.Payload) != "across" {
		t.Fatalf("got %q", m.Payload)
	}
	if st := ls[0].Stats(); st.Connections != 1 || st.Accepted != 1 || st.Name != "mqtt" || st.Addr == "" {
		t.Fatalf("stats %+v", st)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-tcp.disc:
		if d.ReasonCode != packets.ServerShuttingDown {
			t.Fatalf("DISCONNECT 0x%02X", d.ReasonCode)
		}
	case <-time.After(wait):
		t.Fatal("no DISCONNECT on close")
	}
	r.expectClosed()
	for _, l := range ls {
		if st := l.Stats(); st.Connections != 0 {
			t.Fatalf("%s: %d connections after Close", st.Name, st.Connections)
		}
		if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
			t.Fatalf("%s still accepting", l.Config().Name)
		}
	}
	// A second Close is harmless; a closed listener does not serve again.
	if err := ls[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := ls[0].Serve(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	// Start reports address errors and starts nothing.
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	if _, err := Start(srv, nil, Config{Addr: "127.0.0.1:0"}, Config{Addr: busy.Addr().String()}); err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
}

func TestMaxConnections(t *testing.T) {
	_, addr := setup(t, Config{MaxConnections: 2})
	rawConnected(t, addr, packets.V311, "one")
	rawConnected(t, addr, packets.V311, "two")
	r := dialRaw(t, addr, packets.V311)
	r.send(&packets.Connect{Version: packets.V311, ClientID: "three", CleanStart: true})
	if got := r.expectClosed(); len(got) != 0 {
		t.Fatalf("third connection answered %v", got)
	}
}

func TestBrokerShutdown(t *testing.T) {
	srv, addr := setup(t, Config{})
	c := dialV5(t, addr, "c", nil)
	r := rawConnected(t, addr, packets.V311, "r")
	srv.Close()
	select {
	case d := <-c.disc:
		if d.ReasonCode != packets.ServerShuttingDown {
			t.Fatalf("DISCONNECT 0x%02X", d.ReasonCode)
		}
	case <-time.After(wait):
		t.Fatal("no DISCONNECT")
	}
	r.expectClosed()
	// New clients are refused with Server Unavailable.
	r = dialRaw(t, addr, packets.V5)
	r.send(&packets.Connect{Version: packets.V5, ClientID: "late", CleanStart: true})
	if ack := r.expect(packets.CONNACK).(*packets.Connack); ack.ReasonCode != packets.ServerUnavailable {
		t.Fatalf("CONNACK 0x%02X", ack.ReasonCode)
	}
}

// TestSlowSubscriber fills a subscriber's socket and write buffer while
// it does not read: deliveries are refused and queued by the broker, then
// all arrive, in order, once it reads again. It runs with and without
// WriteDelay.
func TestSlowSubscriber(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond} {
		t.Run(fmt.Sprint("delay=", d), func(t *testing.T) { testSlowSubscriber(t, d) })
	}
}

func testSlowSubscriber(t *testing.T, delay time.Duration) {
	srv := newBroker(t, func(c *broker.Config) { c.MaxInflight = 1000 })
	l, addr := startListener(t, srv, Config{OutboundBufferSize: 2048, WriteDelay: delay})
	sub := dialRaw(t, addr, packets.V5)
	sub.connect(&packets.Connect{ClientID: "slow", CleanStart: true, KeepAlive: 0,
		Props: packets.Properties{ReceiveMaximum: 1000}})
	sub.subscribe(1, packets.SubOption{Filter: "slow/#", QoS: 1})
	pub := dialV5(t, addr, "fast", nil)
	// 100 x 64 KiB: more than the socket buffers on both sides hold.
	sub.c.(*net.TCPConn).SetReadBuffer(256 << 10)
	const n = 100
	payload := make([]byte, 64<<10)
	for i := 0; i < n; i++ {
		payload[0], payload[1] = byte(i>>8), byte(i)
		pub.pub(t, &paho.Publish{Topic: "slow/t", QoS: 1, Payload: payload})
	}
	if l.Stats().Deferred == 0 {
		t.Fatal("no delivery was deferred: the test did not fill the buffers")
	}
	for i := 0; i < n; i++ {
		p := sub.expect(packets.PUBLISH).(*packets.Publish)
		if got := int(p.Payload[0])<<8 | int(p.Payload[1]); got != i || p.Dup {
			t.Fatalf("message %d: got %d dup=%v", i, got, p.Dup)
		}
		sub.send(&packets.Ack{Kind: packets.PUBACK, PacketID: p.PacketID})
	}
	if got := sub.until(packets.PINGRESP); len(got) != 0 {
		t.Fatalf("extra packets %v", got)
	}
}

// TestManyClients runs concurrent publishers and subscribers, for the
// race detector.
func TestManyClients(t *testing.T) {
	_, addr := setup(t, Config{})
	const clients, msgs = 8, 50
	subs := make([]*v5, clients)
	for i := range subs {
		subs[i] = dialV5(t, addr, fmt.Sprintf("s%d", i), nil)
		subs[i].sub(t, paho.SubscribeOptions{Topic: "many/#", QoS: byte(i % 3)})
	}
	done := make(chan error, clients)
	for i := 0; i < clients; i++ {
		p := dialV5(t, addr, fmt.Sprintf("p%d", i), nil)
		go func() {
			for j := 0; j < msgs; j++ {
				if _, err := p.Publish(t.Context(), &paho.Publish{Topic: fmt.Sprintf("many/%d", i), QoS: byte(j % 3)}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < clients; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subs {
		for k := 0; k < clients*msgs; k++ {
			s.recv(t)
		}
	}
}

// TestWithoutParking runs the main flows with idle connections keeping
// their goroutine (the path of platforms without a parker).
func TestWithoutParking(t *testing.T) {
	srv := newBroker(t, nil)
	l, err := New(Config{Addr: "127.0.0.1:0"}, srv, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.parkIdle = false
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	go l.Serve()
	addr := l.Addr().String()
	sub := dialV5(t, addr, "sub", nil)
	sub.sub(t, paho.SubscribeOptions{Topic: "np/#", QoS: 2})
	pub := dialV5(t, addr, "pub", nil)
	for q := byte(0); q <= 2; q++ {
		pub.pub(t, &paho.Publish{Topic: "np/t", QoS: q, Payload: []byte{q}})
		if m := sub.recv(t); m.Payload[0] != q {
			t.Fatalf("got %v", m.Payload)
		}
	}
	r := dialRaw(t, addr, packets.V5)
	r.connect(&packets.Connect{ClientID: "sleepy", CleanStart: true, KeepAlive: 1})
	r.expectDisconnect(packets.KeepAliveTimeout)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-sub.disc:
		if d.ReasonCode != packets.ServerShuttingDown {
			t.Fatalf("DISCONNECT 0x%02X", d.ReasonCode)
		}
	case <-time.After(wait):
		t.Fatal("no DISCONNECT on close")
	}
}

// TestWriteDelay sends a burst to a subscriber whose listener holds
// deliveries back to write them together: all arrive, in order, and a
// PINGREQ is still answered.
func TestWriteDelay(t *testing.T) {
	srv := newBroker(t, nil)
	_, addr := startListener(t, srv, Config{WriteDelay: 50 * time.Millisecond})
	sub := rawConnected(t, addr, packets.V311, "sub")
	sub.subscribe(1, packets.SubOption{Filter: "wd/#", QoS: 0})
	pub := rawConnected(t, addr, packets.V311, "pub")
	publish := func(from, to int) {
		var b []byte
		for i := from; i < to; i++ {
			b, _ = (&packets.Publish{Topic: "wd/t", Payload: []byte{byte(i)}}).Append(b, packets.V311)
		}
		pub.write(b)
	}
	expect := func(from, to int) {
		for i := from; i < to; i++ {
			p := sub.expect(packets.PUBLISH).(*packets.Publish)
			if len(p.Payload) != 1 || int(p.Payload[0]) != i {
				t.Fatalf("message %d: got %v", i, p.Payload)
			}
		}
	}
	// The first delivery is written at once; the burst right after it
	// finds the connection busy and waits for more.
	publish(0, 1)
	expect(0, 1)
	publish(1, 200)
	expect(1, 200)
	if got := sub.until(packets.PINGRESP); len(got) != 0 {
		t.Fatalf("extra packets %v", got)
	}
}
