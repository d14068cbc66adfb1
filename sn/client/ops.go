package client

import (
	"context"
	"fmt"
	"time"

	"github.com/sngate/sngate/sn"
)

// maxConnectSteps bounds the CONNECT/will dialogue against a gateway that
// keeps prompting.
const maxConnectSteps = 8

// Connect opens the session: CONNECT, the will dialogue when Options.Will
// is set, and CONNACK. A rejection returns a *ReturnCodeError. Connect may
// also be used from Asleep or Awake to become Active again.
func (c *Client) Connect(ctx context.Context) error {
	if c.opts.ClientID == "" {
		return fmt.Errorf("client: connect: %w", sn.ErrEmptyClientID)
	}
	if err := c.acquire(ctx, "connect"); err != nil {
		return err
	}
	defer c.release()

	var m sn.Message = &sn.Connect{
		Will:         c.opts.Will != nil,
		CleanSession: c.opts.CleanSession,
		ProtocolID:   sn.V12,
		Duration:     c.opts.keepAliveSeconds(),
		ClientID:     []byte(c.opts.ClientID),
	}
	want := typeMask(sn.TypeConnack, sn.TypeWillTopicReq, sn.TypeWillMsgReq)
	for step := 0; step < maxConnectSteps; step++ {
		p, err := c.exchange(ctx, m, want, 0, false)
		if err != nil {
			return fmt.Errorf("client: connect: %w", err)
		}
		switch p.Type {
		case sn.TypeWillTopicReq:
			m = c.willTopic()
		case sn.TypeWillMsgReq:
			m = c.willMsg()
		case sn.TypeConnack:
			if err := checkRC("connect", p.Connack.ReturnCode); err != nil {
				return err
			}
			c.mu.Lock()
			c.state = Active
			if c.opts.CleanSession {
				c.topics.reset()
				clear(c.qos2In)
			}
			c.mu.Unlock()
			c.armPing()
			return nil
		}
	}
	return fmt.Errorf("client: connect: %w: gateway prompted %d times without CONNACK", ErrUnexpected, maxConnectSteps)
}

func (c *Client) willTopic() sn.Message {
	w := c.opts.Will
	if w == nil {
		return &sn.WillTopic{} // header-only: no will
	}
	return &sn.WillTopic{QoS: w.QoS, Retain: w.Retain, Topic: []byte(w.Topic)}
}

func (c *Client) willMsg() sn.Message {
	if c.opts.Will == nil {
		return &sn.WillMsg{}
	}
	return &sn.WillMsg{Msg: c.opts.Will.Message}
}

// Register asks the gateway for the topic ID of a topic name and
// remembers it for Publish.
func (c *Client) Register(ctx context.Context, topic string) (uint16, error) {
	if err := c.acquire(ctx, "register"); err != nil {
		return 0, err
	}
	defer c.release()
	return c.register(ctx, topic)
}

// register runs REGISTER/REGACK; the caller holds the request token.
func (c *Client) register(ctx context.Context, topic string) (uint16, error) {
	if topic == "" {
		return 0, fmt.Errorf("client: register: %w: empty topic name", ErrBadTopic)
	}
	id := c.msgID()
	p, err := c.exchange(ctx, &sn.Register{MsgID: id, TopicName: []byte(topic)}, typeMask(sn.TypeRegack), id, true)
	if err != nil {
		return 0, fmt.Errorf("client: register %q: %w", topic, err)
	}
	if err := checkRC("register "+topic, p.Regack.ReturnCode); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.topics.add(topic, p.Regack.TopicID)
	c.mu.Unlock()
	return p.Regack.TopicID, nil
}

