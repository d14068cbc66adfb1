package broker

import (
	"sync/atomic"
	"time"
)

// counters are the server's statistics, updated atomically. The two hot
// counters sit on their own cache lines.
type counters struct {
	received atomic.Uint64
	_        [56]byte
	sent     atomic.Uint64
	_        [56]byte

	receivedBytes    atomic.Uint64
	connected        atomic.Int64
	sessions         atomic.Int64
	queued           atomic.Int64
	inflight         atomic.Int64
	droppedQueueFull atomic.Uint64
	refusedQueueFull atomic.Uint64
	droppedQoS0      atomic.Uint64
	droppedExpired   atomic.Uint64
	sessionsRejected atomic.Uint64
	subsRejected     atomic.Uint64
	retainedRejected atomic.Uint64
	authFailures     atomic.Uint64
	aclDenied        atomic.Uint64
	badTopics        atomic.Uint64
	takeovers        atomic.Uint64
	expired          atomic.Uint64
	wills            atomic.Uint64
	storeErrors      atomic.Uint64
}

// Stats are the server's counters (monotonic, since New) and gauges
// (current values), for metrics and $SYS.
type Stats struct {
	Uptime time.Duration // since New

	// Gauges.
	SessionsConnected   int64 // attached sessions
	Sessions            int64 // all sessions, connected or not
	Subscriptions       int64 // including shared ones
	SharedSubscriptions int64 // $share subscriptions
	Retained            int64 // retained messages
	Queued              int64 // messages in session queues
	Inflight            int64 // outbound QoS 1/2 messages awaiting acknowledgement

	// Counters.
	MessagesReceived uint64 // messages published (by clients, wills, internal)
	BytesReceived    uint64 // payload bytes of those
	MessagesSent     uint64 // deliveries accepted by sinks, resends included
	DroppedQueueFull uint64 // messages dropped or refused by a full session queue
	// PublishesRefusedQueueFull counts QoS 1/2 publishes (and DeliverTo
	// calls) refused with ErrSubscriberQueueFull, unacknowledged: the
	// publisher sends them again.
	PublishesRefusedQueueFull uint64
	DroppedQoS0               uint64 // QoS 0 messages dropped: client offline or sink refused, QoS 0 not queued
	DroppedExpired            uint64 // queued messages dropped because their expiry passed
	SessionsRejected          uint64 // Connect refused with ErrServerBusy (MaxSessions)
	SubscriptionsRejected     uint64 // subscriptions refused by MaxSubscriptionsPerSession
	RetainedRejected          uint64 // retained publishes refused by the retained bounds
	AuthFailures              uint64 // Connect refused for credentials
	ACLDenied                 uint64 // publishes, wills and subscriptions refused by the ACL
	BadTopics                 uint64 // invalid topic names and filters
	SessionsTakenOver         uint64 // attachments closed by a new Connect with the same client ID
	SessionsExpired           uint64 // offline sessions ended by their expiry interval
	WillsPublished            uint64 // wills published (on connection loss, delay or session end)
	StoreErrors               uint64 // failed Store.Apply calls
}

// Stats returns a snapshot of the server's statistics.
func (srv *Server) Stats() Stats {
	c := &srv.stats
	return Stats{
		Uptime:                    srv.clock.Now().Sub(srv.start),
		SessionsConnected:         c.connected.Load(),
		Sessions:                  c.sessions.Load(),
		Subscriptions:             srv.tree.count.Load(),
		SharedSubscriptions:       srv.tree.shared.Load(),
		Retained:                  srv.retained.count.Load(),
		Queued:                    c.queued.Load(),
		Inflight:                  c.inflight.Load(),
		MessagesReceived:          c.received.Load(),
		BytesReceived:             c.receivedBytes.Load(),
		MessagesSent:              c.sent.Load(),
		DroppedQueueFull:          c.droppedQueueFull.Load(),
		PublishesRefusedQueueFull: c.refusedQueueFull.Load(),
		DroppedQoS0:               c.droppedQoS0.Load(),
		DroppedExpired:            c.droppedExpired.Load(),
		SessionsRejected:          c.sessionsRejected.Load(),
		SubscriptionsRejected:     c.subsRejected.Load(),
		RetainedRejected:          c.retainedRejected.Load(),
		AuthFailures:              c.authFailures.Load(),
		ACLDenied:                 c.aclDenied.Load(),
		BadTopics:                 c.badTopics.Load(),
		SessionsTakenOver:         c.takeovers.Load(),
		SessionsExpired:           c.expired.Load(),
		WillsPublished:            c.wills.Load(),
		StoreErrors:               c.storeErrors.Load(),
	}
}
