package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config configures a Bridge. It is a plain struct: the command line
// fills it from the config file. Zero durations and bounds take the
// defaults listed with each field.
type Config struct {
	// ID names this gateway in the cluster. It is the origin mark of the
	// messages the bridge sends up (MQTT 5 user property "sngate-origin"),
	// the default upstream client ID of the aggregate connection, and the
	// local client ID prefix of the bridge's broker session. It must be
	// unique per gateway. Required.
	ID string

	// URL is the upstream broker: mqtt://host:port or tcp://host:port
	// (default port 1883), mqtts://, ssl:// or tls:// for TLS (default port
	// 8883). Required.
	URL string
	// ProtocolVersion is 0 (MQTT 5, falling back to 3.1.1 when the broker
	// refuses version 5 with "unsupported protocol version"), 5 (MQTT 5
	// only) or 4 (MQTT 3.1.1 only).
	ProtocolVersion int
	// Username and Password are the upstream credentials ("" for none).
	Username string
	Password string
	// TLS configures the upstream TLS connection (used with an mqtts://,
	// ssl:// or tls:// URL).
	TLS TLSConfig
	// KeepAlive is the upstream keep-alive (default 60 s).
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt: dial, TLS handshake,
	// CONNECT/CONNACK (default 10 s).
	ConnectTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between connection
	// attempts; it doubles after each failure, with jitter (defaults 500 ms
	// and 60 s).
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// Aggregate mode: one upstream connection for the whole gateway. It is
	// on when Up or Down has rules.

	// ClientID is the upstream client ID of the aggregate connection
	// (default ID).
	ClientID string
	// SessionExpiry is the upstream session expiry of the aggregate
	// connection: the cluster keeps its subscriptions and queues messages
	// for the Down rules while the link is down (default 1 h; negative: 0,
	// a clean session each time).
	SessionExpiry time.Duration
	// Up are the rules for messages that go from the local broker to the
	// upstream broker; Down those that come from upstream.
	Up   []Rule
	Down []Rule
	// MaxInflight bounds the QoS 1/2 messages sent upstream and not yet
	// acknowledged (default 64, and never above the broker's MaxInflight).
	MaxInflight int
	// DropQoS0WhileDown drops QoS 0 messages for upstream while the link
	// is down instead of queueing them with the QoS 1/2 ones.
	DropQoS0WhileDown bool
	// LocalSessionExpiry is how long the bridge's local session keeps
	// queueing messages for upstream while the link is down (default 24 h;
	// negative: forever). Queued messages are bounded by the broker's
	// MaxQueuedMessages and, with a broker Store, persisted.
	LocalSessionExpiry time.Duration
	// LocalUsername and LocalPassword authenticate the bridge's local
	// session when the broker does not allow anonymous clients.
	LocalUsername string
	LocalPassword string

	// Transparent mode: each MQTT-SN client gets its own upstream session.
	Transparent TransparentConfig

	// Logger receives state changes and drops (nil: discard).
	Logger *slog.Logger
}

// Rule maps topics between the local broker and the upstream broker, as
// Mosquitto's bridge "topic" lines do. Topic is a filter relative to the
// prefixes; the local topic is LocalPrefix+rest and the remote topic
// RemotePrefix+rest. An Up rule subscribes locally to LocalPrefix+Topic
// and publishes upstream; a Down rule subscribes upstream to
// RemotePrefix+Topic and publishes locally. The first matching rule of a
// list wins.
type Rule struct {
	// Topic is the topic filter ("#" for everything under the prefixes).
	Topic string
	// LocalPrefix and RemotePrefix are prepended to Topic on each side;
	// either may be empty. They may not contain wildcards.
	LocalPrefix  string
	RemotePrefix string
	// QoS is the subscription QoS on the source side: the most QoS a
	// message keeps across the bridge.
	QoS byte
}

// TLSConfig configures upstream TLS. Certificates are verified unless
// InsecureSkipVerify is set.
type TLSConfig struct {
	// CAFile is a PEM file of the CAs to trust ("" = the system pool).
	CAFile string
	// CertFile and KeyFile are the client certificate and key (PEM) for
	// brokers that require one.
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the server certificate
	// (default: the URL's host).
	ServerName string
	// InsecureSkipVerify turns certificate verification off. Tests only.
	InsecureSkipVerify bool
}

