package listeners

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// TestMain doubles as the idle-client process of BenchmarkIdleMemory.
func TestMain(m *testing.M) {
	if addr := os.Getenv("SNGATE_IDLE_ADDR"); addr != "" {
		n, _ := strconv.Atoi(os.Getenv("SNGATE_IDLE_N"))
		os.Exit(idleClients(addr, n))
	}
	os.Exit(m.Run())
}

// idleClients opens n MQTT 3.1.1 connections, subscribes each to one
// topic, says "ready" and holds them until stdin closes.
func idleClients(addr string, n int) int {
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Println("dial:", err)
			return 1
		}
		b, _ := (&packets.Connect{Version: packets.V311, ClientID: fmt.Sprintf("idle-%d", i), CleanStart: true, KeepAlive: 3600}).Append(nil, 0)
		b, _ = (&packets.Subscribe{PacketID: 1, Filters: []packets.SubOption{{Filter: fmt.Sprintf("idle/%d", i), QoS: 1}}}).Append(b, packets.V311)
		c.Write(b)
		br := bufio.NewReader(c)
		for _, want := range []byte{packets.CONNACK, packets.SUBACK} {
			p, err := packets.ReadPacket(br, packets.V311, 0)
			if err != nil || p.Type() != want {
				fmt.Println("handshake:", err)
				return 1
			}
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

func heapAndStacks() uint64 {
	var ms runtime.MemStats
	// Each GC halves the stacks of goroutines that use less than a
	// quarter of theirs: an idle connection's stack, grown while it
	// connected, reaches its steady size after a few cycles.
	for i := 0; i < 8; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	if os.Getenv("SNGATE_MEM_DEBUG") != "" {
		fmt.Printf("heap %d stack %d objects %d goroutines %d\n", ms.HeapAlloc, ms.StackInuse, ms.HeapObjects, runtime.NumGoroutine())
	}
	return ms.HeapAlloc + ms.StackInuse
}

// BenchmarkIdleMemory measures the memory of idle MQTT TCP clients in
// the broker process (heap plus goroutine stacks, after GC), with the
// clients in a child process, connected and subscribed to one topic each.
// It reports the total per client and the broker core's share (sessions
// with one subscription, attached to a no-op sink); the difference is this
// package's connection and its socket. "parked" is the default (idle
// connections without a goroutine, on Linux), "goroutine" keeps one
// goroutine per connection. Run with -benchtime=1x.
func BenchmarkIdleMemory(b *testing.B) {
	b.Run("parked", func(b *testing.B) { benchIdle(b, true) })
	b.Run("goroutine", func(b *testing.B) { benchIdle(b, false) })
}

func benchIdle(b *testing.B, park bool) {
	const n = 2000
	for b.Loop() {
		srv, err := broker.New(func() broker.Config { c := broker.DefaultConfig(); c.SysInterval = 0; return c }())
		if err != nil {
			b.Fatal(err)
		}
		l, err := New(Config{Addr: "127.0.0.1:0", MaxConnections: -1}, srv, nil)
		if err != nil {
			b.Fatal(err)
		}
		l.parkIdle = l.parkIdle && park
		l.Listen()
		go l.Serve()
		before := heapAndStacks()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SNGATE_IDLE_ADDR="+l.Addr().String(), "SNGATE_IDLE_N="+strconv.Itoa(n))
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "ready\n" {
			b.Fatalf("client process: %q", line)
		}
		if got := l.Stats().Connections; got != n {
			b.Fatalf("%d connections", got)
		}
		// Idle connections park after parkAfter.
		for l.parkIdle && l.Stats().Parked < n {
			time.Sleep(50 * time.Millisecond)
		}
		after := heapAndStacks()
		total := float64(after-before) / n
		stdin.Close()
		cmd.Wait()
		l.Close()
		srv.Close()

		// The core's share: the same sessions without any network.
		srv, _ = broker.New(func() broker.Config { c := broker.DefaultConfig(); c.SysInterval = 0; return c }())
		before = heapAndStacks()
		sessions := make([]*broker.Session, n)
		for i := range sessions {
			s, _, err := srv.Connect(broker.ConnectInfo{ClientID: fmt.Sprintf("idle-%d", i), CleanStart: true}, nopSink{})
			if err != nil {
				b.Fatal(err)
			}
			s.Subscribe([]broker.Subscription{{Filter: fmt.Sprintf("idle/%d", i), QoS: 1}})
			s.Resume()
			sessions[i] = s
		}
		core := float64(heapAndStacks()-before) / n
		runtime.KeepAlive(sessions)
		srv.Close()
		b.ReportMetric(total, "B/client")
		b.ReportMetric(core, "core-B/client")
		b.ReportMetric(total-core, "listener-B/client")
	}
}

type nopSink struct{}

func (nopSink) Deliver(broker.Delivery) bool { return true }
func (nopSink) Closed(error)                 {}
