package client

import (
	"sync"
	"sync/atomic"

	"github.com/sngate/sngate/sn"
)

// Message is a PUBLISH received from the gateway.
type Message struct {
	Topic       string         // Topic is the resolved topic name; "" for a pre-defined ID not in Options.PredefinedTopics.
	TopicIDType sn.TopicIDType // TopicIDType is how the gateway named the topic.
	TopicID     uint16         // TopicID is the ID (or short name) as received.
	QoS         sn.QoS         // QoS is the delivery QoS.
	Retain      bool           // Retain is set for a retained message.
	Dup         bool           // Dup is set when the gateway retransmitted the message.
	MsgID       uint16         // MsgID is the gateway's message ID.
	Payload     []byte         // Payload is the message payload (the client's own copy).
}

// msgIDOf returns the MsgId of replies that carry one.
func msgIDOf(p *sn.Packet) (uint16, bool) {
	switch p.Type {
	case sn.TypeRegack:
		return p.Regack.MsgID, true
	case sn.TypePuback:
		return p.Puback.MsgID, true
	case sn.TypePubrec:
		return p.Pubrec.MsgID, true
	case sn.TypePubcomp:
		return p.Pubcomp.MsgID, true
	case sn.TypeSuback:
		return p.Suback.MsgID, true
	case sn.TypeUnsuback:
		return p.Unsuback.MsgID, true
	}
	return 0, false
}

// handle processes one decoded datagram on the reader goroutine. frame is
// the reader's buffer; anything kept must be copied.
func (c *Client) handle(frame []byte, p *sn.Packet) {
	c.mu.Lock()
	w := c.pending
	if w != nil && w.types&(1<<p.Type) != 0 {
		id, has := msgIDOf(p)
		if !w.matchID || (has && id == w.msgID) {
			c.mu.Unlock()
			select {
			case w.replies <- reply{frame: append([]byte(nil), frame...)}:
			default: // duplicate replies beyond the buffer are dropped
			}
			return
		}
	}
	c.mu.Unlock()

	switch p.Type {
	case sn.TypePublish:
		c.signalActivity(w)
		c.handlePublish(&p.Publish)
	case sn.TypePubrel:
		c.mu.Lock()
		delete(c.qos2In, p.Pubrel.MsgID)
		c.mu.Unlock()
		c.send(&sn.Pubcomp{MsgID: p.Pubrel.MsgID})
	case sn.TypeRegister:
		c.signalActivity(w)
		c.mu.Lock()
		c.topics.add(string(p.Register.TopicName), p.Register.TopicID)
		c.mu.Unlock()
		c.send(&sn.Regack{TopicID: p.Register.TopicID, MsgID: p.Register.MsgID, ReturnCode: sn.Accepted})
	case sn.TypePuback:
		// An unsolicited PUBACK rejects a QoS 0 PUBLISH; forget a topic ID
		// the gateway does not know, so the next Publish re-registers.
		if p.Puback.ReturnCode == sn.RejectedInvalidTopicID {
			c.mu.Lock()
			c.topics.forget(p.Puback.TopicID)
			c.mu.Unlock()
		}
	case sn.TypeDisconnect:
		c.mu.Lock()
		c.state = Disconnected
		if c.pingTimer != nil {
			c.pingTimer.Stop()
		}
		c.mu.Unlock()
		if w != nil {
			select {
			case w.replies <- reply{err: ErrDisconnected}:
			default:
			}
		}
	}
}

// signalActivity tells a waiting Wake that the gateway is still flushing.
func (c *Client) signalActivity(w *pending) {
	if w == nil || !w.extend {
		return
	}
	select {
	case w.activity <- struct{}{}:
	default:
	}
}

// handlePublish queues an incoming PUBLISH and acknowledges it.
func (c *Client) handlePublish(m *sn.Publish) {
	c.mu.Lock()
	name, known := c.topics.name(m.TopicIDType, m.TopicID)
	dupQoS2 := false
	if known && m.QoS == sn.QoS2 {
		dupQoS2 = c.qos2In[m.MsgID]
		c.qos2In[m.MsgID] = true
	}
	c.mu.Unlock()

	if !known {
		// The gateway must REGISTER a normal topic ID before using it.
		c.send(&sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: sn.RejectedInvalidTopicID})
		return
	}
	if !dupQoS2 {
		c.inbox.push(Message{
			Topic:       name,
			TopicIDType: m.TopicIDType,
			TopicID:     m.TopicID,
			QoS:         m.QoS,
			Retain:      m.Retain,
			Dup:         m.Dup,
			MsgID:       m.MsgID,
			Payload:     append([]byte(nil), m.Data...),
		})
	}
	switch m.QoS {
	case sn.QoS1:
		c.send(&sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: sn.Accepted})
	case sn.QoS2:
		c.send(&sn.Pubrec{MsgID: m.MsgID})
	}
}

// inbox is the FIFO between the reader and OnPublish.
type inbox struct {
	fn         func(Message)
	mu         sync.Mutex
	queue      []Message
	pushed     uint64        // messages queued so far
	delivered  uint64        // messages handed to fn so far
	wake       chan struct{} // cap 1: the queue is non-empty
	progress   chan struct{} // closed and replaced after each delivery
	inCallback atomic.Bool
}

func (in *inbox) init(fn func(Message)) {
	in.fn = fn
	in.wake = make(chan struct{}, 1)
	in.progress = make(chan struct{})
}

func (in *inbox) push(m Message) {
	in.mu.Lock()
	in.queue = append(in.queue, m)
	in.pushed++
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// run delivers queued messages until done closes.
func (in *inbox) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-in.wake:
		}
		for {
			in.mu.Lock()
			if len(in.queue) == 0 {
				in.mu.Unlock()
				break
			}
			m := in.queue[0]
			in.queue[0] = Message{}
			in.queue = in.queue[1:]
			in.mu.Unlock()
			if in.fn != nil {
				in.inCallback.Store(true)
				in.fn(m)
				in.inCallback.Store(false)
			}
			in.mu.Lock()
			in.delivered++
			close(in.progress)
			in.progress = make(chan struct{})
			in.mu.Unlock()
			select {
			case <-done:
				return
			default:
			}
		}
	}
}

// counts returns how many messages were queued and delivered, and a
// channel closed at the next delivery.
func (in *inbox) counts() (pushed, delivered uint64, progress <-chan struct{}) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.pushed, in.delivered, in.progress
}
