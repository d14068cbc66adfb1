package gateway

import (
	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
)

// onDeliver takes a broker delivery for one of the shard's clients.
func (sh *shard) onDeliver(ev *deliverEv) {
	s := ev.sink
	c := s.c
	if c.sink != s || c.removed {
		// A replaced attachment: the broker resends what was in flight.
		s.credits.Add(-1)
		return
	}
	c.hold = append(c.hold, ev.d)
	sh.pump(c)
	if c.state == StateAwake {
		sh.check = append(sh.check, c)
	}
}

// topicFor returns how to name topic in a PUBLISH to c: a predefined ID,
// a short name, or a registered ID. ok is false when a REGISTER must come
// first.
func (sh *shard) topicFor(c *client, topic string) (tt sn.TopicIDType, id uint16, ok bool) {
	if c.policy != nil {
		if id, ok := c.policy.predefined.byName[topic]; ok {
			return sn.TopicIDPredefined, id, true
		}
	}
	if id, ok := sh.g.pol.global.byName[topic]; ok {
		return sn.TopicIDPredefined, id, true
	}
	if len(topic) == 2 && !hasWildcard(topic) {
		id, _ := sn.ShortTopicID(topic)
		return sn.TopicIDShort, id, true
	}
	id, ready, known := c.topics.lookup(topic)
	if known && ready {
		return sn.TopicIDNormal, id, true
	}
	return sn.TopicIDNormal, 0, false
}

// pump sends held deliveries in order while the protocol allows: QoS 0 to
// known topics at once, the rest one request at a time.
func (sh *shard) pump(c *client) {
	resume := false
	for len(c.hold) > 0 && c.state.receiving() && !c.removed {
		d := &c.hold[0]
		if d.Release {
			if c.out != nil || sh.holdForCongestion(c, transport.PriorityDelivery) {
				break
			}
			sh.startOut(c, &outflight{kind: outPubrel, msgID: d.PacketID, d: *d})
			resume = sh.popHold(c) || resume
			continue
		}
		tt, id, ok := sh.topicFor(c, d.Msg.Topic)
		if !ok {
			if c.out != nil || sh.holdForCongestion(c, transport.PriorityRegister) {
				break
			}
			sh.register(c, d.Msg.Topic)
			if c.out == nil {
				continue // nothing to register with: the deliveries were dropped
			}
			break
		}
		if (d.QoS > 0 && c.out != nil) || sh.holdForCongestion(c, transport.PriorityDelivery) {
			break
		}
		if d.QoS == 0 {
			start := len(sh.out)
			sh.publish(c, d, tt, id, false)
			sh.tagQoS0(c, d, start)
		} else {
			sh.startOut(c, &outflight{kind: outPublish, msgID: d.PacketID, topicID: id, tt: tt, d: *d})
		}
		sh.g.stats.publishOut.Add(1)
		c.link.countOut(d.QoS)
		resume = sh.popHold(c) || resume
	}
	if resume && c.sess != nil {
		c.sess.Resume()
	}
}

// popHold removes the head delivery and returns its credit; it reports
// whether the broker should be resumed.
func (sh *shard) popHold(c *client) bool {
	c.hold[0] = broker.Delivery{}
	c.hold = c.hold[1:]
	if len(c.hold) == 0 {
		c.hold = nil
	}
	return c.sink.release()
}

// register sends a gateway REGISTER for topic and makes it the client's
// outstanding request.
func (sh *shard) register(c *client, topic string) {
	id, recycled, ok := c.topics.add(topic, true, true, sh.g.cfg.MaxTopicIDs)
	if !ok {
		// Every ID is taken by the client's own registrations.
		sh.g.stats.droppedDeliveries.Add(1)
		sh.dropHeld(c, topic)
		return
	}
	if recycled {
		sh.g.stats.recycled.Add(1)
	}
	sh.g.stats.registers.Add(1)
	sh.startOut(c, &outflight{kind: outRegister, msgID: c.nextMsgID(), topicID: id, name: topic})
}

// publish encodes a PUBLISH for delivery d.
func (sh *shard) publish(c *client, d *broker.Delivery, tt sn.TopicIDType, id uint16, dup bool) {
	sh.send(c, &sn.Publish{
		Dup:         dup || d.Dup,
		QoS:         sn.QoS(d.QoS),
		Retain:      d.Retain,
		TopicIDType: tt,
		TopicID:     id,
		MsgID:       d.PacketID,
		Data:        d.Msg.Payload,
	})
}

// startOut makes o the client's outstanding request, sends it and arms
// the retransmission timer.
func (sh *shard) startOut(c *client, o *outflight) {
	c.out = o
	sh.sendOut(c, false)
}

