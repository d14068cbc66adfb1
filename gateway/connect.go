package gateway

import (
	"errors"
	"net/netip"
	"unicode/utf8"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
)

var errNested = errors.New("nested encapsulation")

// sourceOf returns the limiter key of a peer: its IP for UDP (so many
// ports of one host share one budget), else its link address.
func sourceOf(k *peerKey) transport.Addr {
	if ap, ok := k.addr.AddrPort(); ok {
		return transport.AddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), 0)) // port 0: the host
	}
	return k.addr
}

// onConnect handles CONNECT: admission, then either the will dialogue or
// the session attachment and CONNACK.
func (sh *shard) onConnect(ev *frameEv, m *sn.Connect) {
	g := sh.g
	reject := func(rc sn.ReturnCode, counter interface{ Add(uint64) uint64 }, why string, attrs ...any) {
		counter.Add(1)
		g.log.Info("connect refused", append([]any{"client", safeID(m.ClientID), "link", ev.link.name,
			"addr", ev.key.String(), "rc", rc.String(), "why", why}, attrs...)...)
		sh.sendTo(ev.link, &ev.key, ev.whole, &sn.Connack{ReturnCode: rc})
	}
	if m.ProtocolID != sn.V12 {
		reject(sn.RejectedNotSupported, &g.stats.rejectClientID, "protocol "+m.ProtocolID.String())
		return
	}
	if len(m.ClientID) > g.cfg.MaxClientIDLength || !utf8.Valid(m.ClientID) {
		reject(sn.RejectedNotSupported, &g.stats.rejectClientID, "client ID too long or not UTF-8")
		return
	}
	c := sh.clients[string(m.ClientID)] // no allocation for the lookup
	var cp *clientPolicy
	if c != nil {
		cp = c.policy
	} else {
		cp = g.pol.clients[string(m.ClientID)]
	}
	if g.cfg.RestrictClients && cp == nil {
		reject(sn.RejectedNotSupported, &g.stats.rejectAllowList, "not in the allow-list")
		return
	}
	if ident, why, ok := peerMayUse(ev.link, &ev.key, m.ClientID); !ok {
		reject(sn.RejectedNotSupported, &g.stats.rejectIdentity, why, "identity", ident)
		return
	}
	if downgrade(c, ev.link) {
		reject(sn.RejectedNotSupported, &g.stats.rejectIdentity, whyDowngrade, "bound_link", c.link.name)
		return
	}
	if g.connectCongested(ev.link, c, &ev.key) { // radiolink.go
		reject(sn.RejectedCongestion, &g.stats.rejectCongestion, "link congested")
		return
	}
	src := sourceOf(&ev.key)
	if c == nil {
		if g.stats.clients.Load() >= int64(g.cfg.MaxClients) {
			reject(sn.RejectedCongestion, &g.stats.rejectMaxClients, "MaxClients reached")
			return
		}
		if !g.limits.admit(src, g.now()) {
			reject(sn.RejectedCongestion, &g.stats.rejectRate, "new-client rate of the source exceeded")
			return
		}
		c = &client{id: string(m.ClientID), shard: sh, policy: cp}
		c.super = timerSlot{idx: -1, kind: timerSupervise, c: c}
		c.retry = timerSlot{idx: -1, kind: timerRetry, c: c}
		sh.clients[c.id] = c
		g.stats.clients.Add(1)
	}
	c.lastSeen = g.now()
	if c.conn != nil { // a new CONNECT restarts the dialogue
		g.limits.endPending(c.conn.source)
		c.conn = nil
		sh.clearOut(c)
	}
	sh.bind(c, ev.link, &ev.key, ev.whole)
	if m.Will {
		if !g.limits.beginPending(src) {
			reject(sn.RejectedCongestion, &g.stats.rejectRate, "too many pending connects from the source")
			if !c.state.connected() {
				sh.forget(c)
			}
			return
		}
		c.conn = &connectState{clean: m.CleanSession, duration: m.Duration, source: src}
		sh.transition(c, EvWillDialogue, "will dialogue")
		sh.startOut(c, &outflight{kind: outWillTopicReq})
		return
	}
	sh.attach(c, m.CleanSession, m.Duration, nil)
}

