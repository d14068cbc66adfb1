package listeners

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// dispatch handles one packet after CONNECT.
func (c *conn) dispatch(h packets.FixedHeader, body []byte) error {
	switch h.Type {
	case packets.PUBLISH:
		return c.handlePublish(h, body)
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		return c.handleAck(h.Type, body)
	case packets.SUBSCRIBE:
		return c.handleSubscribe(body)
	case packets.UNSUBSCRIBE:
		return c.handleUnsubscribe(body)
	case packets.PINGREQ:
		if len(body) != 0 {
			return protoErr(packets.MalformedPacket, "PINGREQ: %d unexpected bytes", len(body))
		}
		c.send([]byte{packets.PINGRESP << 4, 0})
		return nil
	case packets.DISCONNECT:
		return c.handleDisconnect(body)
	case packets.AUTH:
		var a packets.Auth
		if err := a.Decode(body, c.version); err != nil {
			return err
		}
		return protoErr(packets.ProtocolError, "AUTH without enhanced authentication")
	case packets.CONNECT:
		return protoErr(packets.ProtocolError, "second CONNECT")
	}
	return protoErr(packets.ProtocolError, "unexpected %s from a client", packets.TypeName(h.Type))
}

// handlePublish routes an inbound PUBLISH and acknowledges it.
func (c *conn) handlePublish(h packets.FixedHeader, body []byte) error {
	var p packets.Publish
	if err := p.Decode(h, body, c.version); err != nil {
		return err
	}
	if c.version == packets.V5 {
		if err := c.resolveAlias(&p); err != nil {
			return err
		}
		if len(p.Props.SubscriptionIDs) > 0 {
			return protoErr(packets.ProtocolError, "PUBLISH from a client carries a Subscription Identifier")
		}
	}
	if p.QoS == 2 {
		if _, dup := c.qos2in[p.PacketID]; dup {
			// Already delivered; the client did not get our PUBREC.
			c.sendAckFast(packets.PUBREC, p.PacketID, 0)
			return nil
		}
		if len(c.qos2in) >= int(c.l.cfg.ReceiveMaximum) {
			return protoErr(packets.ReceiveMaximumExceeded, "more than %d QoS 2 publications unreleased",
				c.l.cfg.ReceiveMaximum)
		}
	}
	code := packets.Success
	congested := false // a subscriber's queue is full: the client must send it again
	if p.Props.PayloadFormat == 1 && !utf8.Valid(p.Payload) {
		code = packets.PayloadFormatInvalid
	} else {
		m := &broker.Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain}
		if c.version == packets.V5 {
			if p.Props.MessageExpiry > 0 {
				m.Expiry = c.l.now().Add(time.Duration(p.Props.MessageExpiry) * time.Second)
			}
			m.Props = brokerProps(&p.Props)
		}
		err := c.sess.Publish(m)
		code = publishCode(err)
		congested = errors.Is(err, broker.ErrSubscriberQueueFull)
	}
	if code != packets.Success && c.l.debug {
		c.l.log.Debug("publish refused", "client", c.clientID, "topic", p.Topic, "reason_code", code)
	}
	switch p.QoS {
	case 0:
		return nil
	case 1:
		if (code == packets.UnspecifiedError || congested) && c.version != packets.V5 {
			// MQTT 3.1.1 cannot say "failed" (nor "quota exceeded"):
			// close without acknowledging, so that the client sends it
			// again after it reconnects.
			return errors.New("publish failed; closing without PUBACK")
		}
		c.sendAck(packets.PUBACK, p.PacketID, code)
	case 2:
		if (code == packets.UnspecifiedError || congested) && c.version != packets.V5 {
			return errors.New("publish failed; closing without PUBREC")
		}
		if code < 0x80 {
			if c.qos2in == nil {
				c.qos2in = make(map[uint16]struct{})
			}
			c.qos2in[p.PacketID] = struct{}{}
			c.saveQoS2()
		}
		c.sendAck(packets.PUBREC, p.PacketID, code)
	}
	return nil
}

