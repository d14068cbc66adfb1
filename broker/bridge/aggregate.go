package bridge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker"
)

// aggregate is the aggregate mode: one upstream link, and one local
// broker session subscribed to the Up filters.
type aggregate struct {
	b       *Bridge
	up      rules
	down    rules
	localID string
	state   atomic.Int32
	version atomic.Int32
	// handle is the latest local attachment, for Stats.Queued (Pending
	// still counts the session's queue once it is detached).
	handle atomic.Pointer[broker.Session]
}

func newAggregate(b *Bridge) *aggregate {
	return &aggregate{b: b, up: rules(b.cfg.Up), down: rules(b.cfg.Down), localID: "sngate-bridge-" + b.cfg.ID}
}

// prepare makes sure, before the first upstream connection, that the
// bridge's local session exists and is subscribed to the Up filters: it
// attaches the session (held, so nothing is delivered), subscribes, and
// detaches it again. The session is then offline, exactly as while the
// link is down, and the broker queues for it (QoS 0 too unless
// DropQoS0WhileDown, bounded, persisted with a Store, for
// LocalSessionExpiry) until serve attaches it and drains the queue in
// order. Without it, what was published locally before upstream was
// first reached would be lost on a fresh data directory.
func (a *aggregate) prepare() {
	if len(a.up) == 0 {
		return
	}
	s := &aggSink{closed: make(chan struct{})}
	s.dead.Store(true) // held until Disconnect anyway: refuse everything
	sess, _, err := a.b.srv.Connect(a.localInfo(), s)
	if err != nil {
		a.b.log.Error("bridge: local session refused: nothing is queued for upstream until it is first reached",
			"client", a.localID, "err", err)
		return
	}
	a.handle.Store(sess)
	a.subscribeLocal(sess)
	sess.Disconnect(false)
}

// localInfo describes the bridge's local session.
func (a *aggregate) localInfo() broker.ConnectInfo {
	cfg := &a.b.cfg
	expiry := cfg.LocalSessionExpiry
	if expiry < 0 {
		expiry = broker.NoExpiry
	}
	return broker.ConnectInfo{
		ClientID:       a.localID,
		Username:       cfg.LocalUsername,
		Password:       []byte(cfg.LocalPassword),
		SessionExpiry:  expiry,
		ReceiveMaximum: uint16(cfg.MaxInflight),
		Listener:       "bridge",
		RemoteAddr:     cfg.URL,
		QueueQoS0:      !cfg.DropQoS0WhileDown,
	}
}

// subscribeLocal subscribes the local session to the Up filters (again:
// an existing subscription is replaced, without resending retained
// messages).
func (a *aggregate) subscribeLocal(sess *broker.Session) {
	subs := make([]broker.Subscription, len(a.up))
	for i, r := range a.up {
		subs[i] = broker.Subscription{Filter: r.LocalPrefix + r.Topic, QoS: r.QoS, NoLocal: true,
			RetainAsPublished: true, RetainHandling: 1}
	}
	for i, c := range sess.Subscribe(subs) {
		if c > 2 {
			a.b.log.Error("bridge: local subscription refused", "filter", subs[i].Filter, "reason", c)
		}
	}
}