// sendOut (re)sends the outstanding request; dup marks a retransmission.
// The retry timer is max(RetryInterval, the link's advice for the frame).
func (sh *shard) sendOut(c *client, dup bool) {
	o := c.out
	start := len(sh.out)
	switch o.kind {
	case outRegister:
		sh.send(c, &sn.Register{TopicID: o.topicID, MsgID: o.msgID, TopicName: []byte(o.name)})
	case outPublish:
		sh.publish(c, &o.d, o.tt, o.topicID, dup)
	case outPubrel:
		sh.send(c, &sn.Pubrel{MsgID: o.msgID})
	case outWillTopicReq:
		sh.send(c, &sn.WillTopicReq{})
	case outWillMsgReq:
		sh.send(c, &sn.WillMsgReq{})
	}
	sh.tagRequest(c, o, start)
	sh.timers.set(&c.retry, sh.g.now()+int64(sh.g.retryAfter(c.link, len(sh.out)-start)))
}

// clearOut ends the outstanding request.
func (sh *shard) clearOut(c *client) {
	c.out = nil
	sh.timers.stop(&c.retry)
}

// dropHeld discards the held deliveries on topic (the client refused the
// topic, or no ID is free). QoS 1/2 ones are completed with the broker so
// the session does not wait for them forever.
func (sh *shard) dropHeld(c *client, topic string) {
	kept := c.hold[:0]
	resume := false
	for _, d := range c.hold {
		if d.Msg != nil && d.Msg.Topic == topic && !d.Release {
			sh.abandon(c, &d)
			resume = c.sink.release() || resume
			continue
		}
		kept = append(kept, d)
	}
	for i := len(kept); i < len(c.hold); i++ {
		c.hold[i] = broker.Delivery{}
	}
	c.hold = kept
	if resume && c.sess != nil {
		c.sess.Resume()
	}
}

// abandon completes a QoS 1/2 delivery that will not reach the client.
func (sh *shard) abandon(c *client, d *broker.Delivery) {
	sh.g.stats.droppedDeliveries.Add(1)
	if c.sess == nil {
		return
	}
	switch d.QoS {
	case 1:
		c.sess.Ack(d.PacketID)
	case 2:
		c.sess.Received(d.PacketID)
		c.sess.Complete(d.PacketID)
	}
}

// onPuback handles PUBACK from the client: the end of a QoS 1 delivery,
// or a rejection of any of the gateway's PUBLISHes.
func (sh *shard) onPuback(c *client, m *sn.Puback) {
	o := c.out
	if o != nil && o.kind == outPublish && o.msgID == m.MsgID && m.MsgID != 0 {
		sh.clearOut(c)
		if m.ReturnCode == sn.Accepted {
			if o.d.QoS == 1 {
				c.sess.Ack(o.d.PacketID)
			} else { // a QoS 2 PUBLISH refused with PUBACK
				sh.abandon(c, &o.d)
			}
			sh.pump(c)
			return
		}
		sh.g.stats.deliveryRejected.Add(1)
		if m.ReturnCode == sn.RejectedInvalidTopicID && o.tt == sn.TopicIDNormal && o.retries < sh.g.cfg.MaxRetries {
			// The client lost the ID: register again, then resend.
			c.topics.remove(o.topicID)
			o.d.Dup = true
			c.hold = append([]broker.Delivery{o.d}, c.hold...)
			c.sink.credits.Add(1)
		} else {
			sh.abandon(c, &o.d)
		}
		sh.pump(c)
		return
	}
	if m.ReturnCode == sn.RejectedInvalidTopicID {
		// A QoS 0 PUBLISH to an ID the client does not know.
		c.topics.remove(m.TopicID)
		sh.g.stats.deliveryRejected.Add(1)
		return
	}
	if m.ReturnCode != sn.Accepted {
		sh.g.stats.deliveryRejected.Add(1)
		return
	}
	sh.g.stats.unexpected.Add(1)
}

// onPubrec handles PUBREC for a QoS 2 delivery: PUBREL follows.
func (sh *shard) onPubrec(c *client, id uint16) {
	o := c.out
	if o != nil && o.kind == outPubrel && o.msgID == id {
		sh.sendOut(c, true) // PUBREC again: PUBREL again
		return
	}
	if o == nil || o.kind != outPublish || o.msgID != id || o.d.QoS != 2 {
		sh.g.stats.unexpected.Add(1)
		return
	}
	c.sess.Received(id)
	d := o.d
	sh.clearOut(c)
	sh.startOut(c, &outflight{kind: outPubrel, msgID: id, d: d})
}

// onPubcomp ends a QoS 2 delivery.
func (sh *shard) onPubcomp(c *client, id uint16) {
	o := c.out
	if o == nil || o.kind != outPubrel || o.msgID != id {
		sh.g.stats.unexpected.Add(1)
		return
	}
	sh.clearOut(c)
	c.sess.Complete(id)
	sh.pump(c)
}
