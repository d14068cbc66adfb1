// Package bridge connects sngate's integrated broker to an upstream MQTT
// broker or cluster (EMQX, VerneMQ, HiveMQ, Mosquitto): this is how a
// fleet of sngate gateways at the edge scales past one machine.
//
// Two modes, usable together:
//
//   - Aggregate: one upstream connection for the whole gateway
//     (Config.ClientID). Up rules name the local topics that go up, with a
//     prefix remap and a QoS; Down rules name the remote topics that come
//     down. Locally the bridge is an ordinary in-process broker session
//     ("sngate-bridge-<ID>") subscribed to the Up filters; messages from
//     upstream are published locally through that session.
//   - Transparent: every MQTT-SN client gets its own upstream session
//     under its own client ID, with its subscriptions and will. Its
//     session lives in the cluster, so a sensor can move between gateways
//     that bridge to the same cluster and keep its subscriptions. The
//     bridge learns about MQTT-SN sessions through broker.Observer and
//     hands a sensor what its upstream session receives with
//     broker.Server.DeliverTo (to that session only).
//
// The upstream link speaks MQTT 5 (paho.golang). With ProtocolVersion 0,
// a broker that refuses version 5 with "unsupported protocol version"
// (an MQTT 5 CONNACK 0x84, or a 3.1.1 CONNACK return code 1) is retried
// as MQTT 3.1.1 (paho.mqtt.golang). The bridge reconnects with an
// exponential backoff and keeps what it could not send.
//
// # Delivery and queueing
//
// Aggregate up: the bridge's local session is persistent. A QoS 1/2
// message is acknowledged to the local broker only once upstream has
// acknowledged it; while the link is down, and from Start until upstream
// is first reached, the bridge's session is offline and the broker
// queues for it (bounded by broker.Config.MaxQueuedMessages,
// persisted with a broker Store, QoS 0 too unless DropQoS0WhileDown). On
// reconnect the broker resends the unacknowledged messages, in order,
// then the queue: nothing acknowledged is lost, and order is kept.
// Aggregate down: a message from upstream is acknowledged upstream after
// the local broker has taken it (durable with a Store); the upstream
// session is persistent (SessionExpiry), so the cluster queues while the
// link is down. Both directions are at least once.
//
// Transparent up: a sensor's publishes wait in a per-client in-memory
// queue (TransparentConfig.MaxQueued; drops counted in Stats.Dropped) for
// its upstream link and are resent until acknowledged. Not persisted.
//
// # Loop prevention
//
//   - Local No Local: the bridge's local subscriptions have No Local, and
//     messages from upstream are published with the bridge's client ID,
//     so a message that came down never goes back up through the bridge.
//   - Upstream No Local (MQTT 5): the aggregate and transparent upstream
//     subscriptions have No Local, so the cluster does not echo the
//     bridge's own publishes back to it.
//   - Origin marking (MQTT 5): every message sent up carries the user
//     property sngate-origin=<ID> (kept if it already has one). A message
//     from upstream marked with this gateway's ID is not published
//     locally again (the local broker already delivered it here), and a
//     local message marked with it is not sent up again.
//   - MQTT 3.1.1 has neither No Local nor user properties: keep the
//     remote topic spaces of Up and Down rules apart (per-gateway remote
//     prefixes). The bridge drops, as a possible echo, any message from a
//     3.1.1 upstream whose topic an Up rule could have produced.
//
// Every drop is counted in Stats (Dropped, LoopDrops).
package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker"
)

// State is the state of the aggregate upstream link.
type State int32