// run connects, serves and reconnects until ctx ends.
func (a *aggregate) run(ctx context.Context) {
	cfg := &a.b.cfg
	bo := backoff{min: cfg.MinBackoff, max: cfg.MaxBackoff}
	connected := false
	for ctx.Err() == nil {
		a.state.Store(int32(StateConnecting))
		lc := &aggLink{a: a, ready: make(chan struct{})}
		lk, err := a.b.dial.connect(ctx, linkOptions{
			clientID:   cfg.ClientID,
			cleanStart: cfg.SessionExpiry < 0,
			expiry:     expirySeconds(cfg.SessionExpiry),
			receiveMax: uint16(cfg.MaxInflight),
			onMessage:  lc.onMessage,
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.b.st.failures.Add(1)
			a.state.Store(int32(StateDown))
			d := bo.next()
			a.b.log.Warn("bridge: upstream connect failed", "url", cfg.URL, "err", err, "retry_in", d.Round(time.Millisecond))
			sleep(ctx, d)
			continue
		}
		bo.reset()
		a.b.st.connects.Add(1)
		if connected {
			a.b.st.reconnects.Add(1)
		}
		connected = true
		a.version.Store(int32(lk.version()))
		stop := a.serve(ctx, lk, lc)
		a.state.Store(int32(StateDown))
		a.b.event("down", "")
		if stop || ctx.Err() != nil {
			return
		}
		d := bo.next()
		a.b.log.Warn("bridge: upstream link lost", "url", cfg.URL, "retry_in", d.Round(time.Millisecond))
		sleep(ctx, d)
	}
}

// aggLink is the state of one upstream connection of the aggregate link.
type aggLink struct {
	a     *aggregate
	ready chan struct{} // closed once sess is set (or attaching failed)
	sess  *broker.Session
	v4    bool
}

// serve runs one upstream connection: it attaches the local session,
// subscribes on both sides and forwards until the link or ctx ends. It
// reports whether the bridge must stop (the local broker shut down).
func (a *aggregate) serve(ctx context.Context, lk link, lc *aggLink) (stop bool) {
	cfg := &a.b.cfg
	log := a.b.log
	lc.v4 = lk.version() == 4
	s := &aggSink{out: make(chan broker.Delivery, cfg.MaxInflight+16), closed: make(chan struct{})}
	sess, _, err := a.b.srv.Connect(a.localInfo(), s)
	if err != nil {
		close(lc.ready)
		lk.close(false)
		log.Error("bridge: local session refused", "client", a.localID, "err", err)
		return errors.Is(err, broker.ErrServerShutdown)
	}
	lc.sess = sess
	a.handle.Store(sess)
	close(lc.ready)
	defer func() {
		s.dead.Store(true)
		sess.Disconnect(false)
		lk.close(false)
	}()

	a.subscribeLocal(sess)
	if len(a.down) > 0 {
		rs := make([]outSub, len(a.down))
		for i, r := range a.down {
			rs[i] = outSub{filter: r.RemotePrefix + r.Topic, qos: r.QoS}
		}
		codes, err := lk.subscribe(ctx, rs)
		if err != nil {
			log.Warn("bridge: upstream subscribe failed", "err", err)
			return false
		}
		for i, c := range codes {
			if c >= 0x80 {
				log.Error("bridge: upstream subscription refused", "filter", rs[i].filter, "reason", c)
			}
		}
	}
	sess.Resume()
	a.state.Store(int32(StateConnected))
	a.b.event("connected", "")
	log.Info("bridge: upstream connected", "url", cfg.URL, "client", cfg.ClientID, "mqtt", lk.version(),
		"session_present", lk.sessionPresent())

	for {
		var d broker.Delivery
		select {
		case d = <-s.out:
		case <-lk.done():
			return false
		case <-s.closed:
			return true
		case <-ctx.Done():
			return true
		}
		s.resume(sess)
		a.forward(ctx, lk, sess, d)
	}
}

// forward sends one local delivery upstream.
func (a *aggregate) forward(ctx context.Context, lk link, sess *broker.Session, d broker.Delivery) {
	b := a.b
	if d.Release {
		sess.Complete(d.PacketID) // upstream had it: only the local PUBCOMP was missing
		return
	}
	m := d.Msg
	if b.tr != nil && b.tr.owns(m.From) {
		finish(sess, d) // its own upstream link carries it
		return
	}
	if origin(m.Props) == b.cfg.ID {
		b.drop(true, "bridge: message from upstream not sent up again", "topic", m.Topic)
		finish(sess, d)
		return
	}
	remote, _, ok := a.up.mapUp(m.Topic)
	if !ok {
		b.drop(false, "bridge: no up rule for topic", "topic", m.Topic)
		finish(sess, d)
		return
	}
	om, live := toOut(m, remote, d.QoS, d.Retain, b.cfg.ID)
	if !live {
		b.drop(false, "bridge: message expired before it went up", "topic", m.Topic)
		finish(sess, d)
		return
	}
	err := lk.publish(ctx, om, func(err error) { a.acked(sess, d, err) })
	if err != nil {
		a.acked(sess, d, err)
	}
}

// acked handles the outcome of an upstream publish.
func (a *aggregate) acked(sess *broker.Session, d broker.Delivery, err error) {
	b := a.b
	var rej *rejectedError
	switch {
	case err == nil:
		b.st.sent.Add(1)
		finish(sess, d)
	case errors.As(err, &rej):
		b.drop(false, "bridge: upstream refused a message", "topic", d.Msg.Topic, "err", err)
		finish(sess, d)
	case d.QoS == 0:
		b.drop(false, "bridge: QoS 0 message lost with the upstream link", "topic", d.Msg.Topic)
	default:
		// Link lost: the message stays in flight in the local session and
		// is resent, in order, on the next link.
	}
}

// finish completes the local delivery d.
func finish(sess *broker.Session, d broker.Delivery) {
	switch d.QoS {
	case 1:
		sess.Ack(d.PacketID)
	case 2:
		sess.Received(d.PacketID)
		sess.Complete(d.PacketID)
	}
}

// onMessage publishes a message from upstream locally. It runs on the
// link's goroutine.
func (lc *aggLink) onMessage(m *inMsg) bool {
	<-lc.ready
	a, b := lc.a, lc.a.b
	if lc.sess == nil {
		return false
	}
	local, r, ok := a.down.mapDown(m.topic)
	if !ok {
		b.drop(false, "bridge: no down rule for topic", "topic", m.topic)
		return true
	}
	if originOf(m.user) == b.cfg.ID {
		b.drop(true, "bridge: own message echoed by upstream", "topic", m.topic)
		return true
	}
	if lc.v4 {
		if _, _, echo := a.up.mapDown(m.topic); echo { // a topic an up rule sends to
			b.drop(true, "bridge: 3.1.1 message in an up rule's remote space (possible echo)", "topic", m.topic)
			return true
		}
	}
	msg := fromIn(m, local, min(m.qos, r.QoS))
	switch err := lc.sess.Publish(msg); {
	case err == nil:
		b.st.received.Add(1)
	case errors.Is(err, broker.ErrSessionClosed), errors.Is(err, broker.ErrServerShutdown):
		return false
	default:
		b.drop(false, "bridge: local broker refused a message from upstream", "topic", local, "err", err)
	}
	return true
}

// aggSink is the Sink of the bridge's local session: it hands deliveries
// to the forwarding loop through a bounded channel, refusing when it is
// full (the broker then queues) or when the link is gone.
type aggSink struct {
	out     chan broker.Delivery
	mu      sync.Mutex
	refused bool
	dead    atomic.Bool
	closed  chan struct{}
	once    sync.Once
}

// Deliver implements broker.Sink.
func (s *aggSink) Deliver(d broker.Delivery) bool {
	if s.dead.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.out <- d:
		return true
	default:
		s.refused = true
		return false
	}
}

