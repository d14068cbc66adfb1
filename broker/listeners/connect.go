package listeners

import (
	"errors"
	"fmt"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// errRefused ends a connection whose CONNECT was answered with a failure
// CONNACK (already queued).
type errRefused struct {
	code byte
	err  error
}

func (e *errRefused) Error() string {
	return fmt.Sprintf("connect refused (0x%02X): %v", e.code, e.err)
}

func (e *errRefused) Unwrap() error { return e.err }

// refuse queues a failure CONNACK in the client's protocol version and
// returns the error that ends the connection.
func (c *conn) refuse(version, code byte, reason string, err error) error {
	ack := packets.Connack{ReasonCode: code}
	if version == packets.V5 {
		if c.problemInfo {
			ack.Props.ReasonString = reason
		}
	} else {
		ack.ReasonCode = packets.ConnackV3Code(code)
	}
	b, _ := ack.Append(nil, version)
	c.send(b)
	return &errRefused{code: code, err: err}
}

// handleConnect processes the CONNECT packet: it validates it, attaches
// the broker session and sends CONNACK.
func (c *conn) handleConnect(body []byte) error {
	var cp packets.Connect
	if err := cp.Decode(body); err != nil {
		var pe *packets.Error
		switch {
		case errors.As(err, &pe) && pe.Code == packets.UnsupportedProtocolVersion && cp.ProtocolName != "":
			// A protocol level we do not speak: answer in the 3.1.1
			// format, which every client version can read.
			return c.refuse(packets.V311, packets.UnsupportedProtocolVersion, pe.Reason, err)
		case cp.Version == packets.V5 && errors.As(err, &pe) && pe.Code != packets.UnsupportedProtocolVersion:
			return c.refuse(packets.V5, pe.Code, pe.Reason, err)
		}
		return fmt.Errorf("CONNECT: %w", err)
	}
	v := cp.Version
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
	p := &cp.Props
	if v == packets.V5 {
		if p.Has(packets.PropRequestProblemInfo) && p.RequestProblemInfo == 0 {
			c.problemInfo = false
		}
		if p.AuthMethod != "" {
			return c.refuse(v, packets.BadAuthenticationMethod, "enhanced authentication is not supported",
				errors.New("enhanced authentication requested"))
		}
	}
	id, assigned := cp.ClientID, false
	if id == "" {
		if v != packets.V5 && (!cp.CleanStart || v == packets.V31) {
			return c.refuse(v, packets.ClientIDNotValid, "empty client identifier",
				errors.New("empty client identifier without clean session"))
		}
		id, assigned = broker.NewClientID(), true
	}
	info := broker.ConnectInfo{
		ClientID:    id,
		Username:    cp.Username,
		Password:    cp.Password,
		CleanStart:  cp.CleanStart,
		Listener:    c.l.cfg.Name,
		RemoteAddr:  c.remoteAddr(),
		CertSubject: c.cert,
	}
	keepAlive := time.Duration(cp.KeepAlive) * time.Second
	serverKeepAlive := false
	if v == packets.V5 {
		switch {
		case p.SessionExpiry == 0xFFFFFFFF:
			info.SessionExpiry = broker.NoExpiry
		default:
			info.SessionExpiry = time.Duration(p.SessionExpiry) * time.Second
		}
		info.ReceiveMaximum = 65535
		if p.Has(packets.PropReceiveMaximum) {
			info.ReceiveMaximum = p.ReceiveMaximum
		}
		if ska := c.l.cfg.ServerKeepAlive; ska > 0 {
			keepAlive, serverKeepAlive = ska.Truncate(time.Second), true
		}
	} else if !cp.CleanStart {
		info.SessionExpiry = broker.NoExpiry
	}
	c.expiry0 = info.SessionExpiry == 0
	if cp.WillFlag {
		info.Will = c.will(&cp, id)
	}

	c.mu.Lock()
	c.clientID = id
	c.clientMaxPacket = p.MaximumPacketSize
	c.clientAliasMax = p.TopicAliasMaximum
	c.mu.Unlock()

	sess, present, err := c.l.srv.Connect(info, c)
	if err != nil {
		code, reason := connectCode(err)
		c.l.log.Info("client refused", "client", id, "remote", c.remoteAddr(), "user", cp.Username,
			"reason_code", fmt.Sprintf("0x%02X", code), "err", err)
		return c.refuse(v, code, reason, err)
	}

	if present {
		c.loadQoS2(sess.FrontendState())
	}
	ack := packets.Connack{SessionPresent: present}
	if v == packets.V5 {
		ap := &ack.Props
		if assigned {
			ap.AssignedClientID = id
		}
		if serverKeepAlive {
			ap.ServerKeepAlive = uint16(keepAlive / time.Second)
			ap.Set(packets.PropServerKeepAlive)
		}
		if c.l.cfg.ReceiveMaximum != 65535 {
			ap.ReceiveMaximum = c.l.cfg.ReceiveMaximum
		}
		ap.TopicAliasMaximum = uint16(c.l.cfg.TopicAliasMaximum)
		ap.MaximumPacketSize = c.l.cfg.MaxPacketSize
		if p.RequestResponseInfo == 1 && c.l.cfg.ResponseInformation != "" {
			ap.ResponseInfo = c.l.cfg.ResponseInformation
		}
	}
	b, err := ack.Append(nil, v)
	if err != nil {
		sess.Disconnect(false)
		return fmt.Errorf("encode CONNACK: %w", err)
	}
	c.mu.Lock()
	c.sess = sess
	if !c.closing {
		c.out = c.outBuffer()
		c.out.b = append(c.out.b, b...)
		c.connacked = true
		c.kickLocked()
	} else if c.detached {
		// Taken over before CONNACK went out: say so, then close.
		c.out = c.outBuffer()
		c.out.b = append(c.out.b, b...)
		c.connacked = true
		c.beginCloseLocked(c.closeCode, "session taken over")
	}
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return errShutdown
	}
	// From now on the keep alive, not the connect timeout, bounds reads.
	c.keepAlive = keepAlive * 3 / 2
	c.readBy = time.Time{}
	if c.keepAlive == 0 {
		_ = c.tr.SetReadDeadline(time.Time{})
	} else {
		c.refreshDeadline()
	}
	c.l.log.Info("client connected", "client", id, "remote", c.remoteAddr(), "version", v,
		"clean", cp.CleanStart, "keep_alive", keepAlive, "present", present, "user", cp.Username)
	sess.Resume()
	return nil
}

