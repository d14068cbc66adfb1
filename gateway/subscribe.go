package gateway

import (
	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
)

// subscribeCode maps a broker SUBACK reason code to an MQTT-SN return
// code and granted QoS.
func subscribeCode(code byte) (sn.ReturnCode, sn.QoS) {
	switch {
	case code <= 2:
		return sn.Accepted, sn.QoS(code)
	case code == broker.ReasonQuotaExceeded, code == broker.ReasonUnspecifiedError:
		return sn.RejectedCongestion, 0
	case code == broker.ReasonTopicFilterInvalid:
		return sn.RejectedInvalidTopicID, 0
	}
	return sn.RejectedNotSupported, 0 // not authorized and the rest
}

// onSubscribe handles SUBSCRIBE by topic name (wildcards allowed),
// predefined ID or short name. SUBACK carries the topic ID: 0 for a
// wildcard filter, the registered ID for a plain name, the predefined ID
// or the short name otherwise.
func (sh *shard) onSubscribe(c *client, m *sn.Subscribe) {
	g := sh.g
	var filter string
	topicID := m.TopicID
	reply := func(rc sn.ReturnCode, q sn.QoS) {
		if rc != sn.Accepted {
			g.stats.rejectSubscribe.Add(1)
			g.log.Debug("SUBSCRIBE rejected", "client", c.id, "filter", filter, "rc", rc.String())
		}
		sh.send(c, &sn.Suback{QoS: q, TopicID: topicID, MsgID: m.MsgID, ReturnCode: rc})
	}
	if sh.rejectCongested(c.link, c) { // radiolink.go
		reply(sn.RejectedCongestion, 0)
		return
	}
	switch m.TopicIDType {
	case sn.TopicIDNormal:
		filter, topicID = string(m.TopicName), 0
	case sn.TopicIDPredefined:
		name, ok := sh.predefined(c.policy, m.TopicID)
		if !ok {
			g.stats.rejectTopicID.Add(1)
			reply(sn.RejectedInvalidTopicID, 0)
			return
		}
		filter = name
	case sn.TopicIDShort:
		filter = sh.shortName(m.TopicID)
	default:
		reply(sn.RejectedNotSupported, 0)
		return
	}
	if m.QoS > sn.QoS2 {
		reply(sn.RejectedNotSupported, 0)
		return
	}
	if m.TopicIDType == sn.TopicIDNormal && !hasWildcard(filter) {
		if _, isShort := sn.ShortTopicID(filter); !isShort {
			if _, ok := g.pol.global.byName[filter]; !ok {
				id, _, ok := c.topics.add(filter, false, false, g.cfg.MaxTopicIDs)
				if !ok {
					reply(sn.RejectedCongestion, 0)
					return
				}
				topicID = id
			}
		}
	}
	codes := c.sess.Subscribe([]broker.Subscription{{Filter: filter, QoS: byte(m.QoS)}})
	rc, q := subscribeCode(codes[0])
	if rc == sn.Accepted {
		g.stats.subscribes.Add(1)
	}
	reply(rc, q)
	c.sess.Resume() // retained messages follow the SUBACK
}

// onUnsubscribe handles UNSUBSCRIBE. UNSUBACK has no return code, so it
// is sent whatever the outcome.
func (sh *shard) onUnsubscribe(c *client, m *sn.Unsubscribe) {
	var filter string
	ok := true
	switch m.TopicIDType {
	case sn.TopicIDNormal:
		filter = string(m.TopicName)
	case sn.TopicIDPredefined:
		filter, ok = sh.predefined(c.policy, m.TopicID)
	case sn.TopicIDShort:
		filter = sh.shortName(m.TopicID)
	default:
		ok = false
	}
	if ok {
		c.sess.Unsubscribe([]string{filter})
		sh.g.stats.unsubscribes.Add(1)
	} else {
		sh.g.stats.rejectTopicID.Add(1)
	}
	sh.send(c, &sn.Unsuback{MsgID: m.MsgID})
}
