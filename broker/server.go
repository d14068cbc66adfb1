package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Server is the broker core. It is safe for concurrent use.
//
// Lock order (a goroutine holding one may take those after it, never those
// before): Server.mu, tree.mu, session.mu, retained.mu, scheduler.mu,
// Server.sysMu. Sink methods and Commit.Wait are always called with no
// lock held; Store.Stage is called with locks held (it never blocks). Timer callbacks run on the clock's goroutine with no lock
// held.
type Server struct {
	cfg    Config
	limits topicLimits
	log    *slog.Logger
	clock  Clock
	store  Store
	start  time.Time

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
	nextSeq  uint64
	shut     atomic.Bool // closed, readable without mu

	tree     tree
	retained retainedStore
	sched    scheduler
	policy   atomic.Pointer[policy]
	observer atomic.Pointer[observerHook] // see observer.go
	lanes    [asyncLanes]asyncLane        // PublishAsync completions (async.go)
	stats    counters

	sysMu      sync.Mutex
	sysGauges  []sysGauge
	sysTimer   *timerEntry
	dropLogAt  atomic.Int64 // unix nanos of the last queue-drop log line
	storeLogAt atomic.Int64 // unix nanos of the last store-failure log line
}

// New creates a server. It loads the password and ACL files named in cfg
// and, with WithStore, restores the stored state.
func New(cfg Config, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.withDefaults()
	srv := &Server{
		cfg:      cfg,
		limits:   topicLimits{maxLen: cfg.MaxTopicLength, maxLevels: cfg.MaxTopicLevels},
		log:      o.logger,
		clock:    o.clock,
		store:    o.store,
		sessions: make(map[string]*session),
	}
	if srv.log == nil {
		srv.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if srv.clock == nil {
		srv.clock = systemClock{}
	}
	srv.start = srv.clock.Now()
	srv.sched.clock = srv.clock
	p, err := loadPolicy(cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	srv.policy.Store(p)
	if srv.store != nil {
		snap, err := srv.store.Load()
		if err != nil {
			return nil, fmt.Errorf("broker: load store: %w", err)
		}
		srv.restore(snap)
	}
	srv.startSys()
	return srv, nil
}

// NewClientID returns a random client identifier, for front ends that
// must assign one (MQTT 5 empty client ID).
func NewClientID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "sngate-" + hex.EncodeToString(b[:])
}

func checkClientID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty (assign one with NewClientID)", ErrBadClientID)
	case len(id) > 65535:
		return fmt.Errorf("%w: %d bytes", ErrBadClientID, len(id))
	case strings.IndexByte(id, 0) >= 0 || !utf8.ValidString(id):
		return fmt.Errorf("%w: not valid UTF-8", ErrBadClientID)
	}
	return nil
}

func (srv *Server) capExpiry(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if m := srv.cfg.MaxSessionExpiry; m > 0 && d > m {
		return m
	}
	return d
}

