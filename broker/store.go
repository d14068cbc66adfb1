package broker

import "time"

// Store persists the broker core's state (sessions, their subscriptions,
// queued and in-flight messages, and retained messages). The server calls
// it at well-defined points; without a store (the default) the state lives
// in memory only and every Store call is skipped.
//
// Writes are two-phase. The server stages each change with Stage as it
// makes it, under the lock that orders it (the session's, or the retained
// store's), so the store sees a session's changes in the order they
// happened, whatever the goroutines. It then waits for durability, with no
// lock held, only where something is acknowledged: before Session.Publish
// returns for QoS 1/2 messages to persistent sessions and for retained
// messages (so the front end acknowledges only durable messages), before
// Subscribe, Unsubscribe, SetWill, SetFrontendState and Connect return.
// Acks, PUBREC, disconnections, expiries and wills are staged without
// waiting: losing them in a crash only causes a redelivery (with Dup) or
// a later expiry.
//
// Implementations are expected to group-commit: gather the batches staged
// while the previous commit runs and make them durable together.
type Store interface {
	// Load returns the state saved by an earlier run; New restores it.
	Load() (Snapshot, error)
	// Stage queues batch for the next commit and returns that commit. It
	// must not block on I/O and must not call back into the server: the
	// server calls it with its locks held, from many goroutines at once.
	// It copies batch (the caller reuses it); the Messages and records the
	// changes point to are immutable afterwards and may be kept.
	//
	// Batches are committed in the order of the Stage calls, each one
	// whole or not at all, so that when a Wait returns nil every batch
	// staged before it is durable too. After a failed commit the store
	// must fail every later Wait as well (its content no longer matches
	// the server's state).
	Stage(batch []Change) Commit
}

// Commit is a store commit that staged changes wait for.
type Commit interface {
	// Wait blocks until the commit is durable (fsynced) and returns nil,
	// or returns why it is not.
	Wait() error
}

// Snapshot is the persisted state of a broker.
type Snapshot struct {
	Sessions []SessionRecord // persistent sessions, with their messages
	Retained []*Message      // retained messages (Retain set)
}

// SessionRecord is the persisted form of a persistent session (one with a
// non-zero session expiry).
type SessionRecord struct {
	ClientID string
	// Username is the user name the session last authenticated with.
	Username string
	// Expiry is the session expiry interval; DisconnectedAt is when the
	// client left (zero while it is connected: a restart then counts the
	// expiry from the restart).
	Expiry         time.Duration
	DisconnectedAt time.Time
	// QueueQoS0 says whether QoS 0 messages are queued for the session.
	QueueQoS0 bool
	// Subscriptions are the session's subscriptions, shared ones included
	// (Filter keeps its $share prefix).
	Subscriptions []Subscription
	// Will is the pending will (nil for none).
	Will *Will
	// FrontendState is the opaque front-end state of the session (see
	// Session.SetFrontendState), nil for none.
	FrontendState []byte
	// Messages are the session's queued and in-flight messages in
	// delivery order (only in a Snapshot; Changes carry them one by one).
	Messages []StoredMessage
}

// StoredMessage is one message queued or in flight for a session.
type StoredMessage struct {
	// Seq orders a session's messages and names them in Changes.
	Seq uint64
	// Msg is the message (shared between sessions: stores may dedupe by
	// pointer within a batch). QoS, Retain and SubIDs are those of this
	// delivery.
	Msg    *Message
	QoS    QoS
	Retain bool
	SubIDs []uint32
	// PacketID is non-zero once the message is in flight; Sent says it
	// was offered to the client at least once (redeliver with Dup), and
	// Released that PUBREC was received (only PUBREL is resent).
	PacketID uint16
	Sent     bool
	Released bool
}

// ChangeKind says what a Change does.
type ChangeKind uint8

// The kinds of Change.
const (
	// PutSession creates or replaces a session record (Change.Session);
	// its Messages are not used.
	PutSession ChangeKind = iota + 1
	// DeleteSession removes a session (Change.ClientID) and its messages.
	DeleteSession
	// PutRetained sets the retained message Change.Message.Msg.
	PutRetained
	// DeleteRetained removes the retained message of Change.Topic.
	DeleteRetained
	// PutMessage adds or updates a message of session Change.ClientID
	// (Change.Message, keyed by its Seq).
	PutMessage
	// DeleteMessage removes message Change.Message.Seq of session
	// Change.ClientID.
	DeleteMessage
)

// Change is one state change in a Store batch.
// Which fields are set depends on Kind (see ChangeKind).
type Change struct {
	Kind     ChangeKind
	ClientID string         // the session, for session and message changes
	Topic    string         // the topic, for retained changes
	Session  *SessionRecord // for PutSession
	Message  StoredMessage  // for PutMessage, DeleteMessage and PutRetained
}
