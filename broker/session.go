package broker

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// smallSubs is how many subscriptions a session keeps in a slice before
// it also indexes them by filter.
const smallSubs = 16

// session is the broker-side state of one client ID. It outlives its
// attachments (Session handles) while it has not expired.
type session struct {
	srv *Server
	id  string
	seq uint64 // unique per server, orders sessions when merging matches

	// ready mirrors "attached, not held, not refused", for shared
	// subscriptions, which prefer such members.
	ready atomic.Bool
	// full is set when the queue is full with nothing to evict: new
	// messages are refused without taking mu, so that an overloaded
	// subscriber's lock is left to the goroutine draining it.
	full atomic.Bool

	// Guarded by srv.tree.mu:
	subs   []*subRecord
	subMap map[string]*subRecord // index of subs when it is large
	nsubs  int                   // non-shared subscriptions

	mu sync.Mutex
	// Guarded by mu:
	cur       *Session // current attachment, nil while offline
	held      bool     // after Connect or Subscribe, until Resume
	refused   bool     // the sink refused a delivery, until Resume
	draining  bool     // a goroutine is calling the sink
	resumes   uint32   // counts Resume calls, to spot one during Deliver
	ended     bool
	queueQoS0 bool
	window    uint16
	nextID    uint16
	queue     ring
	inflight  []inflight
	resendN   int // in-flight entries with resend set
	username  string
	expiry    time.Duration
	will      *Will         // the will of the attached client
	off       *offState     // set while offline with a will or an expiry
	ps        *persistState // set when a Store is configured
	fe        []byte        // front-end state (SetFrontendState), read-only
}

// offState is what an offline session needs. Guarded by session.mu.
type offState struct {
	pendingWill    *Will // a will waiting for its delay or the session end
	willTimer      *timerEntry
	expiryTimer    *timerEntry
	disconnectedAt time.Time
}

// persistState is a session's bookkeeping for the Store. Guarded by
// session.mu.
type persistState struct {
	msgSeq    uint64    // store keys of queued messages
	persisted bool      // the store holds a record of the session
	one       [1]Change // staging buffer (stageLocked)
	syncGen   uint64    // counts syncLocked calls
}

// offLocked returns s.off, creating it. Caller holds s.mu.
func (s *session) offLocked() *offState {
	if s.off == nil {
		s.off = &offState{}
	}
	return s.off
}

// takeOffLocked removes and returns the offline state (nil if none).
// Caller holds s.mu.
func (s *session) takeOffLocked() *offState {
	o := s.off
	s.off = nil
	return o
}

func (s *session) findSub(filter string) *subRecord {
	if s.subMap != nil {
		return s.subMap[filter]
	}
	for _, r := range s.subs {
		if r.sub.Filter == filter {
			return r
		}
	}
	return nil
}

func (s *session) addSub(r *subRecord) {
	s.subs = append(s.subs, r)
	if s.subMap != nil {
		s.subMap[r.sub.Filter] = r
	} else if len(s.subs) > smallSubs {
		s.subMap = make(map[string]*subRecord, 2*len(s.subs))
		for _, x := range s.subs {
			s.subMap[x.sub.Filter] = x
		}
	}
}

func (s *session) replaceSub(old, r *subRecord) {
	if i := slices.Index(s.subs, old); i >= 0 {
		s.subs[i] = r
	}
	if s.subMap != nil {
		s.subMap[r.sub.Filter] = r
	}
}

func (s *session) removeSub(r *subRecord) {
	if i := slices.Index(s.subs, r); i >= 0 {
		s.subs = slices.Delete(s.subs, i, i+1)
	}
	if s.subMap != nil {
		delete(s.subMap, r.sub.Filter)
		if len(s.subs) <= smallSubs/2 {
			s.subMap = nil
		}
	}
	if len(s.subs) == 0 {
		s.subs = nil
	}
}

// Session is one attachment of a client to its broker session, returned
// by Server.Connect. Its methods are safe for concurrent use. Once the
// attachment ends (Disconnect, takeover, session end, server close) the
// methods do nothing, or return ErrSessionClosed.
type Session struct {
	s        *session
	sink     Sink
	username string
	closed   atomic.Bool
	obs      Observer     // set by Connect when observed (observer.go)
	async    atomic.Int32 // PublishAsync calls whose done has not run yet
}

// ClientID returns the session's client identifier.
func (h *Session) ClientID() string { return h.s.id }

// Username returns the authenticated user name ("" for anonymous).
func (h *Session) Username() string { return h.username }