// Connect authenticates a client and attaches its session to sink. It
// returns the session and whether an existing session was resumed
// (CONNACK Session Present).
//
// Errors: ErrBadClientID, ErrBadCredentials, ErrNotAuthorized (the will is
// not allowed), ErrBadTopic (invalid will), ErrServerBusy (MaxSessions
// reached), ErrServerShutdown; wrapped, test with errors.Is.
//
// If a session with the same client ID exists, its current attachment (if
// any) is closed: its sink gets Closed(ErrSessionTaken). With
// info.CleanStart, or if the old session had expiry 0, the old session
// ends: its subscriptions, queue and in-flight messages are discarded and
// its will (pending or of the closed attachment) is published whatever its
// delay, since the session ended. Otherwise the session is resumed
// (session present): subscriptions and queued messages carry over,
// in-flight messages are resent with Dup (or as PUBREL, see
// Delivery.Release), and the old will is published only if it had no
// delay (a delayed will is cancelled: the client is back).
//
// The returned session is held: nothing is delivered until the front end
// has written CONNACK and calls Session.Resume.
func (srv *Server) Connect(info ConnectInfo, sink Sink) (*Session, bool, error) {
	if sink == nil {
		return nil, false, errors.New("broker: Connect: nil sink")
	}
	if err := checkClientID(info.ClientID); err != nil {
		return nil, false, err
	}
	username, err := srv.policy.Load().authenticate(info)
	if err != nil {
		srv.stats.authFailures.Add(1)
		srv.log.Info("connect refused", "client", info.ClientID, "user", info.Username, "remote", info.RemoteAddr, "err", err)
		return nil, false, err
	}
	var will *Will
	if info.Will != nil {
		if err := srv.checkWill(info.ClientID, username, info.Will); err != nil {
			return nil, false, err
		}
		will = cloneWill(info.Will)
	}
	window := srv.cfg.MaxInflight
	if info.ReceiveMaximum > 0 && info.ReceiveMaximum < window {
		window = info.ReceiveMaximum
	}
	h := &Session{sink: sink, username: username}
	expiry := srv.capExpiry(info.SessionExpiry)

	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return nil, false, ErrServerShutdown
	}
	old := srv.sessions[info.ClientID]
	var (
		oldH     *Session
		oldWill  *Will
		oldUser  string
		discard  *session
		present  bool
		s        *session
		timers   []*timerEntry
		wasTaken bool
	)
	if old != nil {
		old.mu.Lock()
		oldH, oldUser = old.cur, old.username
		// The old session ends if the client asks for a clean start, or
		// if it was to end with its connection (expiry 0).
		ends := info.CleanStart || old.expiry == 0
		if oldH != nil {
			oldH.closed.Store(true)
			if old.will != nil && (old.will.Delay == 0 || ends) {
				oldWill = old.will
			}
			srv.stats.connected.Add(-1)
			wasTaken = true
		}
		old.will = nil
		if o := old.takeOffLocked(); o != nil {
			timers = append(timers, o.willTimer, o.expiryTimer)
			if ends && o.pendingWill != nil {
				oldWill = o.pendingWill
			}
		}
		if ends {
			old.ended = true
			old.cur = nil
			old.ready.Store(false)
			discard = old
		} else {
			s = old
			present = true
		}
		old.mu.Unlock()
	} else if max := srv.cfg.MaxSessions; max > 0 && len(srv.sessions) >= max {
		srv.mu.Unlock()
		srv.stats.sessionsRejected.Add(1)
		srv.log.Warn("connect refused: too many sessions", "client", info.ClientID, "max", max)
		return nil, false, fmt.Errorf("%w: %d sessions", ErrServerBusy, max)
	}
	if s == nil {
		srv.nextSeq++
		s = &session{srv: srv, id: info.ClientID, seq: srv.nextSeq}
		srv.sessions[info.ClientID] = s
		if old == nil {
			srv.stats.sessions.Add(1)
		}
	}
	h.s = s
	s.mu.Lock()
	s.cur = h
	s.held, s.refused = true, false
	s.ready.Store(false)
	s.window = window
	s.queueQoS0 = info.QueueQoS0 || srv.cfg.QueueQoS0
	s.username = username
	s.expiry = expiry
	s.will = will
	for i := range s.inflight {
		if f := &s.inflight[i]; !f.resend {
			f.resend = true
			s.resendN++
		}
	}
	s.mu.Unlock()
	srv.mu.Unlock()
	srv.stats.connected.Add(1)

	for _, t := range timers {
		if t != nil {
			srv.sched.cancel(t)
		}
	}
	if wasTaken {
		srv.stats.takeovers.Add(1)
		srv.log.Info("session taken over", "client", info.ClientID, "remote", info.RemoteAddr)
		oldH.sink.Closed(ErrSessionTaken)
	}
	if oldWill != nil {
		srv.publishWill(info.ClientID, oldUser, oldWill)
	}
	var pb persistBatch
	if discard != nil {
		pb.add(srv.cleanup(discard, false))
	}
	pb.add(srv.saveSession(s))
	_ = pb.finish(srv) // a failure is counted and logged; the client is attached
	srv.log.Debug("connected", "client", info.ClientID, "user", username, "listener", info.Listener,
		"remote", info.RemoteAddr, "present", present)
	srv.observe(h, &info, present)
	return h, present, nil
}