// sendAck sends a PUBACK or PUBREC; MQTT 5 failures carry a Reason String
// unless the client asked for no problem information.
func (c *conn) sendAck(kind byte, id uint16, code byte) {
	if code < 0x80 || c.version != packets.V5 || !c.problemInfo {
		c.sendAckFast(kind, id, c.ackCode(code))
		return
	}
	a := packets.Ack{Kind: kind, PacketID: id, ReasonCode: code}
	a.Props.ReasonString = reasonText(code)
	b, _ := a.Append(nil, c.version)
	c.send(b)
}

// reasonText is the Reason String sent with a failure code.
func reasonText(code byte) string {
	switch code {
	case packets.NotAuthorized:
		return "not authorized"
	case packets.QuotaExceeded:
		return "quota exceeded"
	case packets.TopicNameInvalid:
		return "topic name not valid"
	case packets.PayloadFormatInvalid:
		return "payload is not valid UTF-8"
	}
	return "publish failed"
}

// ackCode is the reason code to put in a PUBACK or PUBREC: MQTT 3.1.1
// has none.
func (c *conn) ackCode(code byte) byte {
	if c.version != packets.V5 {
		return 0
	}
	return code
}

// resolveAlias applies an inbound MQTT 5 Topic Alias.
func (c *conn) resolveAlias(p *packets.Publish) error {
	if !p.Props.Has(packets.PropTopicAlias) {
		return nil
	}
	a := int(p.Props.TopicAlias)
	if a > c.l.cfg.TopicAliasMaximum {
		return protoErr(packets.TopicAliasInvalid, "topic alias %d above the maximum %d", a, c.l.cfg.TopicAliasMaximum)
	}
	if p.Topic == "" {
		if a > len(c.inAlias) || c.inAlias[a-1] == "" {
			return protoErr(packets.ProtocolError, "topic alias %d is not set", a)
		}
		p.Topic = c.inAlias[a-1]
		return nil
	}
	if c.inAlias == nil {
		c.inAlias = make([]string, c.l.cfg.TopicAliasMaximum)
	}
	c.inAlias[a-1] = p.Topic
	return nil
}

// publishCode maps a Session.Publish error to a PUBACK/PUBREC reason code.
func publishCode(err error) byte {
	switch {
	case err == nil:
		return packets.Success
	case errors.Is(err, broker.ErrNotAuthorized):
		return packets.NotAuthorized
	case errors.Is(err, broker.ErrQuotaExceeded):
		return packets.QuotaExceeded
	case errors.Is(err, broker.ErrBadTopic):
		return packets.TopicNameInvalid
	}
	return packets.UnspecifiedError
}

// handleAck handles the client's side of QoS 1/2 flows.
func (c *conn) handleAck(kind byte, body []byte) error {
	var a packets.Ack
	if err := a.Decode(kind, body, c.version); err != nil {
		return err
	}
	switch kind {
	case packets.PUBACK:
		c.sess.Ack(a.PacketID)
	case packets.PUBREC:
		if a.ReasonCode >= 0x80 {
			// The client refused the message: the flow ends here.
			c.sess.Complete(a.PacketID)
			return nil
		}
		c.sess.Received(a.PacketID)
		c.sendAckFast(packets.PUBREL, a.PacketID, 0)
	case packets.PUBREL:
		code := packets.Success
		if _, ok := c.qos2in[a.PacketID]; ok {
			delete(c.qos2in, a.PacketID)
			c.saveQoS2()
		} else {
			code = packets.PacketIDNotFound
		}
		c.sendAckFast(packets.PUBCOMP, a.PacketID, c.ackCode(code))
	case packets.PUBCOMP:
		c.sess.Complete(a.PacketID)
	}
	return nil
}

