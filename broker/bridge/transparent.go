package bridge

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sngate/sngate/broker"
)

// maxPendingUnsubs bounds the upstream unsubscriptions a client can have
// waiting for its link.
const maxPendingUnsubs = 1024

// transparent is the transparent mode: it follows the MQTT-SN sessions of
// the local broker (as its broker.Observer) and mirrors each one with an
// upstream session of its own, run by one goroutine per client.
type transparent struct {
	b   *Bridge
	cfg *TransparentConfig

	mu      sync.RWMutex
	m       map[string]*tclient
	stopped bool
	off     atomic.Bool // stopped, readable without mu

	clients, connected, queued atomic.Int64
}

func newTransparent(b *Bridge) *transparent {
	return &transparent{b: b, cfg: &b.cfg.Transparent, m: make(map[string]*tclient)}
}

// start installs the observer.
func (t *transparent) start() {
	prefix := t.cfg.ListenerPrefix
	t.b.srv.SetObserver(t, func(ci *broker.ConnectInfo) bool { return strings.HasPrefix(ci.Listener, prefix) })
}

// stop removes the observer; the workers stop with the bridge's context.
func (t *transparent) stop() {
	t.b.srv.SetObserver(nil, nil)
	t.mu.Lock()
	t.stopped = true
	t.off.Store(true)
	t.mu.Unlock()
}

// owns reports whether id is a mirrored client.
func (t *transparent) owns(id string) bool {
	if id == "" {
		return false
	}
	t.mu.RLock()
	_, ok := t.m[id]
	t.mu.RUnlock()
	return ok
}

// get returns the mirrored client id, nil if none or after stop (an
// attachment stays observed after SetObserver(nil)).
func (t *transparent) get(id string) *tclient {
	if t.off.Load() {
		return nil
	}
	t.mu.RLock()
	c := t.m[id]
	t.mu.RUnlock()
	return c
}

// tclient is one mirrored MQTT-SN client. The observer methods update its
// desired state under mu and wake its worker, which owns the link.
type tclient struct {
	t    *transparent
	id   string
	wake chan struct{}

	mu         sync.Mutex
	clean      bool // the next upstream connect uses Clean Start
	persistent bool
	will       *broker.Will
	subs       map[string]byte // the client's subscriptions: local filter -> QoS
	toSub      map[string]byte // waiting to be subscribed upstream
	toUnsub    map[string]bool // waiting to be unsubscribed upstream
	pubs       []*broker.Message
	leaving    bool // the client left: close the link (after the queue)
	leaveWill  bool // ... so that the cluster publishes the will
	moved      bool // another connection took the upstream session over
	active     bool // the client did something here since the last link loss
	// wantGen counts observer changes, doneGen the last one the worker
	// had fully applied upstream (tests wait for doneGen == wantGen).
	wantGen, doneGen uint64
}

// touch records activity of the client at this gateway: proof that it is
// here, so that its upstream session is claimed back if it moved. Caller
// holds c.mu.
func (c *tclient) touch() {
	c.wantGen++
	c.active, c.moved = true, false
}

func (c *tclient) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// SessionConnected implements broker.Observer.
func (t *transparent) SessionConnected(info broker.ConnectInfo, present bool) {
	t.mu.Lock()
	c := t.m[info.ClientID]
	start := c == nil
	if start {
		if t.stopped {
			t.mu.Unlock()
			return
		}
		if len(t.m) >= t.cfg.MaxClients {
			t.mu.Unlock()
			t.b.st.trRejected.Add(1)
			t.b.log.Warn("bridge: transparent client not mirrored: MaxClients reached", "client", info.ClientID, "max", t.cfg.MaxClients)
			return
		}
		c = &tclient{t: t, id: info.ClientID, wake: make(chan struct{}, 1),
			subs: map[string]byte{}, toSub: map[string]byte{}, toUnsub: map[string]bool{}}
		t.m[info.ClientID] = c
		t.clients.Add(1)
		t.b.wg.Add(1)
	}
	// Set the state before the worker (of a new client) reads it, and
	// under t.mu so that remove sees this connect.
	c.mu.Lock()
	c.touch()
	c.leaving, c.leaveWill = false, false
	if info.CleanStart {
		c.clean = true
		clear(c.subs)
		clear(c.toSub)
		clear(c.toUnsub)
	}
	c.persistent = info.SessionExpiry > 0
	c.will = info.Will
	c.mu.Unlock()
	t.mu.Unlock()
	if start {
		go func() {
			defer t.b.wg.Done()
			c.run(t.b.ctx)
		}()
	}
	c.signal()
}