// detach ends attachment h (h.closed is already set).
func (srv *Server) detach(h *Session, sendWill bool) {
	s := h.s
	s.mu.Lock()
	if s.cur != h {
		s.mu.Unlock()
		return
	}
	s.cur = nil
	s.held, s.refused = false, false
	s.ready.Store(false)
	srv.stats.connected.Add(-1)
	will := s.will
	s.will = nil
	if !sendWill {
		will = nil
	}
	if s.expiry == 0 {
		if will != nil {
			s.offLocked().pendingWill = will
		}
		s.mu.Unlock()
		srv.endOffline(s, nil)
		return
	}
	now := srv.clock.Now()
	off := s.offLocked()
	off.disconnectedAt = now
	var fireNow *Will
	if will != nil {
		switch {
		case will.Delay <= 0:
			fireNow = will
		case will.Delay < s.expiry:
			off.pendingWill = will
			off.willTimer = srv.sched.add(now.Add(will.Delay), func(e *timerEntry) { srv.willDue(s, e) })
		default:
			off.pendingWill = will // published when the session ends
		}
	}
	if s.expiry != NoExpiry {
		off.expiryTimer = srv.sched.add(now.Add(s.expiry), func(e *timerEntry) { srv.expire(s, e) })
	}
	username := s.username
	s.mu.Unlock()
	if fireNow != nil {
		srv.publishWill(s.id, username, fireNow)
	}
	srv.saveSession(s) // not waited for: a restart counts the expiry from then
}

// expire ends an offline session whose expiry timer e fired.
func (srv *Server) expire(s *session, e *timerEntry) {
	if srv.endOffline(s, func() bool { return s.off != nil && s.off.expiryTimer == e }) {
		srv.stats.expired.Add(1)
		srv.log.Debug("session expired", "client", s.id)
	}
}

// endOffline ends s, publishing its pending will, if it is still in the
// sessions map, offline, and check (called under s.mu; nil for none)
// holds. It reports whether it ended it.
func (srv *Server) endOffline(s *session, check func() bool) bool {
	srv.mu.Lock()
	s.mu.Lock()
	ok := srv.sessions[s.id] == s && s.cur == nil && !s.ended && (check == nil || check())
	s.mu.Unlock()
	if ok {
		delete(srv.sessions, s.id)
		srv.stats.sessions.Add(-1)
	}
	srv.mu.Unlock()
	if ok {
		srv.cleanup(s, true)
	}
	return ok
}

// cleanup discards the state of a session already out of the sessions
// map: subscriptions, queue, in-flight messages, timers; it publishes the
// pending will if fireWill. It returns the commit of the stored session's
// deletion, nil if nothing was staged.
func (srv *Server) cleanup(s *session, fireWill bool) Commit {
	srv.tree.mu.Lock()
	s.mu.Lock()
	s.ended = true
	s.ready.Store(false)
	var (
		will     *Will
		timers   [2]*timerEntry
		username = s.username
	)
	if o := s.takeOffLocked(); o != nil {
		will, timers = o.pendingWill, [2]*timerEntry{o.willTimer, o.expiryTimer}
	}
	srv.stats.queued.Add(-int64(s.queue.len()))
	srv.stats.inflight.Add(-int64(len(s.inflight)))
	s.queue = ring{}
	s.full.Store(false)
	s.inflight, s.resendN = nil, 0
	var del Commit
	if s.ps != nil && (s.ps.persisted || s.ps.msgSeq > 0) {
		del = s.stageLocked(Change{Kind: DeleteSession, ClientID: s.id})
		s.ps.persisted = false
	}
	s.mu.Unlock()
	for _, r := range s.subs {
		srv.tree.remove(r)
	}
	s.subs, s.subMap = nil, nil
	srv.tree.mu.Unlock()
	for _, t := range timers {
		if t != nil {
			srv.sched.cancel(t)
		}
	}
	if fireWill && will != nil {
		srv.publishWill(s.id, username, will)
	}
	return del
}

// PublishAnonymous publishes m without a session: MQTT-SN QoS -1
// publishes and internal ones. It returns ErrServerShutdown after Close. identity is checked against the ACL as a
// client ID with no user name; "" marks an internal publish, which is not
// checked and may publish to $SYS. The broker owns m afterwards.
func (srv *Server) PublishAnonymous(m *Message, identity string) error {
	if m == nil {
		return fmt.Errorf("publish: %w: nil message", ErrBadTopic)
	}
	if srv.shut.Load() {
		return ErrServerShutdown
	}
	m.From = identity
	return srv.publish(m, identity, "", identity != "", true)
}

