package gateway

import (
	"sync/atomic"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
)

// maxNodeID bounds the wireless node ID of a client behind a forwarder.
const maxNodeID = 16

// peerKey identifies a peer on one link: its link address and, behind a
// forwarder, its wireless node ID. It is comparable and allocation-free.
type peerKey struct {
	addr transport.Addr
	node [maxNodeID]byte
	nlen uint8 // 0: the peer talks to the gateway directly
}

func (k *peerKey) nodeID() []byte { return k.node[:k.nlen] }

func (k peerKey) String() string {
	if k.nlen == 0 {
		return k.addr.String()
	}
	return k.addr.String() + "/" + string(k.nodeID())
}

// outKind is the kind of request the gateway waits an answer for.
type outKind uint8

const (
	outNone outKind = iota
	outRegister
	outPublish
	outPubrel
	outWillTopicReq
	outWillMsgReq
)

// outflight is the one gateway request a client has outstanding: the
// protocol allows one QoS 1/2 PUBLISH per direction, and REGISTER waits
// before the PUBLISH it announces.
type outflight struct {
	kind    outKind
	retries int
	msgID   uint16
	topicID uint16
	tt      sn.TopicIDType
	name    string          // REGISTER topic
	d       broker.Delivery // PUBLISH / PUBREL
	sent    bool            // a link accepted it at least once
	refused bool            // the link refused the last attempt (congestion)
	early   bool            // resent on a link's TxFailure since the timer last fired
}

// connectState is the will dialogue between CONNECT and CONNACK.
type connectState struct {
	clean     bool
	duration  uint16
	willTopic string
	willQoS   sn.QoS
	retain    bool
	source    transport.Addr // counted in the limiter's pending connects
}

// client is one MQTT-SN client, owned by exactly one shard: only that
// shard's goroutine touches its fields, except the atomics in its sink.
type client struct {
	id     string
	shard  *shard
	state  State
	link   *linkState
	key    peerKey
	policy *clientPolicy // allow-list entry, or nil

	sess *broker.Session
	sink *sink
	will *broker.Will // current will, kept for WILLTOPICUPD / WILLMSGUPD

	clean     bool
	keepAlive uint16 // seconds
	sleepFor  uint16 // seconds, while asleep or awake
	lastSeen  int64  // gateway clock, nanoseconds
	whole     bool   // the forwarder uses the whole-length encapsulation

	super timerSlot // keep-alive or sleep supervision
	retry timerSlot // retransmission of out

	topics  registry
	out     *outflight
	hold    []broker.Delivery // deliveries waiting for out or a REGISTER
	conn    *connectState
	nextID  uint16 // gateway REGISTER message IDs
	inQoS2  uint16 // inbound QoS 2 MsgId awaiting PUBREL
	hasQoS2 bool
	pub     *pubWait // inbound QoS 1/2 PUBLISH the broker is routing (pubasync.go)
	removed bool
	unbound atomic.Bool // another client took this client's address
	// congestion is the client's own link congestion on links where it
	// concerns one peer (radiolink.go): 0, or until<<2 | priority.
	congestion uint64
}

// nextMsgID returns a message ID for a gateway REGISTER.
func (c *client) nextMsgID() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// maxCredits bounds the deliveries a client has posted to its shard or
// held there: beyond, Sink.Deliver refuses and the broker keeps the
// message in the session queue, which bounds it by config.
const maxCredits = 4

// sink is one attachment's broker.Sink. A new one is made per CONNECT, so
// deliveries and Closed calls for a replaced attachment are told apart.
type sink struct {
	c  *client
	sh *shard

	credits    atomic.Int32
	needResume atomic.Bool
	accepting  atomic.Bool // the client is active or awake
	closed     atomic.Bool
	starved    atomic.Bool // queued on the shard's resume list
}

// Deliver implements broker.Sink. It never blocks: it posts the delivery
// to the owning shard, or refuses it while the client sleeps, while the
// client has maxCredits deliveries outstanding, or while the inbox is full.
func (s *sink) Deliver(d broker.Delivery) bool {
	for {
		if s.closed.Load() {
			return false
		}
		if !s.accepting.Load() {
			s.needResume.Store(true)
			if s.accepting.Load() {
				continue
			}
			return false
		}
		n := s.credits.Load()
		if n >= maxCredits {
			s.needResume.Store(true)
			if s.credits.Load() < maxCredits {
				continue
			}
			return false
		}
		if s.credits.CompareAndSwap(n, n+1) {
			break
		}
	}
	select {
	case s.sh.deliveries <- deliverEv{sink: s, d: d}:
		return true
	default:
	}
	s.credits.Add(-1)
	s.needResume.Store(true)
	s.sh.starve(s)
	return false
}

// Closed implements broker.Sink: the broker ended this attachment.
func (s *sink) Closed(reason error) {
	if s.closed.Swap(true) {
		return
	}
	s.sh.postClosed(s)
}

// release returns one delivery credit and reports whether the broker
// should be asked to resume deliveries.
func (s *sink) release() bool {
	s.credits.Add(-1)
	return s.needResume.Load() && s.needResume.CompareAndSwap(true, false)
}