// SessionSubscribed implements broker.Observer.
func (t *transparent) SessionSubscribed(id string, subs []broker.Subscription, codes []byte) {
	c := t.get(id)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.touch()
	for i, s := range subs {
		if i < len(codes) && codes[i] <= 2 {
			c.subs[s.Filter] = codes[i]
			c.toSub[s.Filter] = codes[i]
			delete(c.toUnsub, s.Filter)
		}
	}
	c.mu.Unlock()
	c.signal()
}

// SessionUnsubscribed implements broker.Observer. A filter the local
// session did not have (0x11) is unsubscribed upstream too: a sensor that
// moved here may drop a subscription made at another gateway.
func (t *transparent) SessionUnsubscribed(id string, filters []string, codes []byte) {
	c := t.get(id)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.touch()
	for i, f := range filters {
		if i < len(codes) && (codes[i] == broker.ReasonSuccess || codes[i] == broker.ReasonNoSubscription) {
			delete(c.subs, f)
			delete(c.toSub, f)
			if len(c.toUnsub) < maxPendingUnsubs {
				c.toUnsub[f] = true
			}
		}
	}
	c.mu.Unlock()
	c.signal()
}

// SessionWill implements broker.Observer.
func (t *transparent) SessionWill(id string, w *broker.Will) {
	if c := t.get(id); c != nil {
		c.mu.Lock()
		c.touch()
		c.will = w
		c.mu.Unlock()
		c.signal()
	}
}

// SessionPublished implements broker.Observer.
func (t *transparent) SessionPublished(id string, m *broker.Message) {
	c := t.get(id)
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.pubs) >= t.cfg.MaxQueued {
		c.mu.Unlock()
		t.b.drop(false, "bridge: transparent queue full", "client", id, "topic", m.Topic)
		return
	}
	c.pubs = append(c.pubs, m)
	c.touch()
	c.mu.Unlock()
	t.queued.Add(1)
	c.signal()
}

// SessionDisconnected implements broker.Observer.
func (t *transparent) SessionDisconnected(id string, sendWill bool) {
	if c := t.get(id); c != nil {
		c.mu.Lock()
		c.wantGen++
		c.leaving = true
		c.leaveWill = sendWill && c.will != nil
		c.mu.Unlock()
		c.signal()
	}
}

// remote maps a local topic or filter to upstream.
func (t *transparent) remote(f string) string {
	p := t.cfg.RemotePrefix
	if p == "" {
		return f
	}
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		if group, filter, ok := strings.Cut(rest, "/"); ok {
			return "$share/" + group + "/" + p + filter
		}
	}
	return p + f
}

// outWill converts a will for the upstream CONNECT.
func (t *transparent) outWill(w *broker.Will) *outMsg {
	if w == nil {
		return nil
	}
	om, _ := toOut(&w.Msg, t.remote(w.Msg.Topic), w.Msg.QoS, w.Msg.Retain, t.b.cfg.ID)
	om.expiry = 0
	return om
}

// sameWill reports whether two wills are the same message.
func sameWill(a, b *broker.Will) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Msg.Topic == b.Msg.Topic && a.Msg.QoS == b.Msg.QoS && a.Msg.Retain == b.Msg.Retain &&
		bytes.Equal(a.Msg.Payload, b.Msg.Payload)
}

// onMessage hands a message that the client's upstream session received
// to the client's local session only.
func (c *tclient) onMessage(m *inMsg) bool {
	t, b := c.t, c.t.b
	local, ok := strings.CutPrefix(m.topic, t.cfg.RemotePrefix)
	if !ok || local == "" {
		b.drop(false, "bridge: upstream topic outside the transparent prefix", "client", c.id, "topic", m.topic)
		return true
	}
	if originOf(m.user) == b.cfg.ID && c.subscribedLocally(local) {
		// Published at this gateway: the local broker delivered it already.
		b.drop(true, "bridge: own message from upstream not delivered twice", "client", c.id, "topic", local)
		return true
	}
	switch err := b.srv.DeliverTo(c.id, fromIn(m, local, m.qos), m.qos); {
	case err == nil:
		b.st.received.Add(1)
	case errors.Is(err, broker.ErrServerShutdown):
		return false
	default:
		b.drop(false, "bridge: message for a transparent client not delivered", "client", c.id, "topic", local, "err", err)
	}
	return true
}

// subscribedLocally reports whether one of the client's local
// subscriptions matches topic.
func (c *tclient) subscribedLocally(topic string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for f := range c.subs {
		if match(f, topic) {
			return true
		}
	}
	return false
}
