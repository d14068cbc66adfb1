package gateway

import (
	"github.com/sngate/sngate/sn"
)

// onFrame decodes one frame and dispatches it by message type and the
// sender's client state.
func (sh *shard) onFrame(ev *frameEv) {
	g := sh.g
	p := &sh.pkt
	inner := ev.buf.b[ev.off:ev.n]
	if err := sn.Decode(inner, p); err != nil {
		g.malformed(ev.link, ev.key.addr, err)
		return
	}
	if g.debug {
		g.log.Debug("frame in", "link", ev.link.name, "from", ev.key.String(), "msg", p.String())
	}
	switch p.Type {
	case sn.TypeConnect:
		sh.onConnect(ev, &p.Connect)
		return
	case sn.TypePingreq:
		if len(p.Pingreq.ClientID) > 0 {
			sh.onPingreqID(ev, p.Pingreq.ClientID)
			return
		}
	case sn.TypeSearchGW:
		sh.onSearchGW(ev)
		return
	case sn.TypeAdvertise, sn.TypeGWInfo:
		return // another gateway, or a client answering for one
	case sn.TypeEncapsulated:
		g.malformed(ev.link, ev.key.addr, errNested)
		return
	}
	c := sh.owner(ev)
	if c == nil {
		return // forwarded to its shard
	}
	if p.Type == sn.TypePublish && p.Publish.QoS == sn.QoSMinus1 {
		ev.link.countIn(sn.QoSMinus1)
		sh.onQoSMinus1(ev, c, &p.Publish)
		return
	}
	if c == nil || c.removed {
		sh.onUnknown(ev, p.Type)
		return
	}
	c.lastSeen = g.now()
	if c.state == StateConnecting {
		switch p.Type {
		case sn.TypeWillTopic:
			sh.onWillTopic(c, &p.WillTopic)
		case sn.TypeWillMsg:
			sh.onWillMsg(c, &p.WillMsg)
		case sn.TypeDisconnect:
			sh.send(c, &sn.Disconnect{})
			sh.transition(c, EvDisconnect, "disconnected during the will dialogue")
		default:
			g.stats.unexpected.Add(1)
		}
		return
	}
	switch p.Type {
	case sn.TypePublish:
		ev.link.countIn(p.Publish.QoS)
		sh.onPublish(c, &p.Publish)
	case sn.TypePuback:
		sh.onPuback(c, &p.Puback)
	case sn.TypePubrec:
		sh.onPubrec(c, p.Pubrec.MsgID)
	case sn.TypePubrel:
		sh.onPubrel(c, p.Pubrel.MsgID)
	case sn.TypePubcomp:
		sh.onPubcomp(c, p.Pubcomp.MsgID)
	case sn.TypeRegister:
		sh.onRegister(c, &p.Register)
	case sn.TypeRegack:
		sh.onRegack(c, &p.Regack)
	case sn.TypeSubscribe:
		sh.onSubscribe(c, &p.Subscribe)
	case sn.TypeUnsubscribe:
		sh.onUnsubscribe(c, &p.Unsubscribe)
	case sn.TypePingreq:
		sh.onPing(c)
	case sn.TypeDisconnect:
		sh.onDisconnect(c, &p.Disconnect)
	case sn.TypeWillTopicUpd:
		sh.onWillTopicUpd(c, &p.WillTopicUpd)
	case sn.TypeWillMsgUpd:
		sh.onWillMsgUpd(c, &p.WillMsgUpd)
	default:
		g.stats.unexpected.Add(1)
	}
	sh.noteTopics(c)
	if c.state == StateAwake {
		sh.check = append(sh.check, c)
	}
}

// owner returns the client bound to the frame's sender, nil if there is
// none. A frame that reached the wrong shard (the binding moved while it
// was queued) is passed on, and owner returns nil with forwarded set.
func (sh *shard) owner(ev *frameEv) *client {
	c := ev.c
	if c != nil && (c.removed || c.link != ev.link || c.key != ev.key) {
		c = nil
	}
	if c == nil {
		c = ev.link.lookup(&ev.key)
	}
	if c != nil && c.shard != sh {
		// Re-route a copy; the original buffer is recycled by the caller.
		c.shard.postFrame(ev.link, &ev.key, c, ev.buf.b[:ev.n], ev.off, ev.whole)
		return nil
	}
	if c == nil {
		return unboundClient
	}
	return c
}

