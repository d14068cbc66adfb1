package gateway

import (
	"github.com/sngate/sngate/sn"
)

// sleep puts c to sleep for d seconds (DISCONNECT with a duration, already
// acknowledged). The session and its subscriptions stay; deliveries are
// refused, so the broker queues them (QoS 0 too, bounded by its config).
func (sh *shard) sleep(c *client, d uint16) {
	c.sleepFor = d
	sh.g.stats.sleeps.Add(1)
	sh.transition(c, EvSleep, "DISCONNECT with duration")
}

// onPing handles PINGREQ without a ClientId: a keep-alive ping from an
// active client, or a wake-up by address from a sleeping one (some
// clients, such as Paho's GatewayTester, wake that way).
func (sh *shard) onPing(c *client) {
	switch c.state {
	case StateAsleep:
		sh.wake(c)
	case StateAwake:
		sh.resendOut(c)
		sh.check = append(sh.check, c)
	default:
		sh.pingresp(c)
	}
}

// onPingreqID handles PINGREQ(ClientId), routed here by client ID: it may
// come from a new address (NAT rebinding, another forwarder), and it is
// the only message besides CONNECT that moves a client's binding.
func (sh *shard) onPingreqID(ev *frameEv, id []byte) {
	g := sh.g
	// The identity comes first, so that a peer learns nothing about client
	// IDs it may not use: the refused PINGREQ gets no answer at all.
	if ident, why, ok := peerMayUse(ev.link, &ev.key, id); !ok {
		g.stats.rejectIdentity.Add(1)
		g.log.Info("PINGREQ refused", "client", safeID(id), "link", ev.link.name, "addr", ev.key.String(),
			"identity", ident, "why", why)
		return
	}
	c := sh.clients[string(id)]
	if c == nil || !c.state.connected() {
		g.stats.unknownClient.Add(1)
		sh.sendTo(ev.link, &ev.key, ev.whole, &sn.Disconnect{})
		return
	}
	if downgrade(c, ev.link) {
		g.stats.rejectIdentity.Add(1)
		g.log.Info("PINGREQ refused", "client", c.id, "link", ev.link.name, "addr", ev.key.String(),
			"why", whyDowngrade, "bound_link", c.link.name)
		return
	}
	sh.bind(c, ev.link, &ev.key, ev.whole)
	c.lastSeen = g.now()
	sh.onPing(c)
	if c.state == StateAwake {
		sh.check = append(sh.check, c)
	}
}

// wake starts an awake period: the outstanding request is resent, the
// broker is asked for the buffered messages, and PINGRESP follows once
// all are delivered (maybeFlushed).
func (sh *shard) wake(c *client) {
	sh.g.stats.wakes.Add(1)
	sh.transition(c, EvWake, "PINGREQ")
	sh.resendOut(c)
	sh.pump(c)
	if c.sess != nil {
		c.sink.needResume.Store(false)
		c.sess.Resume()
	}
	sh.check = append(sh.check, c)
}

// resendOut resends the client's outstanding request after a sleep.
func (sh *shard) resendOut(c *client) {
	if c.out != nil {
		sh.g.stats.retransmits.Add(1)
		sh.sendOut(c, true)
	}
}

// maybeFlushed ends an awake period when nothing is left for the client:
// no request outstanding, nothing held or posted, nothing in the broker
// session. The client gets PINGRESP and is asleep again.
func (sh *shard) maybeFlushed(c *client) {
	if c.removed || c.state != StateAwake || c.out != nil || len(c.hold) > 0 {
		return
	}
	if c.sink == nil || c.sink.credits.Load() > 0 || c.sess == nil || c.sess.Pending() > 0 {
		return
	}
	sh.pingresp(c)
	sh.transition(c, EvFlushed, "buffered messages delivered")
}

func (sh *shard) pingresp(c *client) {
	sh.g.stats.pings.Add(1)
	sh.send(c, &sn.Pingresp{})
}