// Publish routes an inbound PUBLISH from the client: it checks the topic
// and the ACL (write), updates the retained store and delivers to the
// matching sessions. The broker owns m afterwards (it sets m.From). It
// returns ErrBadTopic, ErrNotAuthorized, ErrQuotaExceeded (retained store
// full) or ErrSessionClosed, wrapped; the front end maps them to PUBACK or
// PUBREC reason codes. With a Store, a QoS 1/2 message is durable for all
// persistent subscribers when Publish returns.
//
// A QoS 1/2 message that a subscriber would get at QoS 1/2 is refused
// with ErrSubscriberQueueFull (which wraps ErrQuotaExceeded) while that
// subscriber's queue is full: the publisher keeps it and sends it again
// later, instead of the broker dropping an acknowledged message.
//
// Publish is the blocking form of PublishAsync (async.go).
func (h *Session) Publish(m *Message) error {
	if h.async.Load() != 0 {
		// Keep the order with the PublishAsync calls not done yet.
		ch := make(chan error, 1)
		h.PublishAsync(m, func(err error) { ch <- err })
		return <-ch
	}
	if h.closed.Load() {
		return ErrSessionClosed
	}
	if m == nil {
		return fmt.Errorf("publish: %w: nil message", ErrBadTopic)
	}
	m.From = h.s.id
	return h.observePublish(m, h.s.srv.publish(m, h.s.id, h.username, true, true))
}

// Ack handles PUBACK for the QoS 1 delivery with packet id; unknown ids
// are ignored. It may deliver queued messages (calling the sink from the
// calling goroutine).
func (h *Session) Ack(id uint16) { h.finish(id, 1) }

// Complete handles PUBCOMP for the QoS 2 delivery with packet id, after
// Received; unknown ids are ignored. It may deliver queued messages.
func (h *Session) Complete(id uint16) { h.finish(id, 2) }

func (h *Session) finish(id uint16, qos QoS) {
	s := h.s
	s.mu.Lock()
	i := s.findInflightLocked(id)
	if s.cur != h || i < 0 || s.inflight[i].qos != qos || (qos == 2 && !s.inflight[i].released) {
		s.mu.Unlock()
		return
	}
	f := s.inflight[i]
	if f.resend {
		s.resendN--
	}
	s.removeInflightLocked(i)
	s.forgetLocked(f.seq)
	s.pumpLocked(nil)
}

// Received handles PUBREC for the QoS 2 delivery with packet id: the
// front end then sends PUBREL, and the message stays in flight until
// Complete. On a later reconnect, the broker asks for PUBREL again
// (Delivery.Release). With a Store, Received returns once the release is
// durable (for persistent sessions).
func (h *Session) Received(id uint16) {
	s := h.s
	s.mu.Lock()
	i := s.findInflightLocked(id)
	if s.cur != h || i < 0 || s.inflight[i].qos != 2 || s.inflight[i].released {
		s.mu.Unlock()
		return
	}
	f := &s.inflight[i]
	f.released = true
	var c Commit
	if f.seq != 0 {
		c = s.stageLocked(Change{Kind: PutMessage, ClientID: s.id, Message: f.stored()})
	}
	s.mu.Unlock()
	// PUBREL tells the client to forget the packet ID: after a crash
	// the broker must resend PUBREL, not the PUBLISH, so the release is
	// durable before Received returns.
	_ = s.srv.wait(c)
}

// Resume tells the broker that the sink can take deliveries again: after
// CONNACK, after SUBACK, and after the sink returned false from Deliver
// (an MQTT-SN client woke up, a socket buffer drained). It delivers from
// the calling goroutine what the window allows.
func (h *Session) Resume() {
	s := h.s
	s.mu.Lock()
	if s.cur != h {
		s.mu.Unlock()
		return
	}
	s.held, s.refused = false, false
	s.resumes++
	s.ready.Store(true)
	s.pumpLocked(nil)
}

// Pending returns the number of messages queued for the session plus the
// QoS 1/2 messages in flight (an MQTT-SN gateway answers a waking
// client's PINGREQ when it reaches 0).
func (h *Session) Pending() int {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.len() + len(s.inflight)
}