// Publish sends payload to topic. QoS 0 and -1 return once sent; QoS 1
// waits for PUBACK, QoS 2 for PUBREC and then PUBCOMP. A normal topic
// given by name is registered first unless its ID is known. At QoS -1 a
// normal topic name is sent in the Paho "long topic name" form (TopicId =
// name length, name before the payload), which needs no registration.
func (c *Client) Publish(ctx context.Context, topic TopicRef, qos sn.QoS, retain bool, payload []byte) error {
	if !qos.Valid() {
		return fmt.Errorf("client: publish: %w: QoS %d", sn.ErrInvalid, qos)
	}
	m := &sn.Publish{QoS: qos, Retain: retain, TopicIDType: topic.Type, Data: payload}
	if qos == sn.QoS0 || qos == sn.QoSMinus1 {
		// No reply expected: no request token needed, unless a normal
		// topic must be registered first.
		if err := c.resolvePublishTopic(ctx, topic, m, false); err != nil {
			return err
		}
		return c.send(m)
	}
	if err := c.acquire(ctx, "publish"); err != nil {
		return err
	}
	defer c.release()
	if err := c.resolvePublishTopic(ctx, topic, m, true); err != nil {
		return err
	}
	m.MsgID = c.msgID()
	if qos == sn.QoS1 {
		p, err := c.exchange(ctx, m, typeMask(sn.TypePuback), m.MsgID, true)
		if err != nil {
			return fmt.Errorf("client: publish %s: %w", topic, err)
		}
		return c.checkPuback(topic, &p.Puback)
	}
	p, err := c.exchange(ctx, m, typeMask(sn.TypePubrec, sn.TypePuback), m.MsgID, true)
	if err != nil {
		return fmt.Errorf("client: publish %s: %w", topic, err)
	}
	if p.Type == sn.TypePuback {
		if err := c.checkPuback(topic, &p.Puback); err != nil {
			return err
		}
		return fmt.Errorf("client: publish %s: %w: PUBACK accepted a QoS 2 PUBLISH", topic, ErrUnexpected)
	}
	if _, err := c.exchange(ctx, &sn.Pubrel{MsgID: m.MsgID}, typeMask(sn.TypePubcomp), m.MsgID, true); err != nil {
		return fmt.Errorf("client: publish %s: PUBREL: %w", topic, err)
	}
	return nil
}

// checkPuback surfaces a PUBACK rejection, forgetting a refused topic ID.
func (c *Client) checkPuback(topic TopicRef, ack *sn.Puback) error {
	if ack.ReturnCode == sn.RejectedInvalidTopicID && topic.Type == sn.TopicIDNormal {
		c.mu.Lock()
		c.topics.forget(ack.TopicID)
		c.mu.Unlock()
	}
	return checkRC("publish "+topic.String(), ack.ReturnCode)
}

// resolvePublishTopic fills m's TopicID (and, for the long-name form, its
// data). held says whether the caller holds the request token.
func (c *Client) resolvePublishTopic(ctx context.Context, topic TopicRef, m *sn.Publish, held bool) error {
	switch topic.Type {
	case sn.TopicIDPredefined:
		c.mu.Lock()
		id, err := c.topics.predefinedID(topic)
		c.mu.Unlock()
		m.TopicID = id
		return err
	case sn.TopicIDShort:
		id, ok := sn.ShortTopicID(topic.Name)
		if !ok {
			return fmt.Errorf("client: publish: %w: %s: a short name has exactly 2 characters", ErrBadTopic, topic)
		}
		m.TopicID = id
		return nil
	case sn.TopicIDNormal:
	default:
		return fmt.Errorf("client: publish: %w: %s", ErrBadTopic, topic)
	}
	if topic.Name == "" {
		m.TopicID = topic.ID
		return nil
	}
	if m.QoS == sn.QoSMinus1 {
		if len(topic.Name) > 0xFFFF {
			return fmt.Errorf("client: publish: %w: topic name too long", ErrBadTopic)
		}
		m.TopicID = uint16(len(topic.Name))
		m.Data = append([]byte(topic.Name), m.Data...)
		return nil
	}
	c.mu.Lock()
	id, ok := c.topics.byName[topic.Name]
	c.mu.Unlock()
	if ok {
		m.TopicID = id
		return nil
	}
	if !held {
		if err := c.acquire(ctx, "publish"); err != nil {
			return err
		}
		defer c.release()
	}
	id, err := c.register(ctx, topic.Name)
	m.TopicID = id
	return err
}

