package listeners

import (
	"errors"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// autoAck is an outbound QoS 1/2 delivery that was not sent (too large
// for the client, or expired on the way) and that the connection
// completes towards the broker as if the client had acknowledged it.
type autoAck struct {
	id  uint16
	qos byte
}

// Deliver implements broker.Sink. It encodes the message into the
// connection's write buffer and never blocks; it returns false when the
// buffer is over OutboundBufferSize or the connection is closing.
func (c *conn) Deliver(d broker.Delivery) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if c.out != nil && len(c.out.b) >= c.l.cfg.OutboundBufferSize {
		c.refused = true
		c.l.deferred.Add(1)
		c.kickLocked()
		return false
	}
	if c.out == nil {
		c.out = c.l.pools.getBuffer()
	}
	if d.Release {
		c.out.b = packets.AppendAck(c.out.b, packets.PUBREL, d.PacketID, 0, c.version)
		c.kickLocked()
		return true
	}
	if !c.encodeLocked(&d) && d.QoS > 0 {
		c.autoAcks = append(c.autoAcks, autoAck{id: d.PacketID, qos: d.QoS})
	}
	c.kickLocked()
	return true
}

// encodeLocked appends the PUBLISH for d and reports whether it did; a
// delivery that is expired or too large for the client is dropped, as
// MQTT 5 prescribes for packets over the client's Maximum Packet Size.
func (c *conn) encodeLocked(d *broker.Delivery) bool {
	m := d.Msg
	var p packets.Publish
	p.QoS, p.PacketID, p.Dup, p.Retain = d.QoS, d.PacketID, d.Dup, d.Retain
	p.Topic, p.Payload = m.Topic, m.Payload
	var users [4]packets.UserProperty
	var alias uint16
	newAlias := false
	var left time.Duration
	if !m.Expiry.IsZero() {
		if left = m.Expiry.Sub(c.l.now()); left <= 0 {
			return false // expired on the way
		}
	}
	if c.version == packets.V5 {
		if left > 0 {
			p.Props.MessageExpiry = uint32((left + time.Second - 1) / time.Second)
		}
		if mp := m.Props; mp != nil {
			p.Props.PayloadFormat = mp.PayloadFormat
			p.Props.ContentType = mp.ContentType
			p.Props.ResponseTopic = mp.ResponseTopic
			p.Props.CorrelationData = mp.CorrelationData
			if len(mp.User) > 0 {
				u := users[:0]
				for _, kv := range mp.User {
					u = append(u, packets.UserProperty{Key: kv.Key, Value: kv.Value})
				}
				p.Props.User = u
			}
		}
		p.Props.SubscriptionIDs = d.SubscriptionIDs
		if c.clientAliasMax > 0 {
			if a, ok := c.aliasOut[m.Topic]; ok {
				alias = a
				p.Topic = ""
			} else if c.aliasNext < c.clientAliasMax {
				alias = c.aliasNext + 1
				newAlias = true
			}
			p.Props.TopicAlias = alias
		}
	}
	if c.clientMaxPacket > 0 && p.Size(c.version) > int(c.clientMaxPacket) {
		c.l.dropped.Add(1)
		if c.l.debug {
			c.l.log.Debug("delivery dropped: larger than the client's maximum packet size",
				"client", c.clientID, "topic", m.Topic, "max", c.clientMaxPacket)
		}
		return false
	}
	var err error
	if c.out.b, err = p.Append(c.out.b, c.version); err != nil {
		c.l.log.Warn("delivery not encodable", "client", c.clientID, "topic", m.Topic, "err", err)
		return false
	}
	if newAlias {
		if c.aliasOut == nil {
			c.aliasOut = make(map[string]uint16)
		}
		c.aliasOut[m.Topic] = alias
		c.aliasNext = alias
	}
	if c.l.debug {
		c.l.log.Debug("send PUBLISH", "client", c.clientID, "topic", m.Topic, "qos", p.QoS,
			"id", p.PacketID, "dup", p.Dup, "retain", p.Retain, "alias", alias, "bytes", len(p.Payload))
	}
	return true
}