// peerMayUse applies the identity policy of an authenticating link to a
// CONNECT or PINGREQ(ClientId) for clientID from the peer at key. On other
// links it allows everything. When it refuses, why says so for the log.
func peerMayUse(ls *linkState, key *peerKey, clientID []byte) (identity, why string, ok bool) {
	if ls.ident == nil {
		return "", "", true
	}
	identity, ok = ls.ident.PeerIdentity(key.addr)
	switch {
	case !ok || identity == "":
		return "", "peer not authenticated by the link", false
	case !ls.allow(identity, string(clientID)):
		return identity, "link identity may not use this client ID", false
	}
	return identity, "", true
}

// linkIdentity returns the identity the link authenticated the peer at
// key with (DTLS PSK identity or certificate subject), "" on links that
// do not authenticate peers. It becomes the session's broker user name,
// for the ACL's user sections and %u.
func linkIdentity(ls *linkState, key *peerKey) string {
	if ls == nil || ls.ident == nil {
		return ""
	}
	identity, _ := ls.ident.PeerIdentity(key.addr)
	return identity
}

// whyDowngrade is logged when downgrade refuses a frame.
const whyDowngrade = "client is bound to a link that authenticates peers"

// downgrade reports whether a CONNECT or PINGREQ(ClientId) on ls would
// move client c off a link that authenticates peers onto one that does
// not. It is refused: otherwise anyone on a plain UDP link could take over
// (or wake, and receive the buffered messages of) a client whose identity
// a DTLS listener checked.
func downgrade(c *client, ls *linkState) bool {
	return c != nil && c.link != nil && c.link.ident != nil && ls.ident == nil
}

