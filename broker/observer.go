package broker

import "fmt"

// Observer is told about the life of selected session attachments:
// attach, subscriptions, will, publishes and detach. The MQTT bridge's
// transparent mode (broker/bridge) uses it to mirror each MQTT-SN
// client's session in an upstream broker.
//
// The broker calls an Observer after it has acted, from the goroutine of
// the front end's call (Connect, Session.Subscribe ...), with no broker
// lock held, so the calls for one client come in the order of the front
// end's calls. Methods must not block and must not call back into the
// Session or the Server from inside the call; they may keep their
// arguments but must not modify them.
type Observer interface {
	// SessionConnected reports that Connect attached a session; present
	// says an existing session was resumed. info.Password is cleared.
	SessionConnected(info ConnectInfo, present bool)
	// SessionSubscribed reports a Session.Subscribe call and the reason
	// codes it returned (granted QoS, or 0x80 and above for a refusal).
	SessionSubscribed(clientID string, subs []Subscription, codes []byte)
	// SessionUnsubscribed reports a Session.Unsubscribe call and its
	// reason codes.
	SessionUnsubscribed(clientID string, filters []string, codes []byte)
	// SessionWill reports a successful Session.SetWill (nil: deleted).
	SessionWill(clientID string, w *Will)
	// SessionPublished reports a message the client published and the
	// broker accepted (Session.Publish returned nil). For
	// Session.PublishAsync it is reported once the message is routed,
	// from the caller's goroutine before PublishAsync returns (so in
	// order with the client's other calls), which may be before it is
	// durable; a later store failure does not retract it. m is shared
	// with the subscribers: read-only.
	SessionPublished(clientID string, m *Message)
	// SessionDisconnected reports Session.Disconnect: the client left
	// (sendWill false) or was lost (sendWill true).
	SessionDisconnected(clientID string, sendWill bool)
}

// observerHook is the installed Observer and its attachment filter.
type observerHook struct {
	o     Observer
	match func(*ConnectInfo) bool
}

// SetObserver installs o for the attachments whose ConnectInfo match
// accepts (nil match: every attachment); a nil o removes the observer.
// There is one observer per server. It applies to later Connect calls:
// an attachment is observed, or not, for its whole life.
func (srv *Server) SetObserver(o Observer, match func(info *ConnectInfo) bool) {
	if o == nil {
		srv.observer.Store(nil)
		return
	}
	srv.observer.Store(&observerHook{o: o, match: match})
}

// observe marks the new attachment h as observed if the observer wants
// it, and reports the connect. Connect calls it last.
func (srv *Server) observe(h *Session, info *ConnectInfo, present bool) {
	hk := srv.observer.Load()
	if hk == nil || (hk.match != nil && !hk.match(info)) {
		return
	}
	h.obs = hk.o
	c := *info
	c.Password = nil
	hk.o.SessionConnected(c, present)
}

// DeliverTo offers m to the session of clientID only, bypassing the topic
// tree and the session's subscriptions, at QoS qos. It is how the bridge
// hands a session the messages its upstream twin received. The message
// is queued like any other delivery (bounded, persisted with a Store for
// a persistent session, QoS 0 kept per the session's QueueQoS0) and
// delivered in order with the session's other messages. The broker owns
// m afterwards. It returns ErrBadTopic for an invalid topic or QoS,
// ErrSessionClosed (wrapped) when no session has that client ID,
// ErrSubscriberQueueFull (wrapped) for a QoS 1/2 delivery while the
// session's queue is full, and ErrServerShutdown after Close.
func (srv *Server) DeliverTo(clientID string, m *Message, qos QoS) error {
	if m == nil || qos > 2 {
		return fmt.Errorf("deliver to %q: %w: nil message or QoS above 2", clientID, ErrBadTopic)
	}
	if srv.shut.Load() {
		return ErrServerShutdown
	}
	if err := srv.limits.checkName(m.Topic); err != nil {
		srv.stats.badTopics.Add(1)
		return fmt.Errorf("deliver to %q: %w", clientID, err)
	}
	srv.mu.Lock()
	s := srv.sessions[clientID]
	srv.mu.Unlock()
	if s == nil {
		return fmt.Errorf("deliver to %q: %w: no such session", clientID, ErrSessionClosed)
	}
	if min(m.QoS, qos) > 0 && s.congested() {
		srv.refuseLog(s, m)
		return fmt.Errorf("deliver to %q: %w", clientID, ErrSubscriberQueueFull)
	}
	var pb *persistBatch
	if srv.store != nil {
		pb = &persistBatch{}
	}
	s.offer(m, &target{sess: s, qos: qos}, pb, true)
	if pb == nil {
		return nil
	}
	return pb.finish(srv)
}

// The Session methods below report to the attachment's observer, if any.

func (h *Session) observeSubscribe(subs []Subscription, codes []byte) {
	if h.obs != nil {
		h.obs.SessionSubscribed(h.s.id, subs, codes)
	}
}

func (h *Session) observeUnsubscribe(filters []string, codes []byte) {
	if h.obs != nil {
		h.obs.SessionUnsubscribed(h.s.id, filters, codes)
	}
}

func (h *Session) observeWill(w *Will) {
	if h.obs != nil {
		h.obs.SessionWill(h.s.id, w)
	}
}

func (h *Session) observePublish(m *Message, err error) error {
	if h.obs != nil && err == nil {
		h.obs.SessionPublished(h.s.id, m)
	}
	return err
}

func (h *Session) observeDisconnect(sendWill bool) {
	if h.obs != nil {
		h.obs.SessionDisconnected(h.s.id, sendWill)
	}
}
