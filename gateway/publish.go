package gateway

import (
	"errors"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
)

// resolve returns the topic name a client's PUBLISH refers to.
func (sh *shard) resolve(c *client, tt sn.TopicIDType, id uint16) (string, bool) {
	switch tt {
	case sn.TopicIDNormal:
		if c == nil {
			return "", false
		}
		return c.topics.name(id)
	case sn.TopicIDPredefined:
		var cp *clientPolicy
		if c != nil {
			cp = c.policy
		}
		return sh.predefined(cp, id)
	case sn.TopicIDShort:
		return sh.shortName(id), true
	}
	return "", false
}

// predefined looks a predefined ID up, the client's own table first.
func (sh *shard) predefined(cp *clientPolicy, id uint16) (string, bool) {
	if cp != nil {
		if name, ok := cp.predefined.byID[id]; ok {
			return name, true
		}
	}
	name, ok := sh.g.pol.global.byID[id]
	return name, ok
}

// onPublish handles a QoS 0, 1 or 2 PUBLISH from a connected client. It
// acknowledges only after the broker accepted the message: a QoS 1/2 one
// goes to the broker with Session.PublishAsync and is answered by
// onPublished (pubasync.go) once the broker has routed it and made it
// durable, without holding up the shard.
func (sh *shard) onPublish(c *client, m *sn.Publish) {
	g := sh.g
	if m.QoS == sn.QoS2 && c.hasQoS2 && c.inQoS2 == m.MsgID {
		sh.send(c, &sn.Pubrec{MsgID: m.MsgID}) // duplicate: already published
		return
	}
	qos12 := m.QoS == sn.QoS1 || m.QoS == sn.QoS2
	if qos12 && sh.publishBusy(c, m) { // pubasync.go
		return
	}
	if qos12 && sh.rejectCongested(c.link, c) { // radiolink.go
		sh.send(c, &sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: sn.RejectedCongestion})
		return
	}
	topic, ok := sh.resolve(c, m.TopicIDType, m.TopicID)
	if !ok {
		g.stats.rejectTopicID.Add(1)
		if g.debug {
			g.log.Debug("PUBLISH to an unknown topic ID", "client", c.id, "topic_id", m.TopicID, "type", m.TopicIDType.String())
		}
		sh.send(c, &sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: sn.RejectedInvalidTopicID})
		return
	}
	msg := &broker.Message{Topic: topic, QoS: byte(m.QoS), Retain: m.Retain}
	if len(m.Data) > 0 {
		msg.Payload = append(make([]byte, 0, len(m.Data)), m.Data...)
	}
	if qos12 {
		sh.publishAsync(c, m, msg)
		return
	}
	// QoS 0: Publish waits for the store only for a retained message.
	rc := sn.Accepted
	if err := c.sess.Publish(msg); err != nil {
		rc = publishCode(err)
		g.stats.rejectPublish.Add(1)
		g.log.Info("PUBLISH refused by the broker", "client", c.id, "topic", topic, "err", err)
	} else {
		g.stats.publishIn.Add(1)
	}
	if rc != sn.Accepted {
		sh.send(c, &sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: rc})
	}
}

// onPubrel completes an inbound QoS 2 PUBLISH.
func (sh *shard) onPubrel(c *client, id uint16) {
	if c.hasQoS2 && c.inQoS2 == id {
		c.hasQoS2 = false
	}
	sh.send(c, &sn.Pubcomp{MsgID: id})
}

// publishCode maps a broker publish error to a return code.
func publishCode(err error) sn.ReturnCode {
	switch {
	case errors.Is(err, broker.ErrBadTopic):
		return sn.RejectedInvalidTopicID
	case errors.Is(err, broker.ErrQuotaExceeded), errors.Is(err, broker.ErrServerBusy),
		errors.Is(err, broker.ErrServerShutdown), errors.Is(err, broker.ErrSessionClosed):
		return sn.RejectedCongestion
	}
	return sn.RejectedNotSupported // not authorized and anything else
}

// onQoSMinus1 handles a QoS -1 PUBLISH: no connection needed, never
// acknowledged, published as QoS 0 through Server.PublishAnonymous with
// the sender's identity, only from senders the config allows.
func (sh *shard) onQoSMinus1(ev *frameEv, c *client, m *sn.Publish) {
	g := sh.g
	if c != nil && c.removed {
		c = nil
	}
	var cp *clientPolicy
	identity := g.cfg.QoSMinus1Identity
	if c != nil {
		cp = c.policy
		identity = c.id
	} else if ev.key.nlen == 0 {
		ap, ok := ev.key.addr.AddrPort()
		cp = g.pol.senderPolicy(ap, ok)
	}
	if cp != nil {
		identity = cp.id
	}
	if !g.cfg.AllowQoSMinus1 && (cp == nil || !cp.qosMinus1) {
		g.stats.rejectQoSMinus1.Add(1)
		if g.debug {
			g.log.Debug("QoS -1 PUBLISH from a sender not allowed", "link", ev.link.name, "from", ev.key.String())
		}
		return
	}
	var topic string
	payload := m.Data
	ok := false
	switch m.TopicIDType {
	case sn.TopicIDPredefined:
		topic, ok = sh.predefined(cp, m.TopicID)
	case sn.TopicIDShort:
		topic, ok = sh.shortName(m.TopicID), true
	case sn.TopicIDNormal:
		var name []byte
		if name, payload, ok = m.LongTopic(); ok {
			topic = string(name)
		}
	}
	if !ok {
		g.stats.rejectQoSMinus1.Add(1)
		g.log.Debug("QoS -1 PUBLISH to an unknown topic", "from", ev.key.String(), "topic_id", m.TopicID)
		return
	}
	msg := &broker.Message{Topic: topic, Retain: m.Retain}
	if len(payload) > 0 {
		msg.Payload = append(make([]byte, 0, len(payload)), payload...)
	}
	if err := g.srv.PublishAnonymous(msg, identity); err != nil {
		g.stats.rejectQoSMinus1.Add(1)
		g.log.Info("QoS -1 PUBLISH refused by the broker", "identity", identity, "topic", topic, "err", err)
		return
	}
	g.stats.qosMinus1In.Add(1)
}