func (c *conn) handleSubscribe(body []byte) error {
	var s packets.Subscribe
	if err := s.Decode(body, c.version); err != nil {
		return err
	}
	var id uint32
	if len(s.Props.SubscriptionIDs) > 0 {
		id = s.Props.SubscriptionIDs[0]
	}
	subs := make([]broker.Subscription, len(s.Filters))
	for i, f := range s.Filters {
		if f.NoLocal && strings.HasPrefix(f.Filter, "$share/") {
			return protoErr(packets.ProtocolError, "No Local on shared subscription %q", f.Filter)
		}
		subs[i] = broker.Subscription{Filter: f.Filter, QoS: f.QoS, NoLocal: f.NoLocal,
			RetainAsPublished: f.RetainAsPublished, RetainHandling: f.RetainHandling, ID: id}
	}
	codes := c.sess.Subscribe(subs)
	if c.version != packets.V5 {
		for i, rc := range codes {
			if rc >= 0x80 {
				codes[i] = 0x80
			}
		}
	}
	ack := packets.Suback{PacketID: s.PacketID, ReasonCodes: codes}
	b, err := ack.Append(nil, c.version)
	if err != nil {
		return err
	}
	if c.l.debug {
		c.l.log.Debug("subscribe", "client", c.clientID, "filters", s.Filters, "codes", codes)
	}
	c.send(b)
	c.sess.Resume()
	return nil
}

func (c *conn) handleUnsubscribe(body []byte) error {
	var u packets.Unsubscribe
	if err := u.Decode(body, c.version); err != nil {
		return err
	}
	ack := packets.Unsuback{PacketID: u.PacketID}
	codes := c.sess.Unsubscribe(u.Filters)
	if c.version == packets.V5 {
		ack.ReasonCodes = codes
	}
	b, err := ack.Append(nil, c.version)
	if err != nil {
		return err
	}
	c.send(b)
	return nil
}

// handleDisconnect handles the client's DISCONNECT.
func (c *conn) handleDisconnect(body []byte) error {
	var d packets.Disconnect
	if err := d.Decode(body, c.version); err != nil {
		return err
	}
	c.sendWill = d.ReasonCode == packets.DisconnectWithWill
	if c.version == packets.V5 && d.Props.Has(packets.PropSessionExpiry) {
		if c.expiry0 && d.Props.SessionExpiry != 0 {
			c.sendWill = true
			return protoErr(packets.ProtocolError, "session expiry set at DISCONNECT after connecting with 0")
		}
		exp := time.Duration(d.Props.SessionExpiry) * time.Second
		if d.Props.SessionExpiry == 0xFFFFFFFF {
			exp = broker.NoExpiry
		}
		c.sess.SetSessionExpiry(exp)
	}
	if c.l.debug {
		c.l.log.Debug("client sent DISCONNECT", "client", c.clientID, "reason_code", d.ReasonCode)
	}
	return errClientDisconnect
}

// qos2Tag marks this package's front-end state in a broker session: the
// packet identifiers of inbound QoS 2 messages delivered but not yet
// released (PUBREL). Kept with persistent sessions, it makes a PUBLISH
// resent after a reconnect (or a restart, with a store) a duplicate, not a
// second delivery.
const qos2Tag = 'Q'

// saveQoS2 stores the unreleased inbound QoS 2 identifiers with a
// persistent session.
func (c *conn) saveQoS2() {
	if c.expiry0 {
		return // the session ends with the connection
	}
	var b []byte
	if len(c.qos2in) > 0 {
		b = make([]byte, 1, 1+2*len(c.qos2in))
		b[0] = qos2Tag
		for id := range c.qos2in {
			b = append(b, byte(id>>8), byte(id))
		}
	}
	// Wait for durability: the PUBREC or PUBCOMP that follows depends on it.
	if err := c.sess.SetFrontendState(b).Wait(); err != nil && !errors.Is(err, broker.ErrSessionClosed) {
		c.l.log.Warn("cannot save QoS 2 state", "client", c.clientID, "err", err)
	}
}

// loadQoS2 restores the identifiers saved by saveQoS2 when a session
// resumes.
func (c *conn) loadQoS2(b []byte) {
	if len(b) < 3 || b[0] != qos2Tag {
		return
	}
	c.qos2in = make(map[uint16]struct{}, len(b)/2)
	for i := 1; i+1 < len(b); i += 2 {
		c.qos2in[uint16(b[i])<<8|uint16(b[i+1])] = struct{}{}
	}
}
