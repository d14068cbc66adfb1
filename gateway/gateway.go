// Package gateway is sngate's MQTT-SN 1.2 protocol engine. It speaks
// MQTT-SN with sensors over transport.Links and attaches every MQTT-SN
// client to the integrated broker as a session through the broker's
// in-process API: nothing is re-encoded to MQTT.
//
// Clients are keyed by client ID. Each link keeps its own address binding
// (UDP ip:port, radio address, or forwarder plus wireless node ID), which
// moves only with CONNECT or PINGREQ(ClientId), so a sleeping client that
// wakes from a new address keeps its session and its buffered messages.
//
// Work is split over a few shards. Each is one goroutine that owns the
// clients hashed to it, with a bounded inbox and one runtime timer armed
// to the earliest deadline of a per-shard heap. One reader goroutine per
// link decodes just enough of each frame to route it. Idle and sleeping
// clients cost memory only: no goroutine, no polling, no read deadline.
//
//	g, err := gateway.New(gateway.DefaultConfig(), srv, link)
//	go g.Serve()
//	...
//	g.Close()
package gateway

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/udp"
)

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("gateway: closed")

// batchWriter is implemented by links that send many frames per system
// call (transport/udp).
type batchWriter interface {
	WriteBatch(ds []udp.Datagram) (int, error)
}

// linkState is one link with its address bindings.
type linkState struct {
	idx      int
	l        transport.Link
	name     string
	listener string
	mtu      int
	ident    transport.Identifier
	// allow is the identity policy of an authenticating link (ident set):
	// its LinkPolicy, or the global Identities.
	allow func(identity, clientID string) bool
	prio  transport.PriorityWriter
	batch batchWriter
	fb    *linkFeedback // delivery failures, retry advice, congestion (radiolink.go)
	ctr   linkCounters  // LinkStats (linkstats.go)

	mu   sync.RWMutex
	bind map[peerKey]*client
}

// lookup returns the client bound to k.
func (ls *linkState) lookup(k *peerKey) *client {
	ls.mu.RLock()
	c := ls.bind[*k]
	ls.mu.RUnlock()
	return c
}

// Gateway is the MQTT-SN gateway. Create it with New, run it with Serve,
// stop it with Close.
type Gateway struct {
	cfg Config
	// pol is the admission policy as the shards read it, without
	// synchronisation: Reload replaces it (and the admission fields of
	// cfg, and the links' allow functions) only while every shard is
	// parked. live is the same policy for the link readers.
	pol    *policy
	live   atomic.Pointer[policy]
	srv    *broker.Server
	log    *slog.Logger
	debug  bool
	links  []*linkState
	shards []*shard
	seed   maphash.Seed
	limits *sourceLimiter
	stats  counters
	epoch  time.Time

	done      chan struct{}
	closeOnce sync.Once
	serving   atomic.Bool
	wg        sync.WaitGroup

	reloadMu sync.Mutex // serialises Reload with itself and with starting the shards
	started  bool       // the shards run (guarded by reloadMu)
}

