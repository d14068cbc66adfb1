// Package broker is sngate's integrated MQTT broker core: the topic tree,
// sessions (clean and persistent, with expiry), QoS 1/2 in-flight windows
// and queues, retained messages, wills, shared subscriptions and the
// authentication and ACL hooks.
//
// The core knows nothing of wire formats. MQTT listeners (broker/listeners,
// with the codec in broker/packets) and the MQTT-SN gateway (gateway/) are
// both front ends that attach sessions through the same in-process API:
//
//	srv, _ := broker.New(cfg)
//	sess, present, err := srv.Connect(info, sink) // attach (or take over) a session
//	sess.Publish(msg)                             // inbound PUBLISH from the client
//	sess.Subscribe(subs) []byte                   // one MQTT 5 reason code per filter (0x00-0x02 granted QoS, 0x87, 0x8F, 0x97 ...)
//	sess.Unsubscribe(filters) []byte              // one MQTT 5 reason code per filter (0x00, 0x11, 0x87 ...)
//	sess.Pending() int                            // messages queued plus QoS 1/2 in flight
//	sess.Ack(id) / sess.Received(id) / sess.Complete(id) // outbound QoS 1/2 flow
//	sess.Resume()                                 // the sink can take deliveries again
//	sess.SetWill(w) error                         // will update; nil deletes it
//	sess.SetSessionExpiry(d)                      // MQTT 5 DISCONNECT with Session Expiry Interval
//	sess.Disconnect(sendWill)                     // the client left (or was lost)
//	srv.PublishAnonymous(msg, identity)           // QoS -1 and internal publishes
//	srv.RegisterSysGauge(name, fn)                // extra $SYS/name values
//	srv.Stats() / srv.Reload() / srv.Close()      // metrics, SIGHUP, shutdown
//
// Deliveries go to the session's Sink. A sink that cannot take a message
// now (a sleeping MQTT-SN client, a full socket buffer) returns false and
// the broker queues it, bounded by config, until Resume.
//
// Holding deliveries: a session returned by Connect, and a session that
// has just subscribed, is held: the broker queues its deliveries (resent
// in-flight messages of a resumed session, retained messages matched by
// the new subscriptions, live messages) until the front end calls Resume.
// So the rule for every front end is: after writing CONNACK or SUBACK (or
// the MQTT-SN equivalents), call Resume. This keeps CONNACK/SUBACK ahead
// of the PUBLISH packets they enable.
//
// Flow: the broker calls Deliver from whichever goroutine has work for the
// session (a publisher, or the one calling Resume, Ack or Complete), never
// from two goroutines at once for one session, and with no broker lock
// held. QoS 1/2 deliveries hold a packet ID until Ack (QoS 1) or
// Received then Complete (QoS 2); at most ReceiveMaximum of them are in
// flight. A refused delivery (Deliver returned false) keeps its place: a
// QoS 1/2 one keeps its packet ID and is offered again first after Resume;
// a QoS 0 one is queued again if the session queues QoS 0, else dropped.
// Slow consumers get natural back-pressure: a sink that returns false when
// its buffer is full makes the broker queue (bounded) instead of calling
// it, and its writer calls Resume once it has drained.
package broker

import (
	"errors"
	"time"
)

// QoS is an MQTT quality of service level: 0, 1 or 2.
type QoS = byte

// Message is an application message as the broker routes it. After it is
// handed to Publish the broker owns it and shares it, read-only, with every
// subscriber: neither the publisher nor a sink may modify it.
type Message struct {
	Topic   string
	Payload []byte
	QoS     QoS
	Retain  bool
	// Expiry is when the message expires (MQTT 5 Message Expiry
	// Interval); the zero time means never.
	Expiry time.Time
	// Props carries MQTT 5 publish properties end to end; nil for none.
	Props *Properties
	// From is the client ID of the publisher ("" for internal messages);
	// it implements No Local.
	From string
}

// Properties are the MQTT 5 PUBLISH properties the broker passes through
// unchanged from publisher to subscribers.
type Properties struct {
	PayloadFormat   byte // 0 bytes, 1 UTF-8
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	User            []UserProperty
}

// UserProperty is one MQTT 5 user property (a name/value pair).
type UserProperty struct {
	Key, Value string
}