// unboundClient stands for "no client at this address" in owner.
var unboundClient = &client{removed: true}

// onUnknown answers a frame from an address with no client. Requests get
// a DISCONNECT, which tells the client to connect again; the rest are
// dropped.
func (sh *shard) onUnknown(ev *frameEv, t sn.MsgType) {
	sh.g.stats.unknownClient.Add(1)
	switch t {
	case sn.TypePublish, sn.TypeRegister, sn.TypeSubscribe, sn.TypeUnsubscribe, sn.TypePingreq,
		sn.TypeDisconnect, sn.TypeWillTopicUpd, sn.TypeWillMsgUpd, sn.TypeWillTopic, sn.TypeWillMsg:
		sh.sendTo(ev.link, &ev.key, ev.whole, &sn.Disconnect{})
	}
}

// transition moves c along the state machine and performs the side
// effects of entering the new state. why is logged.
func (sh *shard) transition(c *client, ev Event, why string) {
	g := sh.g
	from := c.state
	to, ok := Transition(from, ev)
	if !ok {
		g.log.Warn("invalid client transition", "client", c.id, "state", from.String(), "event", ev.String())
		return
	}
	c.state = to
	if from == to && ev != EvSleep && ev != EvConnect {
		return
	}
	sh.countState(from, -1)
	sh.countState(to, +1)
	countLinkState(c.link, from, -1)
	countLinkState(c.link, to, +1)
	if c.sink != nil {
		c.sink.accepting.Store(to.receiving())
	}
	switch to {
	case StateActive:
		sh.armSupervision(c)
		g.log.Info("client connected", "client", c.id, "link", c.link.name, "addr", c.key.String(),
			"keepalive", c.keepAlive, "clean", c.clean)
	case StateAsleep:
		sh.armSupervision(c)
		g.log.Info("client asleep", "client", c.id, "duration", c.sleepFor, "why", why)
	case StateAwake:
		sh.armSupervision(c)
		g.log.Info("client awake", "client", c.id, "addr", c.key.String())
	case StateLost:
		g.stats.lost.Add(1)
		g.log.Info("client lost", "client", c.id, "why", why)
		if c.sess != nil {
			c.sink.closed.Store(true)
			c.sess.Disconnect(true)
			c.sess = nil
		}
		sh.forget(c)
	case StateDisconnected:
		g.log.Info("client disconnected", "client", c.id, "why", why)
		if c.sess != nil {
			c.sink.closed.Store(true)
			c.sess.Disconnect(false)
			c.sess = nil
		}
		sh.forget(c)
	case StateConnecting:
		sh.timers.stop(&c.super)
	}
}

// countState keeps the state gauges.
func (sh *shard) countState(s State, d int64) {
	st := &sh.g.stats
	switch s {
	case StateActive, StateAwake:
		st.active.Add(d)
	case StateAsleep:
		st.sleeping.Add(d)
	}
}

// forget removes c from the shard: its binding, timers, pending connect
// and held deliveries.
func (sh *shard) forget(c *client) {
	if c.removed {
		return
	}
	c.removed = true
	sh.countState(c.state, -1)
	if c.link != nil {
		countLinkState(c.link, c.state, -1)
		c.link.ctr.clients.Add(-1)
	}
	sh.g.stats.clients.Add(-1)
	if sh.clients[c.id] == c {
		delete(sh.clients, c.id)
	}
	sh.unbind(c)
	sh.timers.stop(&c.super)
	sh.timers.stop(&c.retry)
	if c.conn != nil {
		sh.g.limits.endPending(c.conn.source)
		c.conn = nil
	}
	c.hold, c.out = nil, nil
	c.topics.reset()
	c.will = nil
}

