package broker

import (
	"log/slog"
	"time"
)

// Config holds the broker core's settings and bounds. It is a plain struct
// so that the command line can fill it from a config file. Zero values of
// the per-session bounds (MaxQueuedMessages, MaxInflight, MaxTopicLength,
// MaxTopicLevels) mean "use the default"; zero values of the global bounds
// (MaxSessions, MaxSubscriptionsPerSession, MaxRetainedMessages,
// MaxRetainedBytes, MaxSessionExpiry) mean "unlimited".
type Config struct {
	// Version is reported in $SYS/broker/version.
	Version string

	// MaxSessions bounds the number of sessions, connected or not. Connect
	// returns ErrServerBusy beyond it.
	MaxSessions int
	// MaxQueuedMessages bounds each session's queue of messages waiting
	// for delivery (offline, refused by the sink, or behind a full in-flight
	// window). When full, the oldest queued QoS 0 message is dropped; if
	// there is none, the new message is refused for that session. Both are
	// counted in Stats.DroppedQueueFull.
	MaxQueuedMessages int
	// MaxInflight is the QoS 1/2 in-flight window used when
	// ConnectInfo.ReceiveMaximum is 0, and the upper bound of any window.
	MaxInflight uint16
	// QueueQoS0 queues QoS 0 messages for offline sessions and for sinks
	// that refuse them, for every session (ConnectInfo.QueueQoS0 turns it
	// on for one session). Otherwise such QoS 0 messages are dropped and
	// counted in Stats.DroppedQoS0.
	QueueQoS0 bool
	// MaxSubscriptionsPerSession bounds each session's subscriptions;
	// Subscribe answers 0x97 (quota exceeded) beyond it.
	MaxSubscriptionsPerSession int
	// MaxSessionExpiry caps the Session Expiry Interval clients ask for.
	MaxSessionExpiry time.Duration

	// MaxTopicLength bounds topic names and filters in bytes (default and
	// maximum 65535).
	MaxTopicLength int
	// MaxTopicLevels bounds the number of levels of topic names and
	// filters (default 128).
	MaxTopicLevels int

	// MaxRetainedMessages bounds the number of retained messages, and
	// MaxRetainedBytes the sum of their payload sizes. A retained publish
	// to a new topic beyond either bound fails with ErrQuotaExceeded.
	MaxRetainedMessages int
	MaxRetainedBytes    int64 // see MaxRetainedMessages

	// SysInterval is the period of the $SYS/broker/... publications; 0
	// disables them.
	SysInterval time.Duration

	// AllowAnonymous lets clients connect without a user name.
	AllowAnonymous bool
	// PasswordFile is the path of a "user:bcrypt-hash" password file ("" =
	// no users: only anonymous clients, if allowed).
	PasswordFile string
	// ACLFile is the path of an ACL file (see package auth); "" allows
	// every authenticated client to publish and subscribe to anything.
	ACLFile string
	// CertAsUsername uses ConnectInfo.CertSubject, when set, as the user
	// name of the client and accepts it without password.
	CertAsUsername bool
}

// Defaults used when a Config field is zero.
const (
	DefaultMaxQueuedMessages = 1000
	DefaultMaxInflight       = 64
	DefaultMaxTopicLength    = 65535
	DefaultMaxTopicLevels    = 128
)

// DefaultConfig returns the configuration of an out-of-the-box sngate:
// anonymous access allowed, bounded sessions, queues and retained store,
// and $SYS every 10 seconds.
func DefaultConfig() Config {
	return Config{
		Version:                    "sngate",
		MaxSessions:                250000,
		MaxQueuedMessages:          DefaultMaxQueuedMessages,
		MaxInflight:                DefaultMaxInflight,
		MaxSubscriptionsPerSession: 1000,
		MaxTopicLength:             DefaultMaxTopicLength,
		MaxTopicLevels:             DefaultMaxTopicLevels,
		MaxRetainedMessages:        100000,
		MaxRetainedBytes:           256 << 20,
		SysInterval:                10 * time.Second,
		AllowAnonymous:             true,
	}
}

// withDefaults fills zero per-session bounds with their defaults.
func (c Config) withDefaults() Config {
	if c.MaxQueuedMessages <= 0 {
		c.MaxQueuedMessages = DefaultMaxQueuedMessages
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxTopicLength <= 0 || c.MaxTopicLength > 65535 {
		c.MaxTopicLength = DefaultMaxTopicLength
	}
	if c.MaxTopicLevels <= 0 {
		c.MaxTopicLevels = DefaultMaxTopicLevels
	}
	return c
}

// Option configures a Server beyond its plain Config.
type Option func(*options)

type options struct {
	logger *slog.Logger
	clock  Clock
	store  Store
}

// WithLogger sets the logger; nil (the default) discards logs.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces the wall clock, for tests of expiry and will delay.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithStore makes the server persist its state in s (see Store); without
// it, state lives in memory only.
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// Clock is the time source of the broker: message expiry, session expiry,
// will delay and $SYS all use it. The default is the system clock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, unless stopped.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending Clock.AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not happened yet; it reports
	// whether it did.
	Stop() bool
}

// systemClock is the wall clock.
type systemClock struct{}

// Now returns time.Now().
func (systemClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (systemClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}
