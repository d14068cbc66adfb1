// Package bench is the load generator behind 'sngate bench'. It simulates
// many MQTT-SN clients over UDP against sngate or any other MQTT-SN
// gateway, measures what arrives at an MQTT client on the broker side (or
// at the MQTT-SN clients, for the subscribe and sleep scenarios), and
// reports throughput, loss, latency, errors and, when the gateway is
// local, its memory and CPU.
//
// The simulated clients are driven by a few worker goroutines (one per
// CPU by default), each owning many client sockets: it polls them with
// epoll and sends and receives with sendmmsg and recvmmsg, so the tool
// itself costs few system calls per message. A null sink (Config.NullSink)
// measures the tool's own ceiling.
//
// Scenarios:
//   - publish: MQTT-SN clients publish (QoS -1, 0, 1 or 2) to an MQTT
//     subscriber; QoS 1 and 2 run closed-loop, one message in flight per
//     client.
//   - subscribe: an MQTT publisher publishes to N MQTT-SN subscribers of
//     one topic.
//   - sleep: N clients connect, subscribe and go to sleep; an MQTT
//     publisher sends Count messages to each; the clients wake with
//     PINGREQ(ClientId) and drain their queues.
//   - connect: N clients connect; connection rate, CONNACK latency and
//     gateway memory per connected client.
//
// The engine needs Linux (epoll, recvmmsg, sendmmsg); elsewhere Run
// returns ErrUnsupported.
package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Scenario names.
const (
	ScenarioPublish   = "publish"   // MQTT-SN clients publish to an MQTT subscriber.
	ScenarioSubscribe = "subscribe" // an MQTT publisher publishes to MQTT-SN subscribers.
	ScenarioSleep     = "sleep"     // sleeping MQTT-SN clients wake and drain their queues.
	ScenarioConnect   = "connect"   // MQTT-SN clients connect: rate, latency, memory.
)

// ErrUnsupported is returned by Run on platforms without the Linux socket
// calls the engine uses.
var ErrUnsupported = errors.New("bench: the load generator needs Linux (epoll, recvmmsg, sendmmsg)")