// Subscribe subscribes to topic (a filter by name, a pre-defined ID or a
// short name) at qos. It returns the topic ID from SUBACK (0 for wildcard
// filters) and the granted QoS. The ID of a plain topic name is remembered,
// so messages on it resolve to the name.
func (c *Client) Subscribe(ctx context.Context, topic TopicRef, qos sn.QoS) (topicID uint16, granted sn.QoS, err error) {
	if !qos.Valid() {
		return 0, 0, fmt.Errorf("client: subscribe: %w: QoS %d", sn.ErrInvalid, qos)
	}
	c.mu.Lock()
	tt, id, name, err := c.topics.wireTopic(topic)
	c.mu.Unlock()
	if err != nil {
		return 0, 0, fmt.Errorf("client: subscribe: %w", err)
	}
	if err := c.acquire(ctx, "subscribe"); err != nil {
		return 0, 0, err
	}
	defer c.release()
	mid := c.msgID()
	m := &sn.Subscribe{QoS: qos, TopicIDType: tt, MsgID: mid, TopicID: id, TopicName: name}
	p, err := c.exchange(ctx, m, typeMask(sn.TypeSuback), mid, true)
	if err != nil {
		return 0, 0, fmt.Errorf("client: subscribe %s: %w", topic, err)
	}
	ack := p.Suback
	if err := checkRC("subscribe "+topic.String(), ack.ReturnCode); err != nil {
		return ack.TopicID, ack.QoS, err
	}
	if tt == sn.TopicIDNormal && ack.TopicID != 0 && !hasWildcard(string(name)) {
		c.mu.Lock()
		c.topics.add(string(name), ack.TopicID)
		c.mu.Unlock()
	}
	return ack.TopicID, ack.QoS, nil
}

// Unsubscribe removes a subscription made with Subscribe.
func (c *Client) Unsubscribe(ctx context.Context, topic TopicRef) error {
	c.mu.Lock()
	tt, id, name, err := c.topics.wireTopic(topic)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("client: unsubscribe: %w", err)
	}
	if err := c.acquire(ctx, "unsubscribe"); err != nil {
		return err
	}
	defer c.release()
	mid := c.msgID()
	m := &sn.Unsubscribe{TopicIDType: tt, MsgID: mid, TopicID: id, TopicName: name}
	if _, err := c.exchange(ctx, m, typeMask(sn.TypeUnsuback), mid, true); err != nil {
		return fmt.Errorf("client: unsubscribe %s: %w", topic, err)
	}
	return nil
}

// Ping sends PINGREQ and waits for PINGRESP.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.acquire(ctx, "ping"); err != nil {
		return err
	}
	defer c.release()
	if _, err := c.exchange(ctx, &sn.Pingreq{}, typeMask(sn.TypePingresp), 0, false); err != nil {
		return fmt.Errorf("client: ping: %w", err)
	}
	return nil
}

// Sleep tells the gateway the client sleeps for d (DISCONNECT with a
// Duration, rounded up to whole seconds) and waits for its DISCONNECT.
// Automatic pings stop; wake with Wake, or Connect to become active.
func (c *Client) Sleep(ctx context.Context, d time.Duration) error {
	return c.disconnect(ctx, &sn.Disconnect{HasDuration: true, Duration: durationSeconds(d)}, Asleep)
}

// Disconnect ends the session (DISCONNECT without Duration) and waits for
// the gateway's DISCONNECT. The Client stays open and may Connect again.
func (c *Client) Disconnect(ctx context.Context) error {
	return c.disconnect(ctx, &sn.Disconnect{}, Disconnected)
}

