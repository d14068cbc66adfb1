package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// v5link is an MQTT 5 link over paho.golang. Publishes use paho's
// asynchronous send, so that one goroutine puts them on the wire in
// order; ackState learns each one's acknowledgement from the session
// state and reports it to the caller's done function.
type v5link struct {
	c       *paho.Client
	raw     net.Conn
	st      *ackState
	present bool
	maxQoS  byte
	retain  bool
	pubMu   sync.Mutex // serializes publish, which hands ackState its done function
	closing sync.Once
}

// ackState is paho's in-memory session state, with the responses to
// PUBLISH packets routed to the bridge's done functions.
type ackState struct {
	*state.State
	next    func(error) // the done function of the PUBLISH being added; under v5link.pubMu
	started bool        // a waiter took next; under v5link.pubMu
	linkEnd <-chan struct{}
	waiters sync.WaitGroup
	taken   atomic.Bool
}

// ConnectionLost implements session.SessionManager. It notes a server
// DISCONNECT with reason 0x8E (session taken over) before the link ends.
func (s *ackState) ConnectionLost(dp *packets.Disconnect) error {
	if dp != nil && dp.ReasonCode == 0x8E {
		s.taken.Store(true)
	}
	return s.State.ConnectionLost(dp)
}

// AddToSession implements session.SessionManager.
func (s *ackState) AddToSession(ctx context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	cb := s.next
	s.next = nil
	if p.Type() != packets.PUBLISH || cb == nil {
		return s.State.AddToSession(ctx, p, resp)
	}
	ch := make(chan packets.ControlPacket, 1)
	if err := s.State.AddToSession(ctx, p, ch); err != nil {
		return err
	}
	s.started = true
	s.waiters.Add(1)
	go func() {
		defer s.waiters.Done()
		select {
		case r := <-ch:
			cb(ackResult(r))
		case <-s.linkEnd:
			select {
			case r := <-ch:
				cb(ackResult(r))
			default:
				cb(errLinkLost)
			}
		}
	}()
	return nil
}

// ackResult maps the final response to a PUBLISH to a done error.
func ackResult(r packets.ControlPacket) error {
	var code byte
	switch c := r.Content.(type) {
	case *packets.Puback:
		code = c.ReasonCode
	case *packets.Pubrec:
		code = c.ReasonCode
	case *packets.Pubcomp:
		code = c.ReasonCode
	default:
		return errLinkLost // the session state gave up on it: connection gone
	}
	if code >= 0x80 {
		return &rejectedError{code: code}
	}
	return nil
}

// connectV5 opens an MQTT 5 link.
func (d *dialer) connectV5(ctx context.Context, o linkOptions) (link, error) {
	raw, err := d.dialConn(ctx)
	if err != nil {
		return nil, err
	}
	rec := &recorder{Conn: raw}
	conn := packets.NewThreadSafeConn(rec)
	l := &v5link{raw: raw, maxQoS: 2, retain: true}
	l.st = &ackState{State: state.NewInMemory()}
	cfg := paho.ClientConfig{
		ClientID:           o.clientID,
		Conn:               conn,
		Session:            l.st,
		PacketTimeout:      d.cfg.ConnectTimeout,
		OnClientError:      func(error) {},
		OnServerDisconnect: func(*paho.Disconnect) {},
	}
	cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			if !o.onMessage(inFromV5(pr.Packet)) {
				l.closeNow() // no acknowledgement: the broker sends it again
			}
			return true, nil
		},
	}
	c := paho.NewClient(cfg)
	l.c = c
	cp := &paho.Connect{
		ClientID:   o.clientID,
		KeepAlive:  uint16(min(d.cfg.KeepAlive.Seconds(), 65535)),
		CleanStart: o.cleanStart,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &o.expiry},
	}
	if o.receiveMax > 0 {
		cp.Properties.ReceiveMaximum = &o.receiveMax
	}
	if d.cfg.Username != "" {
		cp.Username, cp.UsernameFlag = d.cfg.Username, true
	}
	if d.cfg.Password != "" {
		cp.Password, cp.PasswordFlag = []byte(d.cfg.Password), true
	}
	if w := o.will; w != nil {
		cp.WillMessage = &paho.WillMessage{Topic: w.topic, Payload: w.payload, QoS: w.qos, Retain: w.retain}
		cp.WillProperties = &paho.WillProperties{User: userV5(w.user), ContentType: w.contentType}
	}
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		raw.Close()
		if (ca != nil && ca.ReasonCode == 0x84) || (ca == nil && rec.refusedV5()) {
			return nil, errUnsupportedVersion
		}
		if ca != nil {
			return nil, fmt.Errorf("bridge: upstream refused the connection: reason 0x%02x: %w", ca.ReasonCode, err)
		}
		return nil, fmt.Errorf("bridge: MQTT 5 connect: %w", err)
	}
	l.st.linkEnd = c.Done()
	l.present = ca.SessionPresent
	if p := ca.Properties; p != nil {
		if p.MaximumQoS != nil {
			l.maxQoS = *p.MaximumQoS
		}
		l.retain = p.RetainAvailable
	}
	return l, nil
}

