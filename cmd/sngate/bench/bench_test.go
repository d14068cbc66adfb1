package bench

import (
	"context"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// runLocal runs a scenario against an in-process gateway and returns its
// report; it fails the test on an error.
func runLocal(t *testing.T, mutate func(*Config)) *Report {
	t.Helper()
	needLinux(t)
	cfg := DefaultConfig()
	cfg.Local = true
	cfg.Clients = 4
	cfg.Duration = 300 * time.Millisecond
	cfg.Drain = 2 * time.Second
	cfg.Retry = 500 * time.Millisecond
	cfg.SetupTimeout = 10 * time.Second
	mutate(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if testing.Verbose() {
		rep.WriteTable(os.Stderr)
	}
	return rep
}

func TestPublishQoS0(t *testing.T) {
	rep := runLocal(t, func(c *Config) { c.Rate = 200; c.Count = 50 })
	if rep.Ready != 4 {
		t.Fatalf("ready %d, want 4", rep.Ready)
	}
	if rep.Delivered > rep.Offered {
		t.Errorf("delivered %d > offered %d", rep.Delivered, rep.Offered)
	}
}

func TestPublishQoS1(t *testing.T) {
	rep := runLocal(t, func(c *Config) { c.QoS = 1; c.Count = 100 })
	if rep.Offered == 0 || rep.Delivered != rep.Offered || rep.LossPct != 0 {
		t.Fatalf("QoS 1: offered %d, delivered %d, loss %.3f%%", rep.Offered, rep.Delivered, rep.LossPct)
	}
}

func TestPublishQoS2(t *testing.T) {
	rep := runLocal(t, func(c *Config) { c.QoS = 2; c.Count = 50 })
	if rep.Offered == 0 || rep.Delivered != rep.Offered {
		t.Fatalf("QoS 2: offered %d, delivered %d", rep.Offered, rep.Delivered)
	}
}

func TestPublishQoSMinus1(t *testing.T) {
	rep := runLocal(t, func(c *Config) { c.QoS = -1; c.Rate = 200; c.Count = 20 })
	if rep.Delivered > rep.Offered || rep.Offered == 0 {
		t.Fatalf("QoS -1: offered %d, delivered %d", rep.Offered, rep.Delivered)
	}
}

func TestSubscribe(t *testing.T) {
	rep := runLocal(t, func(c *Config) { c.Scenario = ScenarioSubscribe; c.QoS = 1; c.Rate = 500; c.Count = 100 })
	if rep.Published == 0 || rep.Delivered != rep.Offered || rep.Offered != rep.Published*4 {
		t.Fatalf("subscribe: published %d, offered %d, delivered %d", rep.Published, rep.Offered, rep.Delivered)
	}
}

func TestSleep(t *testing.T) {
	rep := runLocal(t, func(c *Config) {
		c.Scenario = ScenarioSleep
		c.Count = 5
		c.Clients = 20
		c.Duration = 10 * time.Second
	})
	s := rep.Sleep
	if s == nil || s.Asleep != 20 || s.Lost != 0 || s.Drained != 100 || s.Woken != 20 {
		t.Fatalf("sleep: %+v", s)
	}
}

func TestSleepSharedSockets(t *testing.T) {
	rep := runLocal(t, func(c *Config) {
		c.Scenario = ScenarioSleep
		c.Count = 3
		c.Clients = 30
		c.Sockets = 4
		c.QoS = 1
		c.Duration = 10 * time.Second
	})
	s := rep.Sleep
	if s == nil || s.Asleep != 30 || s.Lost != 0 || s.Drained != 90 {
		t.Fatalf("sleep over 4 sockets: %+v", s)
	}
}

func TestConnect(t *testing.T) {
	rep := runLocal(t, func(c *Config) { c.Scenario = ScenarioConnect; c.Clients = 50; c.Duration = 10 * time.Second })
	if rep.Delivered != 50 || rep.Connack == nil {
		t.Fatalf("connect: %d connected, want 50", rep.Delivered)
	}
}

// needLinux skips tests of the engine where it is not implemented.
func needLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the load generator needs Linux")
	}
}

func TestNullSink(t *testing.T) {
	needLinux(t)
	cfg := DefaultConfig()
	cfg.NullSink = true
	cfg.Clients = 2
	cfg.Count = 100
	cfg.Duration = 2 * time.Second
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Offered != 200 || rep.Delivered > rep.Offered {
		t.Fatalf("null sink: offered %d, delivered %d", rep.Offered, rep.Delivered)
	}
}

func TestSilentGateway(t *testing.T) {
	needLinux(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := DefaultConfig()
	cfg.Gateway = pc.LocalAddr().String()
	cfg.MQTT = ""
	cfg.Clients = 3
	cfg.Retry = 50 * time.Millisecond
	cfg.Retries = 2
	cfg.SetupTimeout = 2 * time.Second
	rep, err := Run(context.Background(), cfg)
	if err == nil {
		t.Fatal("a silent gateway gave no error")
	}
	if rep == nil || rep.Errors["timeout: CONNECT"] != 3 || rep.Errors["retransmission"] != 6 {
		t.Fatalf("errors %v", rep.Errors)
	}
}