// Link states.
const (
	StateIdle       State = iota // StateIdle: no aggregate link (transparent mode only) or not started.
	StateConnecting              // StateConnecting: a connection attempt is under way.
	StateConnected               // StateConnected: the link is up.
	StateDown                    // StateDown: the link is down, waiting to retry.
	StateClosed                  // StateClosed: the bridge is closed.
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDown:
		return "down"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Stats are the bridge's counters (since New) and gauges.
type Stats struct {
	// Upstream is the state of the aggregate link, and ProtocolVersion
	// its MQTT version while connected (5 or 4), 0 otherwise.
	Upstream        State
	ProtocolVersion int
	// Queued is the number of messages waiting for upstream: the
	// aggregate session's queue and in-flight messages in the broker, plus
	// the transparent clients' queues.
	Queued int64
	// Sent counts messages acknowledged upstream (QoS 0: written);
	// Received messages from upstream handed to the local broker.
	Sent     uint64
	Received uint64
	// Dropped counts messages given up: refused by upstream or by the
	// local broker, QoS 0 lost with a link, matching no rule, or beyond a
	// full transparent queue. LoopDrops counts messages dropped by loop
	// prevention (origin mark, 3.1.1 echo rule).
	Dropped   uint64
	LoopDrops uint64
	// Connects counts successful upstream connections, Reconnects those
	// after a lost link, ConnectFailures failed attempts (every link).
	Connects        uint64
	Reconnects      uint64
	ConnectFailures uint64
	// TransparentClients is the number of mirrored MQTT-SN clients and
	// TransparentConnected those whose upstream link is up.
	// TransparentRejected counts clients not mirrored (MaxClients).
	TransparentClients   int64
	TransparentConnected int64
	TransparentRejected  uint64
}

type counters struct {
	sent, received, dropped, loopDrops         atomic.Uint64
	connects, reconnects, failures, trRejected atomic.Uint64
}

// Bridge links the local broker to an upstream broker. Create it with
// New, start it with Start, stop it with Close.
type Bridge struct {
	cfg  Config
	srv  *broker.Server
	log  *slog.Logger
	dial *dialer
	agg  *aggregate
	tr   *transparent
	st   counters

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	closed atomic.Bool

	dropLogAt atomic.Int64
	// onEvent, when set (tests, before Start), is told about state
	// changes: "connected", "down", and for transparent clients
	// "t-connected", "t-idle", "t-moved", "t-removed".
	onEvent func(kind, client string)
}

// event reports a state change to onEvent.
func (b *Bridge) event(kind, client string) {
	if b.onEvent != nil {
		b.onEvent(kind, client)
	}
}

// New validates cfg (Config.Validate) and creates a bridge for srv. It
// does not connect: call Start.
func New(cfg Config, srv *broker.Server) (*Bridge, error) {
	if srv == nil {
		return nil, fmt.Errorf("bridge: nil broker server")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ep, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	tc, err := cfg.tlsConfig(ep)
	if err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, srv: srv, log: cfg.Logger.With("bridge", cfg.ID)}
	b.dial = &dialer{cfg: &b.cfg, ep: ep, tls: tc}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if len(cfg.Up) > 0 || len(cfg.Down) > 0 {
		b.agg = newAggregate(b)
	}
	if cfg.Transparent.Enabled {
		b.tr = newTransparent(b)
	}
	return b, nil
}

// Start creates the bridge's local session with its Up subscriptions
// (aggregate mode), so that the broker queues for upstream from now on,
// connects upstream in the background and, in transparent mode, starts
// following MQTT-SN sessions. Call it before the gateway serves, so that
// no sensor session or message is missed. It does nothing after the
// first call.
func (b *Bridge) Start() {
	b.once.Do(func() {
		if b.closed.Load() {
			return
		}
		if b.tr != nil {
			b.tr.start()
		}
		if b.agg != nil {
			b.agg.prepare()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.agg.run(b.ctx)
			}()
		}
		b.log.Info("bridge started", "url", b.cfg.URL, "aggregate", b.agg != nil, "transparent", b.tr != nil)
	})
}

// Close disconnects from upstream (persistent upstream sessions stay in
// the cluster until they expire) and waits for the bridge's goroutines.
// Messages not yet acknowledged upstream stay queued in the local broker
// (aggregate) or are dropped (transparent queues).
func (b *Bridge) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.once.Do(func() {}) // a later Start does nothing
	if b.tr != nil {
		b.tr.stop()
	}
	b.cancel()
	b.wg.Wait()
	if b.agg != nil {
		b.agg.state.Store(int32(StateClosed))
	}
	b.log.Info("bridge closed")
	return nil
}

// Stats returns a snapshot of the bridge's statistics.
func (b *Bridge) Stats() Stats {
	s := Stats{
		Sent:                b.st.sent.Load(),
		Received:            b.st.received.Load(),
		Dropped:             b.st.dropped.Load(),
		LoopDrops:           b.st.loopDrops.Load(),
		Connects:            b.st.connects.Load(),
		Reconnects:          b.st.reconnects.Load(),
		ConnectFailures:     b.st.failures.Load(),
		TransparentRejected: b.st.trRejected.Load(),
	}
	if a := b.agg; a != nil {
		s.Upstream = State(a.state.Load())
		if s.Upstream == StateConnected {
			s.ProtocolVersion = int(a.version.Load())
		}
		if h := a.handle.Load(); h != nil {
			s.Queued += int64(h.Pending())
		}
	}
	if t := b.tr; t != nil {
		s.TransparentClients = t.clients.Load()
		s.TransparentConnected = t.connected.Load()
		s.Queued += t.queued.Load()
	}
	return s
}

// drop counts a dropped message and logs it, at most once a second.
func (b *Bridge) drop(loop bool, msg string, args ...any) {
	if loop {
		b.st.loopDrops.Add(1)
	} else {
		b.st.dropped.Add(1)
	}
	now := time.Now().UnixNano()
	last := b.dropLogAt.Load()
	if now-last < int64(time.Second) || !b.dropLogAt.CompareAndSwap(last, now) {
		return
	}
	b.log.Warn(msg, append(args, "dropped_total", b.st.dropped.Load(), "loop_drops_total", b.st.loopDrops.Load())...)
}