// TransparentConfig configures transparent mode: every MQTT-SN client of
// the gateway (broker sessions whose listener starts with ListenerPrefix)
// gets its own upstream session under its own client ID, with its
// subscriptions and will, so its session lives in the cluster.
type TransparentConfig struct {
	// Enabled turns transparent mode on.
	Enabled bool
	// ListenerPrefix selects the mirrored sessions by ConnectInfo.Listener
	// (default "sn-": every MQTT-SN link).
	ListenerPrefix string
	// ClientIDPrefix is prepended to the client ID upstream ("" = the
	// same ID, so that the session follows the sensor between gateways).
	ClientIDPrefix string
	// RemotePrefix mounts the local topic space under a prefix upstream:
	// local topic t is RemotePrefix+t upstream ("" = the same topics).
	RemotePrefix string
	// SessionExpiry is the upstream session expiry of persistent MQTT-SN
	// sessions (CleanSession false): how long the cluster keeps the
	// session of a sensor that left (default 24 h). Clean sessions get 0.
	SessionExpiry time.Duration
	// MaxClients bounds the mirrored clients (default 10000); clients
	// beyond it are not mirrored, and counted.
	MaxClients int
	// MaxQueued bounds each client's messages waiting for its upstream
	// link (default 100); beyond it new ones are dropped and counted.
	MaxQueued int
}

// Defaults for zero Config fields.
const (
	DefaultKeepAlive           = 60 * time.Second       // Config.KeepAlive
	DefaultConnectTimeout      = 10 * time.Second       // Config.ConnectTimeout
	DefaultMinBackoff          = 500 * time.Millisecond // Config.MinBackoff
	DefaultMaxBackoff          = 60 * time.Second       // Config.MaxBackoff
	DefaultSessionExpiry       = time.Hour              // Config.SessionExpiry
	DefaultMaxInflight         = 64                     // Config.MaxInflight
	DefaultLocalSessionExpiry  = 24 * time.Hour         // Config.LocalSessionExpiry
	DefaultListenerPrefix      = "sn-"                  // TransparentConfig.ListenerPrefix
	DefaultClientSessionExpiry = 24 * time.Hour         // TransparentConfig.SessionExpiry
	DefaultMaxClients          = 10000                  // TransparentConfig.MaxClients
	DefaultMaxQueued           = 100                    // TransparentConfig.MaxQueued
)

// OriginProperty is the MQTT 5 user property that marks the gateway a
// message entered the cluster from.
const OriginProperty = "sngate-origin"

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.ClientID == "" {
		c.ClientID = c.ID
	}
	if c.SessionExpiry == 0 {
		c.SessionExpiry = DefaultSessionExpiry
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxInflight > 65535 {
		c.MaxInflight = 65535
	}
	if c.LocalSessionExpiry == 0 {
		c.LocalSessionExpiry = DefaultLocalSessionExpiry
	}
	t := &c.Transparent
	if t.ListenerPrefix == "" {
		t.ListenerPrefix = DefaultListenerPrefix
	}
	if t.SessionExpiry <= 0 {
		t.SessionExpiry = DefaultClientSessionExpiry
	}
	if t.MaxClients <= 0 {
		t.MaxClients = DefaultMaxClients
	}
	if t.MaxQueued <= 0 {
		t.MaxQueued = DefaultMaxQueued
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// endpoint is a parsed upstream URL.
type endpoint struct {
	addr string // host:port
	host string
	tls  bool
}

// parseURL parses the upstream URL.
func parseURL(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("url %q: %w", raw, err)
	}
	var e endpoint
	port := "1883"
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
	case "mqtts", "ssl", "tls":
		e.tls, port = true, "8883"
	default:
		return endpoint{}, fmt.Errorf("url %q: scheme must be mqtt, tcp, mqtts, ssl or tls", raw)
	}
	e.host = u.Hostname()
	if e.host == "" {
		return endpoint{}, fmt.Errorf("url %q: no host", raw)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	e.addr = net.JoinHostPort(e.host, port)
	return e, nil
}

// tlsConfig builds the upstream tls.Config, or nil for plain TCP.
func (c *Config) tlsConfig(e endpoint) (*tls.Config, error) {
	if !e.tls {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         e.host,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // opt-in, off by default
	}
	if c.TLS.ServerName != "" {
		tc.ServerName = c.TLS.ServerName
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bridge: TLS CA %s: no PEM certificate", c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