// publish validates and routes m and waits for the store. quota says
// whether a QoS 1/2 message is refused when a subscriber's queue is full
// (see stageRoute).
func (srv *Server) publish(m *Message, clientID, username string, client, quota bool) error {
	pb, err := srv.stagePublish(m, clientID, username, client, quota)
	if err != nil || pb == nil {
		return err
	}
	return pb.finish(srv)
}

// stagePublish validates and routes m, returning the store batch to
// finish (nil without a store).
func (srv *Server) stagePublish(m *Message, clientID, username string, client, quota bool) (*persistBatch, error) {
	if err := srv.limits.checkName(m.Topic); err != nil {
		srv.stats.badTopics.Add(1)
		return nil, fmt.Errorf("publish: %w", err)
	}
	if m.QoS > 2 {
		return nil, fmt.Errorf("publish: %w: QoS %d", ErrBadTopic, m.QoS)
	}
	if client {
		if strings.HasPrefix(m.Topic, "$SYS") || !srv.policy.Load().canPublish(clientID, username, m.Topic) {
			srv.stats.aclDenied.Add(1)
			return nil, fmt.Errorf("publish to %q: %w", m.Topic, ErrNotAuthorized)
		}
	}
	return srv.stageRoute(m, true, quota)
}

// route updates the retained store and delivers m to the matching
// sessions, without the queue check. count says whether m counts in
// Stats.MessagesReceived.
func (srv *Server) route(m *Message, count bool) error {
	pb, err := srv.stageRoute(m, count, false)
	if err != nil || pb == nil {
		return err
	}
	return pb.finish(srv)
}

// stageRoute updates the retained store and offers m to the matching
// sessions; it returns the store batch to finish (nil without a store).
// With quota, a QoS 1/2 message that a matching session would get at QoS
// 1/2 is refused with ErrSubscriberQueueFull, before any change, when
// that session's queue is full (async.go); once past the check, it is
// queued even above the bound rather than dropped.
func (srv *Server) stageRoute(m *Message, count, quota bool) (*persistBatch, error) {
	quota = quota && m.QoS > 0
	if quota && m.Retain {
		// The retained store is updated before matching (so that a
		// concurrent Subscribe cannot miss m): check first, on a match
		// of its own.
		if err := srv.checkQueues(m, nil); err != nil {
			return nil, err
		}
	}
	var pb *persistBatch
	if srv.store != nil {
		pb = &persistBatch{}
	}
	if m.Retain {
		if err := srv.retained.set(m, srv.cfg, &srv.stats, srv.store, pb); err != nil {
			return nil, err
		}
	}
	sc := scratchPool.Get().(*matchScratch)
	srv.tree.match(m.Topic, m.From, sc)
	if quota && !m.Retain {
		if err := srv.checkQueues(m, sc); err != nil {
			sc.release()
			return nil, err
		}
	}
	if count {
		srv.stats.received.Add(1)
		srv.stats.receivedBytes.Add(uint64(len(m.Payload)))
	}
	for i := range sc.targets {
		sc.targets[i].sess.offer(m, &sc.targets[i], pb, quota)
	}
	sc.release()
	return pb, nil
}

// dropLog logs queue drops, at most once a second.
func (srv *Server) dropLog(clientID, what string) {
	now := time.Now().UnixNano()
	last := srv.dropLogAt.Load()
	if now-last < int64(time.Second) || !srv.dropLogAt.CompareAndSwap(last, now) {
		return
	}
	srv.log.Warn(what, "client", clientID, "dropped_total", srv.stats.droppedQueueFull.Load())
}

// Close ends every session attachment (sinks get
// Closed(ErrServerShutdown)), discards the sessions without publishing
// wills, and stops the server's timers. Connect fails afterwards.
func (srv *Server) Close() error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return nil
	}
	srv.closed = true
	srv.shut.Store(true)
	all := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	clear(srv.sessions)
	srv.stats.sessions.Store(0)
	srv.mu.Unlock()
	srv.sched.close()
	for _, s := range all {
		s.mu.Lock()
		h := s.cur
		s.cur = nil
		if h != nil {
			h.closed.Store(true)
			srv.stats.connected.Add(-1)
		}
		s.mu.Unlock()
		if h != nil {
			h.sink.Closed(ErrServerShutdown)
		}
		if srv.store == nil {
			srv.cleanup(s, false)
		}
	}
	return nil
}
