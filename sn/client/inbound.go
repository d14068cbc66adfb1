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

// handlePublish queues an incoming PUBLISH and acknowledges it. When the
// inbox is full it drops a QoS 0 (or -1) message and leaves a QoS 1 or 2
// message unacknowledged, for the gateway to retransmit; a QoS 2 message
// is recorded as received (for duplicate detection until PUBREL) only once
// it is queued.
func (c *Client) handlePublish(m *sn.Publish) {
	c.mu.Lock()
	name, known := c.topics.name(m.TopicIDType, m.TopicID)
	dupQoS2 := known && m.QoS == sn.QoS2 && c.qos2In[m.MsgID]
	c.mu.Unlock()

	if !known {
		// The gateway must REGISTER a normal topic ID before using it.
		c.send(&sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: sn.RejectedInvalidTopicID})
		return
	}
	if !dupQoS2 {
		queued := c.inbox.push(Message{
			Topic:       name,
			TopicIDType: m.TopicIDType,
			TopicID:     m.TopicID,
			QoS:         m.QoS,
			Retain:      m.Retain,
			Dup:         m.Dup,
			MsgID:       m.MsgID,
			Payload:     append([]byte(nil), m.Data...),
		})
		if !queued {
			return // counted by push; no acknowledgement
		}
		if m.QoS == sn.QoS2 {
			c.mu.Lock()
			c.qos2In[m.MsgID] = true
			c.mu.Unlock()
		}
	}
	switch m.QoS {
	case sn.QoS1:
		c.send(&sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: sn.Accepted})
	case sn.QoS2:
		c.send(&sn.Pubrec{MsgID: m.MsgID})
	}
}

// Stats counts what the Client did with incoming messages it could not
// queue for OnPublish (see Options.MaxPending).
type Stats struct {
	// Pending is the number of messages waiting for OnPublish now.
	Pending int
	// Dropped counts QoS 0 and QoS -1 messages dropped because the queue
	// was full. They are lost.
	Dropped uint64
	// Unacknowledged counts QoS 1 and 2 messages not queued, and so not
	// acknowledged, because the queue was full. The gateway retransmits
	// them; each refused transmission counts once.
	Unacknowledged uint64
}

// Stats returns the counters of the Client's incoming message queue.
func (c *Client) Stats() Stats { return c.inbox.stats() }

// inbox is the FIFO between the reader and OnPublish, bounded by max.
type inbox struct {
	fn         func(Message)
	max        int
	mu         sync.Mutex
	queue      []Message
	pushed     uint64        // messages queued so far
	delivered  uint64        // messages handed to fn so far
	dropped    uint64        // QoS 0 and -1 messages refused (queue full)
	unacked    uint64        // QoS 1 and 2 messages refused (queue full)
	wake       chan struct{} // cap 1: the queue is non-empty
	progress   chan struct{} // closed and replaced after each delivery
	inCallback atomic.Bool
}

func (in *inbox) init(fn func(Message), limit int) {
	in.fn = fn
	in.max = limit
	in.wake = make(chan struct{}, 1)
	in.progress = make(chan struct{})
}

// push queues m, or counts it and reports false when the queue is full.
func (in *inbox) push(m Message) bool {
	in.mu.Lock()
	if len(in.queue) >= in.max {
		if m.QoS == sn.QoS1 || m.QoS == sn.QoS2 {
			in.unacked++
		} else {
			in.dropped++
		}
		in.mu.Unlock()
		return false
	}
	in.queue = append(in.queue, m)
	in.pushed++
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
	return true
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

// stats returns the queue's length and refusal counters.
func (in *inbox) stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return Stats{Pending: len(in.queue), Dropped: in.dropped, Unacknowledged: in.unacked}
}

// counts returns how many messages were queued and delivered, and a
// channel closed at the next delivery.
func (in *inbox) counts() (pushed, delivered uint64, progress <-chan struct{}) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.pushed, in.delivered, in.progress
}
