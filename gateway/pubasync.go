package gateway

import (
	"sync/atomic"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
)

// Inbound QoS 1/2 PUBLISH without blocking the shard.
//
// The shard hands the message to the broker with Session.PublishAsync and
// goes on with other work. The broker calls pubWait.done once the message
// is routed and durable, from whichever goroutine; done posts the result
// to the shard's published channel, and the shard answers the client
// (PUBACK, or PUBREC for QoS 2) in onPublished. When the broker has
// nothing to wait for (no store, no persistent subscriber), done runs
// inside PublishAsync and the shard answers at once, as a blocking
// Publish would: the PUBACK then goes out ahead of deliveries the
// PUBLISH caused.
//
// No result is ever dropped: the channel's capacity is the most
// publishes a shard lets the broker hold (shard.npub is below it before
// each PublishAsync, and only the shard takes results out), so done's send
// never blocks. A client has at most one QoS 1/2 PUBLISH with the broker,
// as MQTT-SN 1.2 clients wait for PUBACK before the next one: a
// retransmission of it is ignored (the answer comes when the broker is
// done), and another one is answered "rejected: congestion" (the client
// sends it again).

// pubWait is one inbound QoS 1/2 PUBLISH the broker is routing.
type pubWait struct {
	sh      *shard
	c       *client
	sess    *broker.Session // the attachment it was published on
	topic   string          // for the log
	msgID   uint16
	topicID uint16
	qos     sn.QoS
	err     error // the broker's answer, set by done
	// state tells done and publishAsync apart when done runs inside
	// PublishAsync: pubCalling, then pubInline (done ran first) or
	// pubPosted (PublishAsync returned first).
	state atomic.Int32
}

// pubWait states.
const (
	pubCalling int32 = iota
	pubInline
	pubPosted
)

// done is the PublishAsync callback. It runs on any goroutine and never
// blocks (see above).
func (w *pubWait) done(err error) {
	w.err = err
	if w.state.CompareAndSwap(pubCalling, pubInline) {
		return // publishAsync answers once PublishAsync returns
	}
	w.sh.published <- w
}

// publishBusy answers, and reports true for, a QoS 1/2 PUBLISH that must
// not go to the broker now: a retransmission of the one the broker is
// routing (ignored), another one while the broker routes the first, or
// one beyond the shard's capacity for pending publishes (congestion).
func (sh *shard) publishBusy(c *client, m *sn.Publish) bool {
	if w := c.pub; w != nil && w.sess == c.sess {
		if w.msgID == m.MsgID {
			return true // a retransmission: answered in onPublished
		}
	} else if sh.npub < cap(sh.published) {
		return false
	}
	sh.g.stats.rejectPublish.Add(1)
	if sh.g.debug {
		sh.g.log.Debug("PUBLISH while the broker routes another one: congestion", "client", c.id, "msg_id", m.MsgID)
	}
	sh.send(c, &sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: sn.RejectedCongestion})
	return true
}

// publishAsync hands a QoS 1/2 PUBLISH of c to the broker; onPublished
// answers it.
func (sh *shard) publishAsync(c *client, m *sn.Publish, msg *broker.Message) {
	w := &pubWait{sh: sh, c: c, sess: c.sess, topic: msg.Topic, msgID: m.MsgID, topicID: m.TopicID, qos: m.QoS}
	c.pub = w
	sh.npub++
	c.sess.PublishAsync(msg, w.done)
	if !w.state.CompareAndSwap(pubCalling, pubPosted) {
		sh.onPublished(w) // done already ran, inline
	}
}

// onPublished answers a QoS 1/2 PUBLISH the broker is done with: PUBACK
// (or PUBREC for QoS 2) on success, PUBACK with the broker's refusal
// mapped to a return code otherwise. Nothing is sent if the client is gone
// or attached again since (it sends the PUBLISH again if it needs to).
func (sh *shard) onPublished(w *pubWait) {
	sh.npub--
	c, g := w.c, sh.g
	if c.pub == w {
		c.pub = nil
	}
	rc := sn.Accepted
	if w.err != nil {
		rc = publishCode(w.err)
		g.stats.rejectPublish.Add(1)
		g.log.Info("PUBLISH refused by the broker", "client", c.id, "topic", w.topic, "err", w.err)
	} else {
		g.stats.publishIn.Add(1)
	}
	if c.removed || c.sess == nil || c.sess != w.sess {
		return
	}
	switch {
	case rc != sn.Accepted:
		sh.send(c, &sn.Puback{TopicID: w.topicID, MsgID: w.msgID, ReturnCode: rc})
	case w.qos == sn.QoS2:
		c.inQoS2, c.hasQoS2 = w.msgID, true
		sh.send(c, &sn.Pubrec{MsgID: w.msgID})
	default:
		sh.send(c, &sn.Puback{TopicID: w.topicID, MsgID: w.msgID, ReturnCode: sn.Accepted})
	}
}