// Delivery is one message offered to a session's Sink.
type Delivery struct {
	Msg *Message
	// QoS is the QoS of this delivery: the lower of the message QoS and
	// the subscription's granted QoS.
	QoS QoS
	// PacketID is non-zero when QoS > 0. Front ends use it as the MQTT
	// packet identifier or the MQTT-SN MsgId, and pass it back to Ack,
	// Received and Complete.
	PacketID uint16
	// Retain is the RETAIN flag to send: set for retained messages sent
	// on subscribe, and kept on live ones when Retain As Published is on.
	Retain bool
	// Dup is set when this is a redelivery of a message sent before.
	Dup bool
	// SubscriptionIDs are the MQTT 5 subscription identifiers that matched.
	// The slice is shared; do not modify it.
	SubscriptionIDs []uint32
	// Release is set when the front end must resend PUBREL (not PUBLISH)
	// for PacketID: a QoS 2 message whose PUBREC was received before the
	// client reconnected. Msg still points to the message, for logs.
	Release bool
}

// Sink receives a session's deliveries. The broker calls Deliver from any
// goroutine (the publisher's, or the one calling Resume or Ack); the sink
// must not block and must not call back into the Session from inside
// Deliver. Deliver returns false when the client cannot take the message
// now (asleep, window full, buffer full): the broker then keeps it queued
// and offers it again after Session.Resume. In-flight QoS 1/2 messages are
// limited by ConnectInfo.ReceiveMaximum whatever Deliver returns.
type Sink interface {
	Deliver(d Delivery) bool
	// Closed tells the front end that the broker ended the session's
	// attachment: taken over by a new connection with the same client ID,
	// or removed by the server. The front end closes its connection.
	Closed(reason error)
}

// Will is a client's last-will message.
type Will struct {
	Msg Message
	// Delay is the MQTT 5 Will Delay Interval.
	Delay time.Duration
	// MsgExpiry is the MQTT 5 Message Expiry Interval of the will: when
	// non-zero, the published will's Msg.Expiry is set to publication
	// time plus MsgExpiry (Msg.Expiry itself is ignored).
	MsgExpiry time.Duration
}

// ConnectInfo describes a client that attaches a session.
type ConnectInfo struct {
	ClientID string
	Username string
	Password []byte
	// CleanStart discards any existing session (MQTT 3.1.1 clean session
	// true, MQTT 5 Clean Start, MQTT-SN CleanSession).
	CleanStart bool
	// SessionExpiry is how long the session outlives its connection: 0
	// ends it at disconnect, NoExpiry keeps it forever (MQTT 3.1.1 with
	// clean session false; MQTT-SN with CleanSession false).
	SessionExpiry time.Duration
	// ReceiveMaximum bounds QoS 1/2 deliveries in flight; 0 means the
	// broker default. MQTT-SN sessions use 1.
	ReceiveMaximum uint16
	Will           *Will
	// Listener names the front end for metrics and logs ("tcp", "ws",
	// "sn-udp", "sn-dtls" ...). RemoteAddr is the peer address for logs.
	Listener   string
	RemoteAddr string
	// CertSubject is the verified TLS/DTLS client certificate subject, if any.
	CertSubject string
	// QueueQoS0 queues QoS 0 messages while the sink refuses them or the
	// client is offline (MQTT-SN sleeping clients need this).
	QueueQoS0 bool
	// Authenticated says the front end admitted this client itself (the
	// MQTT-SN gateway's allow-list and link identity checks, such as a
	// DTLS PSK identity or certificate). Connect then skips the password
	// check and Config.AllowAnonymous and takes Username as the session's
	// user name as is ("" for none; with Config.CertAsUsername a
	// CertSubject still takes precedence); the ACL still applies to its
	// will, publishes and subscriptions. Front ends must set it only for
	// clients they authenticated, never from client-supplied data.
	Authenticated bool
}

// NoExpiry is the SessionExpiry of a session that never expires.
const NoExpiry = time.Duration(1<<63 - 1)

// Subscription is one topic filter with its MQTT 5 options.
type Subscription struct {
	Filter            string
	QoS               QoS
	NoLocal           bool
	RetainAsPublished bool
	// RetainHandling: 0 send retained on subscribe, 1 only if the
	// subscription is new, 2 never.
	RetainHandling byte
	// ID is the MQTT 5 subscription identifier, 0 for none.
	ID uint32
}

// Errors returned by the broker core. Front ends map them to reason codes.
var (
	ErrNotAuthorized  = errors.New("broker: not authorized")
	ErrBadCredentials = errors.New("broker: bad user name or password")
	ErrBadClientID    = errors.New("broker: client identifier not valid")
	ErrServerBusy     = errors.New("broker: server busy")
	ErrQuotaExceeded  = errors.New("broker: quota exceeded")
	ErrBadTopic       = errors.New("broker: topic name or filter invalid")
	ErrSessionTaken   = errors.New("broker: session taken over")
	ErrServerShutdown = errors.New("broker: server shutting down")
	ErrSessionClosed  = errors.New("broker: session closed")
)
