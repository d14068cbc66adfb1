package client

import (
	"time"

	"github.com/sngate/sngate/sn"
)

// Default timer and counter values (MQTT-SN 1.2 T_RETRY, N_RETRY and a
// common keep-alive).
const (
	DefaultKeepAlive     = 60 * time.Second // DefaultKeepAlive is the CONNECT keep-alive when Options.KeepAlive is zero.
	DefaultRetryInterval = 10 * time.Second // DefaultRetryInterval is T_RETRY when Options.RetryInterval is zero.
	DefaultMaxRetries    = 3                // DefaultMaxRetries is N_RETRY when Options.MaxRetries is zero.
	DefaultMaxPending    = 1024             // DefaultMaxPending is Options.MaxPending when it is zero.
)

// Options configures a Client. The zero value of every field selects a
// default.
type Options struct {
	// ClientID identifies the client to the gateway (CONNECT, and
	// PINGREQ when waking). Required.
	ClientID string
	// KeepAlive is the keep-alive period sent in CONNECT, in whole seconds
	// (at most 65535 s). Zero means DefaultKeepAlive; negative sends 0,
	// which disables supervision at the gateway.
	KeepAlive time.Duration
	// PingInterval is how long the client may stay silent while active
	// before it sends a PINGREQ on its own. Zero means three quarters of
	// KeepAlive; negative disables automatic pings.
	PingInterval time.Duration
	// CleanSession is CONNECT's CleanSession flag. A clean connect also
	// forgets the client's topic registrations.
	CleanSession bool
	// Will, when set, is offered to the gateway during Connect (the
	// WILLTOPICREQ/WILLMSGREQ dialogue).
	Will *Will
	// RetryInterval is T_RETRY: how long to wait for a reply before
	// retransmitting a request. Zero means DefaultRetryInterval.
	RetryInterval time.Duration
	// MaxRetries is N_RETRY: retransmissions before a request fails with
	// ErrNoResponse. Zero means DefaultMaxRetries; negative means none.
	MaxRetries int
	// PredefinedTopics maps topic names to the pre-defined topic IDs
	// configured at the gateway. It lets Publish and Subscribe accept a
	// pre-defined topic by name and lets incoming messages carry the name.
	PredefinedTopics map[string]uint16
	// OnPublish receives every PUBLISH from the gateway, in arrival order,
	// on a goroutine of its own; it may call the Client's methods. The
	// client acknowledges a message when it has queued it for OnPublish.
	// When nil, incoming messages are acknowledged and dropped.
	OnPublish func(Message)
	// MaxPending bounds the incoming messages waiting for OnPublish (not
	// counting the one it is handling). When the queue is full, a QoS 0
	// message is dropped, and a QoS 1 or 2 message is neither queued nor
	// acknowledged (no PUBACK, no PUBREC), so the gateway retransmits it
	// later; Stats counts both. Zero or negative means DefaultMaxPending.
	MaxPending int
	// MaxPacketSize bounds the datagrams the client reads. Zero means
	// sn.MaxLength.
	MaxPacketSize int
}

// Will is a client's will: the message the gateway publishes for it when
// it is lost.
type Will struct {
	Topic   string // Topic is the will topic; it must not be empty.
	Message []byte // Message is the will payload.
	QoS     sn.QoS // QoS is the will's QoS (0..2).
	Retain  bool   // Retain asks the broker to retain the will.
}

// withDefaults returns o with defaults filled in.
func (o Options) withDefaults() Options {
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.KeepAlive < 0 {
		o.KeepAlive = 0
	}
	if o.PingInterval == 0 {
		o.PingInterval = o.KeepAlive * 3 / 4
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxPacketSize <= 0 {
		o.MaxPacketSize = sn.MaxLength
	}
	return o
}

// keepAliveSeconds is the CONNECT Duration field for o.KeepAlive.
func (o Options) keepAliveSeconds() uint16 {
	return durationSeconds(o.KeepAlive)
}

// durationSeconds rounds d up to whole seconds, capped to 16 bits.
func durationSeconds(d time.Duration) uint16 {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > 0xFFFF {
		return 0xFFFF
	}
	return uint16(s)
}