// outBuffer returns c.out, taking a buffer from the pool if needed.
// Caller holds c.mu.
func (c *conn) outBuffer() *buffer {
	if c.out == nil {
		return c.l.pools.getBuffer()
	}
	return c.out
}

// will builds the broker will from the CONNECT will fields.
func (c *conn) will(cp *packets.Connect, id string) *broker.Will {
	w := &broker.Will{Msg: broker.Message{
		Topic:   cp.WillTopic,
		Payload: cp.WillPayload,
		QoS:     cp.WillQoS,
		Retain:  cp.WillRetain,
		From:    id,
	}}
	if cp.Version == packets.V5 {
		wp := &cp.WillProps
		w.Delay = time.Duration(wp.WillDelay) * time.Second
		w.MsgExpiry = time.Duration(wp.MessageExpiry) * time.Second
		w.Msg.Props = brokerProps(wp)
	}
	return w
}

// brokerProps converts the PUBLISH properties the broker passes through;
// nil when there are none.
func brokerProps(p *packets.Properties) *broker.Properties {
	if p.PayloadFormat == 0 && p.ContentType == "" && p.ResponseTopic == "" &&
		p.CorrelationData == nil && len(p.User) == 0 {
		return nil
	}
	bp := &broker.Properties{
		PayloadFormat:   p.PayloadFormat,
		ContentType:     p.ContentType,
		ResponseTopic:   p.ResponseTopic,
		CorrelationData: p.CorrelationData,
	}
	if len(p.User) > 0 {
		bp.User = make([]broker.UserProperty, len(p.User))
		for i, u := range p.User {
			bp.User[i] = broker.UserProperty{Key: u.Key, Value: u.Value}
		}
	}
	return bp
}

// connectCode maps a broker Connect error to a CONNACK reason code and a
// reason string.
func connectCode(err error) (byte, string) {
	switch {
	case errors.Is(err, broker.ErrBadCredentials):
		return packets.BadUsernameOrPassword, "bad user name or password"
	case errors.Is(err, broker.ErrNotAuthorized):
		return packets.NotAuthorized, "not authorized"
	case errors.Is(err, broker.ErrBadClientID):
		return packets.ClientIDNotValid, "client identifier not valid"
	case errors.Is(err, broker.ErrServerBusy):
		return packets.ServerBusy, "server busy"
	case errors.Is(err, broker.ErrQuotaExceeded):
		return packets.QuotaExceeded, "quota exceeded"
	case errors.Is(err, broker.ErrBadTopic):
		return packets.TopicNameInvalid, "will topic not valid"
	case errors.Is(err, broker.ErrServerShutdown):
		return packets.ServerUnavailable, "server shutting down"
	}
	return packets.UnspecifiedError, "internal error"
}