// Closed implements broker.Sink.
func (s *aggSink) Closed(error) {
	s.dead.Store(true)
	s.once.Do(func() { close(s.closed) })
}

// resume calls Resume if a delivery was refused since the last call.
func (s *aggSink) resume(sess *broker.Session) {
	s.mu.Lock()
	r := s.refused
	s.refused = false
	s.mu.Unlock()
	if r {
		sess.Resume()
	}
}

// toOut converts a local message for upstream; live is false if it has
// expired.
func toOut(m *broker.Message, topic string, qos byte, retain bool, id string) (om *outMsg, live bool) {
	om = &outMsg{topic: topic, payload: m.Payload, qos: qos, retain: retain}
	if !m.Expiry.IsZero() {
		left := time.Until(m.Expiry)
		if left <= 0 {
			return nil, false
		}
		om.expiry = uint32(min((left+time.Second-1)/time.Second, 0xFFFFFFFF))
	}
	if p := m.Props; p != nil {
		om.contentType, om.responseTopic, om.correlationData, om.payloadFormat =
			p.ContentType, p.ResponseTopic, p.CorrelationData, p.PayloadFormat
	}
	for _, u := range withOrigin(m.Props, id) {
		om.user = append(om.user, [2]string{u.Key, u.Value})
	}
	return om, true
}

// fromIn converts a message from upstream for the local broker.
func fromIn(m *inMsg, topic string, qos byte) *broker.Message {
	msg := &broker.Message{Topic: topic, Payload: m.payload, QoS: qos, Retain: m.retain}
	if m.expiry > 0 {
		msg.Expiry = time.Now().Add(time.Duration(m.expiry) * time.Second)
	}
	if m.contentType != "" || m.responseTopic != "" || m.correlationData != nil || m.payloadFormat != 0 || len(m.user) > 0 {
		p := &broker.Properties{PayloadFormat: m.payloadFormat, ContentType: m.contentType,
			ResponseTopic: m.responseTopic, CorrelationData: m.correlationData}
		for _, u := range m.user {
			p.User = append(p.User, broker.UserProperty{Key: u[0], Value: u[1]})
		}
		msg.Props = p
	}
	return msg
}

// originOf returns the origin mark among user properties.
func originOf(user [][2]string) string {
	for _, u := range user {
		if u[0] == OriginProperty {
			return u[1]
		}
	}
	return ""
}