// New creates a gateway that serves MQTT-SN on links and attaches its
// clients to srv. It validates cfg; zero numeric fields take defaults.
func New(cfg Config, srv *broker.Server, links ...transport.Link) (*Gateway, error) {
	if srv == nil {
		return nil, errors.New("gateway: nil broker server")
	}
	if len(links) == 0 {
		return nil, errors.New("gateway: no links")
	}
	if len(links) > 255 {
		return nil, errors.New("gateway: too many links")
	}
	cfg = cfg.withDefaults()
	pol, err := compilePolicy(&cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	g := &Gateway{
		cfg:   cfg,
		pol:   pol,
		srv:   srv,
		log:   cfg.Logger,
		seed:  maphash.MakeSeed(),
		epoch: time.Now(),
		done:  make(chan struct{}),
	}
	g.live.Store(pol)
	g.debug = g.log.Handler().Enabled(context.Background(), slog.LevelDebug)
	g.limits = newSourceLimiter(cfg.NewClientRate, cfg.NewClientBurst, cfg.MaxPendingConnectsPerSource, cfg.MaxSources)
	for i, l := range links {
		if l == nil {
			return nil, fmt.Errorf("gateway: link %d is nil", i)
		}
		ls := &linkState{idx: i, l: l, name: l.Name(), listener: "sn-" + l.Name(), mtu: l.MTU(),
			bind: make(map[peerKey]*client)}
		if ls.mtu <= 0 || ls.mtu > cfg.MaxPacketSize {
			ls.mtu = cfg.MaxPacketSize
		}
		ls.ident, _ = l.(transport.Identifier)
		ls.prio, _ = l.(transport.PriorityWriter)
		ls.batch, _ = l.(batchWriter)
		ls.fb = newLinkFeedback(l)
		g.links = append(g.links, ls)
	}
	allow, err := g.linkAllows(pol, cfg.LinkPolicies)
	if err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	for i, ls := range g.links {
		ls.allow = allow[i]
	}
	for i := 0; i < cfg.Shards; i++ {
		g.shards = append(g.shards, newShard(g, i))
	}
	return g, nil
}

// linkAllows returns the identity policy of each link, indexed like
// g.links: for links that authenticate peers, the Allowed function of
// their entry in ps (Config.LinkPolicies), else pol's global Identities;
// nil for the other links. It checks ps and changes nothing.
func (g *Gateway) linkAllows(pol *policy, ps []LinkPolicy) ([]func(identity, clientID string) bool, error) {
	allow := make([]func(identity, clientID string) bool, len(g.links))
	for i, ls := range g.links {
		if ls.ident != nil {
			allow[i] = pol.identityAllows
		}
	}
	own := make(map[int]bool, len(ps))
	for i, p := range ps {
		if p.Link == nil {
			return nil, fmt.Errorf("link policy %d: no link", i)
		}
		if p.Allowed == nil {
			return nil, fmt.Errorf("link policy %d (link %s): no Allowed function", i, p.Link.Name())
		}
		var ls *linkState
		for _, cand := range g.links {
			if sameLink(cand.l, p.Link) {
				ls = cand
				break
			}
		}
		switch {
		case ls == nil:
			return nil, fmt.Errorf("link policy %d (link %s): not one of the gateway's links", i, p.Link.Name())
		case ls.ident == nil:
			return nil, fmt.Errorf("link policy %d (link %s): the link does not authenticate peers (no transport.Identifier)", i, ls.name)
		case own[ls.idx]:
			return nil, fmt.Errorf("link policy %d (link %s): a second policy for the same link", i, ls.name)
		}
		own[ls.idx] = true
		allow[ls.idx] = p.Allowed
	}
	return allow, nil
}

// now is the gateway's monotonic clock in nanoseconds.
func (g *Gateway) now() int64 { return int64(time.Since(g.epoch)) }

// seconds converts a protocol Duration field to nanoseconds.
func (g *Gateway) seconds(n uint16, factor float64) int64 {
	return int64(float64(n) * float64(g.cfg.second) * factor)
}

// Serve runs the gateway until Close and returns ErrClosed. It starts one
// reader per link, the shards and the ADVERTISE timer.
func (g *Gateway) Serve() error {
	if g.serving.Swap(true) {
		return errors.New("gateway: Serve called twice")
	}
	select {
	case <-g.done:
		return ErrClosed
	default:
	}
	g.reloadMu.Lock()
	for _, sh := range g.shards {
		g.wg.Add(1)
		go sh.run()
	}
	g.started = true
	g.reloadMu.Unlock()
	for _, ls := range g.links {
		g.wg.Add(1)
		go g.readLoop(ls)
	}
	g.startLinkFeedback()
	if g.cfg.AdvertiseInterval > 0 {
		g.wg.Add(1)
		go g.advertiseLoop()
	}
	g.log.Info("gateway serving", "links", len(g.links), "shards", len(g.shards), "gateway_id", g.cfg.GatewayID)
	<-g.done
	g.wg.Wait()
	return ErrClosed
}

// Close stops the gateway gracefully: every connected client gets a
// DISCONNECT and its session is detached without its will (persistent
// sessions stay in the broker). It closes the links and waits for Serve's
// goroutines.
func (g *Gateway) Close() error {
	var err error
	g.closeOnce.Do(func() {
		close(g.done)
		if g.serving.Load() {
			// Shards say goodbye to their clients before links close.
			for _, sh := range g.shards {
				<-sh.stopped
			}
		}
		for _, ls := range g.links {
			if cerr := ls.l.Close(); cerr != nil && err == nil && !errors.Is(cerr, transport.ErrClosed) {
				err = fmt.Errorf("gateway: close link %s: %w", ls.name, cerr)
			}
		}
		g.wg.Wait()
		g.log.Info("gateway closed")
	})
	return err
}

// readLoop reads frames from one link and routes them to shards.
func (g *Gateway) readLoop(ls *linkState) {
	defer g.wg.Done()
	buf := make([]byte, ls.mtu)
	var scratch sn.Packet
	for {
		n, from, err := ls.l.ReadFrom(buf)
		if err != nil {
			select {
			case <-g.done:
				return
			default:
			}
			if errors.Is(err, transport.ErrClosed) {
				return
			}
			g.log.Warn("link read failed", "link", ls.name, "err", err)
			select {
			case <-g.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		g.stats.framesIn.Add(1)
		g.route(ls, from, buf[:n], &scratch)
	}
}

// hashString picks the shard of a client ID.
func (g *Gateway) shardOf(id []byte) *shard {
	if len(g.shards) == 1 {
		return g.shards[0]
	}
	return g.shards[maphash.Bytes(g.seed, id)%uint64(len(g.shards))]
}

// shardOfKey picks the shard of an address that has no client.
func (g *Gateway) shardOfKey(k *peerKey) *shard {
	if len(g.shards) == 1 {
		return g.shards[0]
	}
	var h maphash.Hash
	h.SetSeed(g.seed)
	h.Write(k.addr.Bytes())
	h.Write(k.nodeID())
	return g.shards[h.Sum64()%uint64(len(g.shards))]
}

// route decodes the frame's header (and encapsulation) far enough to pick
// the owning shard, then posts a copy of the frame there.
func (g *Gateway) route(ls *linkState, from transport.Addr, frame []byte, p *sn.Packet) {
	key := peerKey{addr: from}
	inner := frame
	whole := false
	h, err := sn.ParseHeader(frame)
	if err != nil {
		g.malformed(ls, from, err)
		return
	}
	if sn.V12.MsgType(h.Code) == sn.TypeEncapsulated {
		pol := g.live.Load()
		if pol.fwdOff {
			g.stats.rejectForwarder.Add(1)
			return
		}
		// The Forwarders list names IP peers; senders on links without IP
		// addresses (a serial bridge, radio nodes) are not subject to it.
		ap, ok := from.AddrPort()
		if (ok || ls.ident != nil) && !pol.forwarderAllowed(ap, ok) {
			g.stats.rejectForwarder.Add(1)
			g.log.Debug("encapsulated frame from a forwarder not allowed", "link", ls.name, "from", from)
			return
		}
		if err := sn.Decode(frame, p); err != nil {
			g.malformed(ls, from, err)
			return
		}
		enc := &p.Encapsulated
		if len(enc.NodeID) > maxNodeID {
			g.malformed(ls, from, errors.New("wireless node ID too long"))
			return
		}
		key.nlen = uint8(copy(key.node[:], enc.NodeID))
		inner, whole = enc.Message, enc.WholeLength
		g.stats.encapIn.Add(1)
	}
	if h, err = sn.ParseHeader(inner); err != nil {
		g.malformed(ls, from, err)
		return
	}
	var id []byte
	switch sn.V12.MsgType(h.Code) {
	case sn.TypeConnect:
		if off := h.Size() + 4; h.Length == len(inner) && len(inner) > off {
			id = inner[off:]
		}
	case sn.TypePingreq:
		if off := h.Size(); h.Length == len(inner) && len(inner) > off {
			id = inner[off:]
		}
	}
	var sh *shard
	var c *client
	if id != nil {
		sh = g.shardOf(id)
	} else if c = ls.lookup(&key); c != nil {
		sh = c.shard
	} else {
		sh = g.shardOfKey(&key)
	}
	sh.postFrame(ls, &key, c, frame, len(frame)-len(inner), whole)
}

func (g *Gateway) malformed(ls *linkState, from transport.Addr, err error) {
	g.stats.malformed.Add(1)
	if g.debug {
		g.log.Debug("malformed frame dropped", "link", ls.name, "from", from, "err", err)
	}
}