// Config describes one benchmark run. Zero fields take the defaults of
// DefaultConfig where noted.
type Config struct {
	// Scenario is one of the Scenario* names.
	Scenario string
	// Gateway is the MQTT-SN gateway's UDP address, host:port.
	Gateway string
	// MQTT is the broker's MQTT TCP address, host:port. The publish
	// scenario measures deliveries there; subscribe and sleep publish
	// there. "" runs publish without a subscriber (offered rate only).
	MQTT string
	// Local starts an in-process broker and gateway on 127.0.0.1 port 0
	// and benchmarks it; Gateway and MQTT are ignored.
	Local bool
	// NullSink starts an in-process UDP sink that answers the handshakes
	// and counts PUBLISH frames, and benchmarks it: the tool's own
	// ceiling. Only for the publish and connect scenarios.
	NullSink bool

	// Clients is the number of simulated MQTT-SN clients.
	Clients int
	// QoS is -1, 0, 1 or 2.
	QoS int
	// Size is the payload size in bytes, at least MinSize: a send
	// timestamp, the client number and a sequence number.
	Size int
	// Rate is the messages per second per client (publish), or of the
	// publisher (subscribe: each subscriber receives Rate msg/s); 0 sends
	// as fast as possible (closed-loop at QoS 1 and 2).
	Rate float64
	// Duration bounds the measured phase.
	Duration time.Duration
	// Count bounds the messages: per client (publish), of the publisher
	// (subscribe) or per sleeping client (sleep, default 10). 0 means
	// bounded by Duration only.
	Count int
	// TopicPrefix is the first level of every topic; a run ID follows
	// it, so runs do not see each other's messages.
	TopicPrefix string
	// SubscriberQoS is the QoS of the publish scenario's MQTT
	// subscription; -1 (as in DefaultConfig) follows QoS.
	SubscriberQoS int

	// PID is the gateway's process ID: its RSS and CPU time are read
	// from /proc. 0 disables.
	PID int
	// MetricsURL is a Prometheus text endpoint of the gateway
	// (process_resident_memory_bytes, process_cpu_seconds_total), used
	// when PID is 0.
	MetricsURL string

	// Workers is the number of goroutines driving the clients (default
	// GOMAXPROCS).
	Workers int
	// Sockets bounds the UDP sockets the clients use (default: one per
	// client, up to the open-file limit). With fewer sockets than
	// clients, clients share them one at a time; see the package doc.
	Sockets int
	// Sources spreads the sockets over this many loopback source
	// addresses (127.x.y.z), so per-source admission limits of the
	// gateway do not throttle the connects. 0 picks one per 400 clients
	// when the gateway is on loopback, else 1.
	Sources int
	// Window bounds the handshakes (CONNECT, wake-up, DISCONNECT) in
	// progress at once, over all workers (default 256).
	Window int
	// SetupTimeout bounds the phases before and after the measured one
	// (connects, subscriptions, publishing to sleepers, teardown).
	SetupTimeout time.Duration
	// Retry is T_RETRY: how long a client waits for an answer before
	// resending (default 2s). Retries is N_RETRY (default 5).
	Retry   time.Duration
	Retries int
	// KeepAlive is the CONNECT keep-alive in seconds (default 600).
	KeepAlive uint16
	// SleepDuration is the sleep duration in seconds (default 3600).
	SleepDuration uint16
	// Drain bounds the wait for messages still in flight after the
	// sending stops (default 2s, or the Duration if longer).
	Drain time.Duration

	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// MinSize is the smallest payload: an 8-byte send timestamp, a 4-byte
// client number and a 4-byte sequence number.
const MinSize = 16

// DefaultConfig returns the defaults of 'sngate bench'.
func DefaultConfig() Config {
	return Config{
		Scenario:      ScenarioPublish,
		Gateway:       "localhost:1884",
		MQTT:          "localhost:1883",
		Clients:       10,
		QoS:           0,
		Size:          32,
		Duration:      5 * time.Second,
		TopicPrefix:   "sngate-bench",
		SubscriberQoS: -1,
		Window:        256,
		SetupTimeout:  60 * time.Second,
		Retry:         2 * time.Second,
		Retries:       5,
		KeepAlive:     600,
		SleepDuration: 3600,
	}
}

// Validate reports whether Run would accept c, without running anything.
func Validate(c Config) error {
	_, err := c.check()
	return err
}

// check validates c and fills defaults.
func (c Config) check() (Config, error) {
	d := DefaultConfig()
	switch c.Scenario {
	case ScenarioPublish, ScenarioSubscribe, ScenarioSleep, ScenarioConnect:
	case "":
		c.Scenario = d.Scenario
	default:
		return c, fmt.Errorf("bench: unknown scenario %q (publish, subscribe, sleep or connect)", c.Scenario)
	}
	if c.Clients <= 0 {
		return c, fmt.Errorf("bench: --clients %d: want at least 1", c.Clients)
	}
	if c.QoS < -1 || c.QoS > 2 {
		return c, fmt.Errorf("bench: --qos %d: want -1, 0, 1 or 2", c.QoS)
	}
	if c.QoS == -1 && c.Scenario != ScenarioPublish {
		return c, errors.New("bench: QoS -1 exists only for publish")
	}
	if c.Size == 0 {
		c.Size = d.Size
	}
	if c.Size < MinSize || c.Size > 1400 {
		return c, fmt.Errorf("bench: --size %d: want %d..1400 bytes", c.Size, MinSize)
	}
	if c.Rate < 0 {
		return c, fmt.Errorf("bench: --rate %g: want 0 (as fast as possible) or more", c.Rate)
	}
	if c.Duration <= 0 {
		return c, fmt.Errorf("bench: --duration %v: want a positive duration", c.Duration)
	}
	if c.Count < 0 {
		return c, fmt.Errorf("bench: --count %d: want 0 or more", c.Count)
	}
	if c.Scenario == ScenarioSleep && c.Count == 0 {
		c.Count = 10
	}
	if c.Scenario == ScenarioSleep && c.Count > 1000 {
		return c, fmt.Errorf("bench: --count %d: sleep queues hold 1000 messages by default; want at most 1000", c.Count)
	}
	if c.NullSink && c.Local {
		return c, errors.New("bench: choose the null sink or the local gateway, not both")
	}
	if c.NullSink && c.Scenario != ScenarioPublish && c.Scenario != ScenarioConnect {
		return c, errors.New("bench: the null sink serves only the publish and connect scenarios")
	}
	if !c.Local && !c.NullSink {
		if _, _, err := net.SplitHostPort(c.Gateway); err != nil {
			return c, fmt.Errorf("bench: gateway address %q: %w", c.Gateway, err)
		}
		if (c.Scenario == ScenarioSubscribe || c.Scenario == ScenarioSleep) && c.MQTT == "" {
			return c, fmt.Errorf("bench: the %s scenario publishes over MQTT: give --mqtt", c.Scenario)
		}
		if c.MQTT != "" {
			if _, _, err := net.SplitHostPort(c.MQTT); err != nil {
				return c, fmt.Errorf("bench: MQTT address %q: %w", c.MQTT, err)
			}
		}
	}
	if c.SubscriberQoS < 0 {
		c.SubscriberQoS = max(c.QoS, 0)
	}
	if c.SubscriberQoS > 2 {
		return c, fmt.Errorf("bench: --sub-qos %d: want 0, 1 or 2", c.SubscriberQoS)
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = d.TopicPrefix
	}
	if c.Workers <= 0 {
		c.Workers = defaultWorkers()
	}
	if c.Workers > c.Clients {
		c.Workers = c.Clients
	}
	if c.Sockets < 0 || c.Sources < 0 || c.Window < 0 || c.Retries < 0 {
		return c, errors.New("bench: --sockets, --sources, --window and --retries must not be negative")
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = d.SetupTimeout
	}
	if c.Retry <= 0 {
		c.Retry = d.Retry
	}
	if c.Retries == 0 {
		c.Retries = d.Retries
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = d.KeepAlive
	}
	if c.SleepDuration == 0 {
		c.SleepDuration = d.SleepDuration
	}
	if c.Drain <= 0 {
		c.Drain = max(2*time.Second, c.Duration)
	}
	if c.PID < 0 {
		return c, fmt.Errorf("bench: --pid %d: want a process ID", c.PID)
	}
	return c, nil
}

// resolveUDP resolves a host:port to one address, preferring IPv4.
func resolveUDP(hostport string) (netip.AddrPort, error) {
	ua, err := net.ResolveUDPAddr("udp", hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bench: resolve %q: %w", hostport, err)
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// sourceAddrs returns the local addresses the sockets bind to, in turn.
// An empty result lets the OS choose.
func sourceAddrs(c *Config, gw netip.AddrPort, run uint32) ([]netip.Addr, error) {
	n := c.Sources
	loop := gw.Addr().Is4() && gw.Addr().IsLoopback()
	if n == 0 {
		if !loop {
			return nil, nil
		}
		n = (c.Clients + 399) / 400
	}
	if n <= 1 {
		return nil, nil
	}
	if !loop {
		return nil, errors.New("bench: --sources needs a gateway on IPv4 loopback (127.0.0.0/8)")
	}
	if n > 1<<16 {
		return nil, fmt.Errorf("bench: --sources %d: at most 65536", n)
	}
	// A run-specific second octet gives each run fresh sources, so the
	// gateway's per-source budgets of an earlier run do not carry over.
	base := uint32(127)<<24 | (run%200+16)<<16
	out := make([]netip.Addr, n)
	for i := range out {
		v := base + uint32(i/250)<<8 + uint32(i%250) + 1
		out[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return out, nil
}

// clientID is the MQTT-SN client ID of client i of a run (at most 23
// bytes, as MQTT-SN 1.2 asks).
func clientID(dst []byte, run uint32, i uint32) []byte {
	dst = append(dst, "sb"...)
	dst = strconv.AppendUint(dst, uint64(run), 36)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, uint64(i), 10)
}