// Closed implements broker.Sink: the broker ended this attachment
// (takeover or shutdown). MQTT 5 clients get a DISCONNECT saying why.
func (c *conn) Closed(reason error) {
	code := packets.AdministrativeAction
	switch {
	case errors.Is(reason, broker.ErrSessionTaken):
		code = packets.SessionTakenOver
	case errors.Is(reason, broker.ErrServerShutdown):
		code = packets.ServerShuttingDown
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detached = true
	if c.closing {
		return
	}
	c.closeCode = code
	c.beginCloseLocked(code, reason.Error())
}

// beginCloseLocked stops deliveries and arranges for the connection to
// close once pending output (and a DISCONNECT with code, for MQTT 5
// clients that have their CONNACK) is written.
func (c *conn) beginCloseLocked(code byte, reason string) {
	c.closing = true
	if code != 0 && c.version == packets.V5 && c.connacked {
		c.appendDisconnectLocked(code, reason)
	}
	// Do not wait long for a client that does not read. A net.Conn
	// takes a new deadline in the middle of a write; the WebSocket
	// adapter does not allow that, and its writer sets it before the
	// next write instead.
	if _, ws := c.tr.(*wsTransport); !ws || !c.flushing {
		_ = c.tr.SetWriteDeadline(time.Now().Add(min(c.l.cfg.WriteTimeout, closeWriteTimeout)))
	}
	if !c.kickLocked() && !c.flushing {
		c.closeNetLocked()
	}
}

// closeWriteTimeout bounds the writing of the last packets of a closing
// connection.
const closeWriteTimeout = 2 * time.Second

func (c *conn) appendDisconnectLocked(code byte, reason string) {
	if c.out == nil {
		c.out = c.l.pools.getBuffer()
	}
	d := packets.Disconnect{ReasonCode: code}
	d.Props.ReasonString = reason
	if c.clientMaxPacket > 0 && 4+len(reason)+8 > int(c.clientMaxPacket) {
		d.Props.ReasonString = ""
	}
	c.out.b, _ = d.Append(c.out.b, packets.V5)
}

// monoEpoch is the origin of monoNow.
var monoEpoch = time.Now()

// monoNow reads the monotonic clock, in nanoseconds since monoEpoch.
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// coalesceLimit is how much output makes a writer waiting for more
// (Config.WriteDelay) write at once instead.
const coalesceLimit = 32 << 10

// kickLocked starts the writer goroutine if there is something to write
// and none is running. It reports whether it started one.
func (c *conn) kickLocked() bool {
	if c.flushing || c.netClosed {
		return false
	}
	if (c.out == nil || len(c.out.b) == 0) && len(c.autoAcks) == 0 && !c.refused {
		return false
	}
	c.flushing = true
	c.l.wg.Add(1)
	go c.flush()
	return true
}

// flush is the writer goroutine: it writes the buffer in batches, hands
// unsendable deliveries back to the broker as done, resumes the session
// when a refused delivery can be taken again, and closes the connection
// when it is closing and everything is written.
func (c *conn) flush() {
	defer c.l.wg.Done()
	c.coalesce()
	c.mu.Lock()
	for !c.netClosed {
		if c.out == nil || len(c.out.b) == 0 {
			if len(c.autoAcks) > 0 {
				c.completeAutoAcksLocked()
				continue
			}
			if c.refused && !c.closing && c.sess != nil {
				c.refused = false
				sess := c.sess
				c.mu.Unlock()
				sess.Resume()
				c.mu.Lock()
				continue
			}
			break
		}
		buf := c.out
		c.out = c.spare
		c.spare = nil
		c.urgent = false
		closing := c.closing
		c.mu.Unlock()
		err := c.write(buf.b, closing)
		c.mu.Lock()
		c.lastWrite = monoNow()
		buf.b = buf.b[:0]
		if c.spare == nil {
			c.spare = buf
		} else {
			c.l.pools.putBuffer(buf)
		}
		c.wakeReaderLocked()
		if err != nil {
			if !c.closing {
				c.l.log.Debug("write failed", "client", c.clientID, "err", err)
			}
			c.closeNetLocked()
			break
		}
	}
	c.flushing = false
	if c.closing && !c.netClosed {
		c.closeNetLocked()
	}
	if c.out != nil && len(c.out.b) == 0 {
		c.l.pools.putBuffer(c.out)
		c.out = nil
	}
	c.l.pools.putBuffer(c.spare)
	c.spare = nil
	c.wakeReaderLocked()
	c.mu.Unlock()
}

// coalesce lets more output gather before the writer's first write. A
// connection that was written to within the last WriteDelay is busy: the
// writer waits WriteDelay, so that one write carries many deliveries.
// Control packets the reader queued (acknowledgements, PINGRESP) are
// never held back, nor is anything on a quiet connection or with
// WriteDelay 0.
func (c *conn) coalesce() {
	d := int64(c.l.cfg.WriteDelay)
	if d <= 0 {
		return
	}
	c.mu.Lock()
	busy := c.lastWrite != 0 && monoNow()-c.lastWrite < d && !c.closing && !c.urgent &&
		c.out != nil && len(c.out.b) < coalesceLimit
	c.mu.Unlock()
	if !busy {
		return
	}
	// Bounded by WriteDelay; deliveries keep appending meanwhile, and a
	// closing connection waits at most this long for its last write.
	time.Sleep(time.Duration(d))
}

// write writes b, bounded by WriteTimeout, or by closeWriteTimeout for
// a closing connection (closing is read under c.mu by the caller).
func (c *conn) write(b []byte, closing bool) error {
	d := c.l.cfg.WriteTimeout
	if closing {
		d = min(d, closeWriteTimeout)
	}
	_ = c.tr.SetWriteDeadline(time.Now().Add(d))
	_, err := c.tr.Write(b)
	return err
}

// completeAutoAcksLocked tells the broker that deliveries dropped by
// encodeLocked are done. It releases c.mu while calling the session.
func (c *conn) completeAutoAcksLocked() {
	acks := c.autoAcks
	c.autoAcks = nil
	sess := c.sess
	c.mu.Unlock()
	if sess != nil {
		for _, a := range acks {
			if a.qos == 1 {
				sess.Ack(a.id)
			} else {
				sess.Received(a.id)
				sess.Complete(a.id)
			}
		}
	}
	c.mu.Lock()
}

// wakeReaderLocked releases a reader waiting for the buffer to drain.
func (c *conn) wakeReaderLocked() {
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}

// closeNetLocked closes the network connection once.
func (c *conn) closeNetLocked() {
	if c.netClosed {
		return
	}
	c.netClosed = true
	c.closing = true
	_ = c.tr.Close()
	c.wakeLocked()
}