func (c *Client) disconnect(ctx context.Context, m *sn.Disconnect, next State) error {
	if err := c.acquire(ctx, m.String()); err != nil {
		return err
	}
	defer c.release()
	c.stopPing()
	if _, err := c.exchange(ctx, m, typeMask(sn.TypeDisconnect), 0, false); err != nil {
		return fmt.Errorf("client: %s: %w", m, err)
	}
	c.setState(next)
	return nil
}

// Wake ends a sleep period: it sends PINGREQ with the ClientId, lets the
// gateway flush the messages it buffered (answering REGISTER and PUBLISH
// as they come), and returns at PINGRESP, after OnPublish has been called
// for every message received before it. It returns how many PUBLISHes
// arrived and were queued for OnPublish (not those refused because the
// queue was full: see Options.MaxPending and Stats). The client is Asleep again afterwards. The retransmission timer
// restarts whenever a message arrives, so a long flush is not interrupted
// by a retransmitted PINGREQ.
func (c *Client) Wake(ctx context.Context) (int, error) {
	if err := c.acquire(ctx, "wake"); err != nil {
		return 0, err
	}
	defer c.release()
	c.setState(Awake)
	before, _, _ := c.inbox.counts()
	w := &pending{types: typeMask(sn.TypePingresp), extend: true}
	_, err := c.exchangeExt(ctx, &sn.Pingreq{ClientID: []byte(c.opts.ClientID)}, w)
	c.setState(Asleep)
	if err != nil {
		return 0, fmt.Errorf("client: wake: %w", err)
	}
	target, _, _ := c.inbox.counts()
	for {
		_, delivered, progress := c.inbox.counts()
		if delivered >= target {
			return int(target - before), nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return int(target - before), fmt.Errorf("client: wake: delivering: %w", ctx.Err())
		case <-c.done:
			return int(target - before), fmt.Errorf("client: wake: delivering: %w", c.closedErr())
		}
	}
}

// UpdateWillTopic replaces the will topic (WILLTOPICUPD). An empty topic
// deletes the will topic and message.
func (c *Client) UpdateWillTopic(ctx context.Context, topic string, qos sn.QoS, retain bool) error {
	m := &sn.WillTopicUpd{QoS: qos, Retain: retain, Topic: []byte(topic)}
	return c.willUpdate(ctx, m, sn.TypeWillTopicResp, "update will topic")
}

// UpdateWillMsg replaces the will message (WILLMSGUPD).
func (c *Client) UpdateWillMsg(ctx context.Context, msg []byte) error {
	return c.willUpdate(ctx, &sn.WillMsgUpd{Msg: msg}, sn.TypeWillMsgResp, "update will message")
}

func (c *Client) willUpdate(ctx context.Context, m sn.Message, resp sn.MsgType, op string) error {
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	p, err := c.exchange(ctx, m, typeMask(resp), 0, false)
	if err != nil {
		return fmt.Errorf("client: %s: %w", op, err)
	}
	rc := p.WillTopicResp.ReturnCode
	if p.Type == sn.TypeWillMsgResp {
		rc = p.WillMsgResp.ReturnCode
	}
	return checkRC(op, rc)
}

// SearchGW sends SEARCHGW with the given radius to the client's peer and
// waits for GWINFO.
func (c *Client) SearchGW(ctx context.Context, radius uint8) (sn.GWInfo, error) {
	if err := c.acquire(ctx, "searchgw"); err != nil {
		return sn.GWInfo{}, err
	}
	defer c.release()
	p, err := c.exchange(ctx, &sn.SearchGW{Radius: radius}, typeMask(sn.TypeGWInfo), 0, false)
	if err != nil {
		return sn.GWInfo{}, fmt.Errorf("client: searchgw: %w", err)
	}
	return p.GWInfo, nil
}