// safeID renders a client ID for a log line, bounded.
func safeID(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// onWillTopic handles WILLTOPIC in the will dialogue.
func (sh *shard) onWillTopic(c *client, m *sn.WillTopic) {
	if c.out == nil || c.out.kind != outWillTopicReq {
		sh.g.stats.unexpected.Add(1)
		return
	}
	sh.clearOut(c)
	if len(m.Topic) == 0 { // no will after all
		sh.finishConnect(c, nil)
		return
	}
	c.conn.willTopic = string(m.Topic)
	c.conn.willQoS = m.QoS
	c.conn.retain = m.Retain
	sh.startOut(c, &outflight{kind: outWillMsgReq})
}

// onWillMsg handles WILLMSG, which ends the will dialogue.
func (sh *shard) onWillMsg(c *client, m *sn.WillMsg) {
	if c.out == nil || c.out.kind != outWillMsgReq {
		sh.g.stats.unexpected.Add(1)
		return
	}
	sh.clearOut(c)
	cs := c.conn
	q := byte(cs.willQoS)
	if q > 2 {
		q = 0
	}
	w := &broker.Will{Msg: broker.Message{Topic: cs.willTopic, Payload: append([]byte(nil), m.Msg...),
		QoS: q, Retain: cs.retain}}
	sh.finishConnect(c, w)
}

func (sh *shard) finishConnect(c *client, w *broker.Will) {
	cs := c.conn
	c.conn = nil
	sh.g.limits.endPending(cs.source)
	sh.attach(c, cs.clean, cs.duration, w)
}

// attach attaches (or re-attaches) c's broker session and answers CONNACK.
func (sh *shard) attach(c *client, clean bool, keepAlive uint16, will *broker.Will) {
	g := sh.g
	if old := c.sess; old != nil {
		// The same client connects again: end the old attachment without
		// its will (it is not lost), keeping the session unless clean.
		c.sink.closed.Store(true)
		if clean {
			old.Disconnect(false)
		} else {
			_ = old.SetWill(nil)
		}
		c.sess = nil
	}
	c.hold, c.out = nil, nil // the broker resends what was in flight
	sh.timers.stop(&c.retry)
	c.hasQoS2 = false
	if clean {
		c.topics.reset()
	}
	s := &sink{c: c, sh: sh}
	info := broker.ConnectInfo{
		ClientID:       c.id,
		CleanStart:     clean,
		ReceiveMaximum: 1,
		Will:           will,
		Listener:       c.link.listener,
		RemoteAddr:     c.key.String(),
		QueueQoS0:      true,
		// The gateway admitted the client (allow-list, link identity):
		// the broker skips passwords and AllowAnonymous, not the ACL.
		Authenticated: true,
		Username:      linkIdentity(c.link, &c.key),
	}
	if !clean {
		info.SessionExpiry = broker.NoExpiry
	}
	sess, present, err := g.srv.Connect(info, s)
	if err != nil {
		rc := connectCode(err)
		g.stats.rejectBroker.Add(1)
		g.log.Info("connect refused by the broker", "client", c.id, "rc", rc.String(), "err", err)
		sh.send(c, &sn.Connack{ReturnCode: rc})
		c.sink = nil
		if c.state.connected() || c.state == StateConnecting {
			sh.transition(c, EvDisconnect, "broker refused the connect")
		} else {
			sh.forget(c)
		}
		return
	}
	c.sess, c.sink, c.will = sess, s, will
	c.clean, c.keepAlive, c.sleepFor = clean, keepAlive, 0
	g.stats.connects.Add(1)
	sh.send(c, &sn.Connack{ReturnCode: sn.Accepted})
	if c.state == StateConnecting {
		sh.transition(c, EvConnected, "will dialogue done")
	} else {
		sh.transition(c, EvConnect, "connect")
	}
	if present {
		g.log.Debug("session resumed", "client", c.id)
		sh.restoreTopics(c)
	}
	sess.Resume()
}

// connectCode maps a broker Connect error to a CONNACK return code.
func connectCode(err error) sn.ReturnCode {
	switch {
	case errors.Is(err, broker.ErrServerBusy), errors.Is(err, broker.ErrServerShutdown),
		errors.Is(err, broker.ErrQuotaExceeded):
		return sn.RejectedCongestion
	}
	return sn.RejectedNotSupported
}

// onDisconnect handles DISCONNECT: without a duration the client leaves
// cleanly (no will); with one it goes to sleep.
func (sh *shard) onDisconnect(c *client, m *sn.Disconnect) {
	sh.send(c, &sn.Disconnect{})
	if !m.HasDuration {
		sh.g.stats.disconnects.Add(1)
		sh.transition(c, EvDisconnect, "DISCONNECT")
		return
	}
	sh.sleep(c, m.Duration)
}

// onWillTopicUpd handles WILLTOPICUPD; an empty one deletes the will.
func (sh *shard) onWillTopicUpd(c *client, m *sn.WillTopicUpd) {
	sh.g.stats.willUpdates.Add(1)
	var w *broker.Will
	if len(m.Topic) > 0 {
		q := byte(m.QoS)
		if q > 2 {
			q = 0
		}
		w = &broker.Will{Msg: broker.Message{Topic: string(m.Topic), QoS: q, Retain: m.Retain}}
		if c.will != nil {
			w.Msg.Payload = c.will.Msg.Payload
		}
	}
	rc := sh.setWill(c, w)
	sh.send(c, &sn.WillTopicResp{ReturnCode: rc})
}

// onWillMsgUpd handles WILLMSGUPD: it changes the payload of the will.
func (sh *shard) onWillMsgUpd(c *client, m *sn.WillMsgUpd) {
	sh.g.stats.willUpdates.Add(1)
	rc := sn.RejectedNotSupported // no will topic to attach a message to
	if c.will != nil {
		w := *c.will
		w.Msg.Payload = append([]byte(nil), m.Msg...)
		rc = sh.setWill(c, &w)
	}
	sh.send(c, &sn.WillMsgResp{ReturnCode: rc})
}

func (sh *shard) setWill(c *client, w *broker.Will) sn.ReturnCode {
	if err := c.sess.SetWill(w); err != nil {
		sh.g.log.Info("will update refused", "client", c.id, "err", err)
		return publishCode(err)
	}
	c.will = w
	return sn.Accepted
}