func (l *v5link) version() int          { return 5 }
func (l *v5link) sessionPresent() bool  { return l.present }
func (l *v5link) done() <-chan struct{} { return l.c.Done() }
func (l *v5link) takenOver() bool       { return l.st.taken.Load() }

func (l *v5link) publish(ctx context.Context, m *outMsg, done func(error)) error {
	p := &paho.Publish{
		Topic:   m.topic,
		Payload: m.payload,
		QoS:     min(m.qos, l.maxQoS),
		Retain:  m.retain && l.retain,
		Properties: &paho.PublishProperties{
			ContentType:     m.contentType,
			ResponseTopic:   m.responseTopic,
			CorrelationData: m.correlationData,
			User:            userV5(m.user),
		},
	}
	if m.payloadFormat != 0 {
		pf := m.payloadFormat
		p.Properties.PayloadFormat = &pf
	}
	if m.expiry != 0 {
		e := m.expiry
		p.Properties.MessageExpiry = &e
	}
	l.pubMu.Lock()
	if p.QoS > 0 {
		l.st.next, l.st.started = done, false
	}
	_, err := l.c.PublishWithOptions(ctx, p, paho.PublishOptions{Method: paho.PublishMethod_AsyncSend})
	handed := p.QoS > 0 && l.st.started
	l.st.next, l.st.started = nil, false
	l.pubMu.Unlock()
	switch {
	case handed:
		// In the session state: the waiter reports the outcome, also when
		// the write failed (ErrNetworkErrorAfterStored).
		return nil
	case err == nil:
		done(nil) // QoS 0, written
		return nil
	case errors.Is(err, paho.ErrInvalidArguments):
		return &rejectedError{code: 0x80, reason: err.Error()}
	default:
		return errLinkLost
	}
}

func (l *v5link) subscribe(ctx context.Context, subs []outSub) ([]byte, error) {
	s := &paho.Subscribe{Subscriptions: make([]paho.SubscribeOptions, len(subs))}
	for i, x := range subs {
		s.Subscriptions[i] = paho.SubscribeOptions{Topic: x.filter, QoS: x.qos, NoLocal: true,
			RetainAsPublished: true, RetainHandling: 1}
	}
	sa, err := l.c.Subscribe(ctx, s)
	if sa != nil {
		return sa.Reasons, nil // reason codes say which failed
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: subscribe: %w", err)
	}
	return nil, errors.New("bridge: subscribe: no SUBACK")
}

func (l *v5link) unsubscribe(ctx context.Context, filters []string) error {
	if _, err := l.c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: filters}); err != nil {
		return fmt.Errorf("bridge: unsubscribe: %w", err)
	}
	return nil
}

func (l *v5link) close(withWill bool) {
	var rc byte
	if withWill {
		rc = 0x04 // Disconnect with Will Message
	}
	l.closing.Do(func() { _ = l.c.Disconnect(&paho.Disconnect{ReasonCode: rc}) })
	l.closeNow()
	<-l.c.Done()
	l.st.waiters.Wait()
}

func (l *v5link) closeNow() { _ = l.raw.Close() }

// inFromV5 converts a PUBLISH from upstream.
func inFromV5(p *paho.Publish) *inMsg {
	m := &inMsg{topic: p.Topic, payload: p.Payload, qos: p.QoS, retain: p.Retain}
	if pp := p.Properties; pp != nil {
		m.contentType, m.responseTopic, m.correlationData = pp.ContentType, pp.ResponseTopic, pp.CorrelationData
		if pp.PayloadFormat != nil {
			m.payloadFormat = *pp.PayloadFormat
		}
		if pp.MessageExpiry != nil {
			m.expiry = *pp.MessageExpiry
		}
		for _, u := range pp.User {
			m.user = append(m.user, [2]string{u.Key, u.Value})
		}
	}
	return m
}

func userV5(u [][2]string) paho.UserProperties {
	if len(u) == 0 {
		return nil
	}
	out := make(paho.UserProperties, len(u))
	for i, kv := range u {
		out[i] = paho.UserProperty{Key: kv[0], Value: kv[1]}
	}
	return out
}