// SetWill replaces the client's will; nil deletes it. It returns
// ErrBadTopic or ErrNotAuthorized (wrapped) for a will the client may not
// publish, ErrSessionClosed on an ended attachment, and a store error
// (the will is set, but not durable) when the Store fails.
func (h *Session) SetWill(w *Will) error {
	s := h.s
	if w != nil {
		if err := s.srv.checkWill(s.id, h.username, w); err != nil {
			return err
		}
		w = cloneWill(w)
	}
	s.mu.Lock()
	if s.cur != h {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	s.will = w
	s.mu.Unlock()
	h.observeWill(w)
	return s.srv.wait(s.srv.saveSession(s))
}

// SetFrontendState replaces the session's front-end state: an opaque blob
// the broker keeps with the session and persists with it (a persistent
// session's state survives a restart), for what the front end must find
// again when the client resumes its session, such as the MQTT-SN topic-ID
// registrations. The broker copies b; nil or empty clears the state.
//
// It does not wait for the Store: it returns the commit to wait for
// before acknowledging anything that depends on the state (Wait returns
// nil at once without a store, or for a session that is not persistent;
// ErrSessionClosed on an ended attachment; a store error, counted and
// logged, if the state could not be made durable). Commits complete in
// order, so after several calls waiting for the last one is enough.
func (h *Session) SetFrontendState(b []byte) Commit {
	s := h.s
	var fe []byte
	if len(b) > 0 {
		fe = append(make([]byte, 0, len(b)), b...)
	}
	s.mu.Lock()
	if s.cur != h {
		s.mu.Unlock()
		return doneCommit{ErrSessionClosed}
	}
	s.fe = fe
	s.mu.Unlock()
	c := s.srv.saveSession(s)
	if c == nil {
		return doneCommit{}
	}
	return countedCommit{srv: s.srv, c: c}
}

// FrontendState returns the session's front-end state as last set with
// SetFrontendState, by this attachment or by an earlier one of the same
// session (in this run or, for a persistent session, before a restart);
// nil for none. The slice is shared: do not modify it.
func (h *Session) FrontendState() []byte {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fe
}

// SetSessionExpiry changes the session expiry interval (MQTT 5 DISCONNECT
// with a Session Expiry Interval). It is capped by Config.MaxSessionExpiry.
func (h *Session) SetSessionExpiry(d time.Duration) {
	s := h.s
	d = s.srv.capExpiry(d)
	s.mu.Lock()
	if s.cur != h {
		s.mu.Unlock()
		return
	}
	s.expiry = d
	s.mu.Unlock()
	_ = s.srv.wait(s.srv.saveSession(s)) // a failure is counted and logged
}

// Disconnect ends the attachment: the client sent DISCONNECT or its
// connection was lost. With sendWill the will is published (after its
// delay, if any); without, it is discarded. A session with expiry 0 ends
// now; a persistent one keeps its subscriptions and queues messages until
// it expires or the client reconnects. In-flight messages are resent, with
// Dup, to the next attachment.
func (h *Session) Disconnect(sendWill bool) {
	if h.closed.Swap(true) {
		return
	}
	h.s.srv.detach(h, sendWill)
	h.observeDisconnect(sendWill)
}

func cloneWill(w *Will) *Will {
	c := *w
	return &c
}

// idsFor returns the shared subscription-identifier slice of a
// subscription.
func idsFor(id uint32) []uint32 {
	if id == 0 {
		return nil
	}
	return []uint32{id}
}

// SUBACK and UNSUBACK reason codes returned by Subscribe and Unsubscribe
// (besides the granted QoS 0x00-0x02).
const (
	ReasonSuccess            byte = 0x00
	ReasonNoSubscription     byte = 0x11
	ReasonUnspecifiedError   byte = 0x80
	ReasonNotAuthorized      byte = 0x87
	ReasonTopicFilterInvalid byte = 0x8F
	ReasonQuotaExceeded      byte = 0x97
)

// Subscribe adds or replaces subscriptions and returns one reason code per
// filter: the granted QoS (0x00-0x02), 0x87 (ACL denies read), 0x8F
// (invalid filter or options), 0x97 (too many subscriptions) or 0x80 (the
// attachment has ended). Matching retained messages are queued per Retain
// Handling (never for shared subscriptions), and the session is held:
// write SUBACK, then call Resume. With a Store, the subscriptions of a
// persistent session are durable when Subscribe returns; if the store
// fails, the granted codes become 0x80 (the subscriptions hold in memory).
func (h *Session) Subscribe(subs []Subscription) []byte {
	s, srv := h.s, h.s.srv
	codes := make([]byte, len(subs))
	defer h.observeSubscribe(subs, codes)
	if h.closed.Load() {
		for i := range codes {
			codes[i] = ReasonUnspecifiedError
		}
		return codes
	}
	type accepted struct {
		i             int
		group, filter string
		isNew         bool
	}
	ok := make([]accepted, 0, len(subs))
	pol := srv.policy.Load()
	for i, sub := range subs {
		group, filter, err := srv.limits.checkFilter(sub.Filter)
		if err != nil || sub.QoS > 2 || sub.RetainHandling > 2 || (group != "" && sub.NoLocal) {
			srv.stats.badTopics.Add(1)
			codes[i] = ReasonTopicFilterInvalid
			continue
		}
		if !pol.canSubscribe(s.id, h.username, filter) {
			srv.stats.aclDenied.Add(1)
			codes[i] = ReasonNotAuthorized
			continue
		}
		codes[i] = sub.QoS
		ok = append(ok, accepted{i: i, group: group, filter: filter})
	}
	srv.tree.mu.Lock()
	s.mu.Lock()
	live := s.cur == h && !s.ended
	if live {
		s.held = true
		s.ready.Store(false)
	}
	s.mu.Unlock()
	if !live {
		srv.tree.mu.Unlock()
		for i := range codes {
			codes[i] = ReasonUnspecifiedError
		}
		return codes
	}
	for k := range ok {
		a := &ok[k]
		sub := subs[a.i]
		if max := srv.cfg.MaxSubscriptionsPerSession; max > 0 && len(s.subs) >= max && s.findSub(sub.Filter) == nil {
			srv.stats.subsRejected.Add(1)
			codes[a.i] = ReasonQuotaExceeded
			a.i = -1
			continue
		}
		a.isNew = srv.tree.insert(&subRecord{sess: s, sub: sub, ids: idsFor(sub.ID)}, a.group, a.filter)
	}
	srv.tree.mu.Unlock()

	var pb *persistBatch
	if srv.store != nil {
		pb = &persistBatch{}
	}
	for _, a := range ok {
		if a.i < 0 || a.group != "" {
			continue
		}
		sub := subs[a.i]
		if sub.RetainHandling == 2 || (sub.RetainHandling == 1 && !a.isNew) {
			continue
		}
		t := target{sess: s, ids: idsFor(sub.ID), qos: sub.QoS, rap: true}
		for _, m := range srv.retained.each(a.filter, srv.clock.Now(), srv.store) {
			s.offer(m, &t, pb, false)
		}
	}
	if pb == nil {
		return codes
	}
	pb.add(srv.saveSession(s))
	if err := pb.finish(srv); err != nil {
		for _, a := range ok {
			if a.i >= 0 && codes[a.i] <= 2 {
				codes[a.i] = ReasonUnspecifiedError
			}
		}
	}
	return codes
}

// Unsubscribe removes subscriptions and returns one reason code per
// filter: 0x00, 0x11 (no such subscription), 0x8F (invalid filter), or
// 0x80 for a removal the Store failed to make durable.
func (h *Session) Unsubscribe(filters []string) []byte {
	s, srv := h.s, h.s.srv
	codes := make([]byte, len(filters))
	defer h.observeUnsubscribe(filters, codes)
	if h.closed.Load() {
		for i := range codes {
			codes[i] = ReasonUnspecifiedError
		}
		return codes
	}
	srv.tree.mu.Lock()
	for i, f := range filters {
		if _, _, err := srv.limits.checkFilter(f); err != nil {
			codes[i] = ReasonTopicFilterInvalid
			continue
		}
		r := s.findSub(f)
		if r == nil {
			codes[i] = ReasonNoSubscription
			continue
		}
		srv.tree.remove(r)
		s.removeSub(r)
	}
	srv.tree.mu.Unlock()
	if err := srv.wait(srv.saveSession(s)); err != nil {
		for i := range codes {
			if codes[i] == ReasonSuccess {
				codes[i] = ReasonUnspecifiedError // removed in memory, not durably
			}
		}
	}
	return codes
}

// checkWill validates a will's topic and QoS and the client's right to
// publish it.
func (srv *Server) checkWill(clientID, username string, w *Will) error {
	if err := srv.limits.checkName(w.Msg.Topic); err != nil {
		return fmt.Errorf("will: %w", err)
	}
	if w.Msg.QoS > 2 {
		return fmt.Errorf("will: %w: QoS %d", ErrBadTopic, w.Msg.QoS)
	}
	if !srv.policy.Load().canPublish(clientID, username, w.Msg.Topic) {
		srv.stats.aclDenied.Add(1)
		return fmt.Errorf("will to %q: %w", w.Msg.Topic, ErrNotAuthorized)
	}
	return nil
}