// bind points the client's link address at c, taking it from any other
// client, and releases c's previous address.
func (sh *shard) bind(c *client, ls *linkState, key *peerKey, whole bool) {
	if c.link == ls && c.key == *key && !c.unbound.Load() {
		c.whole = whole
		return
	}
	rebind := c.link != nil
	sh.unbind(c)
	ls.mu.Lock()
	if prev := ls.bind[*key]; prev != nil && prev != c {
		prev.unbound.Store(true)
		sh.g.stats.overwritten.Add(1)
	}
	ls.bind[*key] = c
	ls.mu.Unlock()
	if old := c.link; old != ls { // move the link gauges
		if old != nil {
			old.ctr.clients.Add(-1)
			countLinkState(old, c.state, -1)
		}
		ls.ctr.clients.Add(1)
		countLinkState(ls, c.state, +1)
	}
	c.link, c.key, c.whole = ls, *key, whole
	c.unbound.Store(false)
	if rebind {
		sh.g.stats.rebinds.Add(1)
		sh.g.log.Info("client rebound", "client", c.id, "link", ls.name, "addr", key.String())
	}
}

// unbind removes c's address binding if it is still c's.
func (sh *shard) unbind(c *client) {
	if c.link == nil {
		return
	}
	ls := c.link
	ls.mu.Lock()
	if ls.bind[c.key] == c {
		delete(ls.bind, c.key)
	}
	ls.mu.Unlock()
}

// armSupervision sets the keep-alive or sleep deadline of c.
func (sh *shard) armSupervision(c *client) {
	now := sh.g.now()
	c.lastSeen = now
	var period int64
	switch c.state {
	case StateActive:
		period = sh.g.seconds(c.keepAlive, sh.g.cfg.KeepAliveTolerance)
	case StateAsleep, StateAwake:
		period = sh.g.seconds(c.sleepFor, sh.g.cfg.SleepTolerance)
	}
	if period <= 0 {
		sh.timers.stop(&c.super)
		return
	}
	sh.timers.set(&c.super, now+period)
}

// onSupervise handles a supervision deadline: the client is lost unless
// it was heard from since the deadline was set.
func (sh *shard) onSupervise(c *client, now int64) {
	var period int64
	var ev Event
	switch c.state {
	case StateActive:
		period, ev = sh.g.seconds(c.keepAlive, sh.g.cfg.KeepAliveTolerance), EvKeepAliveTimeout
	case StateAsleep, StateAwake:
		period, ev = sh.g.seconds(c.sleepFor, sh.g.cfg.SleepTolerance), EvSleepTimeout
	default:
		return
	}
	if period <= 0 {
		return
	}
	if due := c.lastSeen + period; due > now && c.state == StateActive {
		sh.timers.set(&c.super, due) // heard from since: look again later
		return
	}
	if ev == EvKeepAliveTimeout {
		sh.transition(c, ev, "keep-alive timeout")
	} else {
		sh.transition(c, ev, "sleep duration exceeded")
	}
}

// onRetry resends the client's outstanding request, or declares the
// client lost when it has been resent MaxRetries times.
func (sh *shard) onRetry(c *client) {
	o := c.out
	if o == nil {
		sh.pump(c) // deliveries held while the link was congested
		return
	}
	if c.state == StateAsleep {
		return // resent when the client wakes
	}
	if sh.retryCongested(c) {
		return
	}
	o.early = false
	if o.retries >= sh.g.cfg.MaxRetries {
		if c.state == StateConnecting {
			sh.transition(c, EvRetriesExhausted, "no answer to the will prompts")
			return
		}
		sh.transition(c, EvRetriesExhausted, "no answer after "+itoa(o.retries)+" retransmissions of "+o.kind.String())
		return
	}
	o.retries++
	sh.g.stats.retransmits.Add(1)
	sh.sendOut(c, true)
}

func (k outKind) String() string {
	switch k {
	case outRegister:
		return "REGISTER"
	case outPublish:
		return "PUBLISH"
	case outPubrel:
		return "PUBREL"
	case outWillTopicReq:
		return "WILLTOPICREQ"
	case outWillMsgReq:
		return "WILLMSGREQ"
	}
	return "none"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
