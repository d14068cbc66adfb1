package main

// The bridge section: its schema, validation and mapping onto
// bridge.Config.

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sngate/sngate/broker/bridge"
)

// BridgeConfig configures the bridge to an upstream MQTT broker or
// cluster. The bridge is off while URL is empty. Zero durations and
// bounds take the bridge package's defaults.
type BridgeConfig struct {
	// ID names this gateway in the cluster: the upstream client ID (unless
	// ClientID is set), the origin mark of messages sent up, and the local
	// session "sngate-bridge-<ID>". Unique per gateway.
	ID string `mapstructure:"id" yaml:"id"`
	// URL is mqtt://host:port or tcp:// (port 1883 by default), mqtts://,
	// ssl:// or tls:// (8883).
	URL string `mapstructure:"url" yaml:"url"`
	// ClientID is the upstream client ID of the aggregate connection
	// ("" = ID).
	ClientID string `mapstructure:"client_id" yaml:"client_id,omitempty"`
	// ProtocolVersion: 0 (MQTT 5, falling back to 3.1.1), 5 or 4.
	ProtocolVersion int          `mapstructure:"protocol_version" yaml:"protocol_version"`
	Username        string       `mapstructure:"username" yaml:"username,omitempty"`
	Password        string       `mapstructure:"password" yaml:"password,omitempty"`
	TLS             BridgeTLS    `mapstructure:"tls" yaml:"tls,omitempty"`
	KeepAlive       Duration     `mapstructure:"keepalive" yaml:"keepalive,omitempty"`
	ConnectTimeout  Duration     `mapstructure:"connect_timeout" yaml:"connect_timeout,omitempty"`
	MinBackoff      Duration     `mapstructure:"min_backoff" yaml:"min_backoff,omitempty"`
	MaxBackoff      Duration     `mapstructure:"max_backoff" yaml:"max_backoff,omitempty"`
	SessionExpiry   Duration     `mapstructure:"session_expiry" yaml:"session_expiry,omitempty"`
	MaxInflight     int          `mapstructure:"max_inflight" yaml:"max_inflight,omitempty"`
	Up              []BridgeRule `mapstructure:"up" yaml:"up"`
	Down            []BridgeRule `mapstructure:"down" yaml:"down"`
	// DropQoS0WhileDown drops QoS 0 messages for upstream while the link
	// is down instead of queueing them.
	DropQoS0WhileDown  bool     `mapstructure:"drop_qos0_while_down" yaml:"drop_qos0_while_down,omitempty"`
	LocalSessionExpiry Duration `mapstructure:"local_session_expiry" yaml:"local_session_expiry,omitempty"`
	// LocalUsername and LocalPassword log the bridge's local session in
	// when mqtt.allow_anonymous is off.
	LocalUsername string            `mapstructure:"local_username" yaml:"local_username,omitempty"`
	LocalPassword string            `mapstructure:"local_password" yaml:"local_password,omitempty"`
	Transparent   BridgeTransparent `mapstructure:"transparent" yaml:"transparent,omitempty"`
}

// BridgeTLS configures the upstream TLS connection (mqtts:// URLs).
type BridgeTLS struct {
	CAFile             string `mapstructure:"ca_file" yaml:"ca_file,omitempty"`
	CertFile           string `mapstructure:"cert_file" yaml:"cert_file,omitempty"`
	KeyFile            string `mapstructure:"key_file" yaml:"key_file,omitempty"`
	ServerName         string `mapstructure:"server_name" yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify" yaml:"insecure_skip_verify,omitempty"`
}

// BridgeRule maps topics between the local broker and upstream, like a
// Mosquitto bridge "topic" line: the local topic is LocalPrefix+rest,
// the remote one RemotePrefix+rest, for rest matching Topic.
type BridgeRule struct {
	Topic        string `mapstructure:"topic" yaml:"topic"`
	LocalPrefix  string `mapstructure:"local_prefix" yaml:"local_prefix,omitempty"`
	RemotePrefix string `mapstructure:"remote_prefix" yaml:"remote_prefix,omitempty"`
	// QoS is the most QoS a message keeps across the bridge.
	QoS int `mapstructure:"qos" yaml:"qos"`
}

// BridgeTransparent configures transparent mode: one upstream session
// per MQTT-SN client, under its own client ID.
type BridgeTransparent struct {
	Enabled        bool     `mapstructure:"enabled" yaml:"enabled"`
	ListenerPrefix string   `mapstructure:"listener_prefix" yaml:"listener_prefix,omitempty"`
	ClientIDPrefix string   `mapstructure:"client_id_prefix" yaml:"client_id_prefix,omitempty"`
	RemotePrefix   string   `mapstructure:"remote_prefix" yaml:"remote_prefix,omitempty"`
	SessionExpiry  Duration `mapstructure:"session_expiry" yaml:"session_expiry,omitempty"`
	MaxClients     int      `mapstructure:"max_clients" yaml:"max_clients,omitempty"`
	MaxQueued      int      `mapstructure:"max_queued" yaml:"max_queued,omitempty"`
}

// enabled reports whether the bridge is configured.
func (b *BridgeConfig) enabled() bool { return b.URL != "" }

// used reports whether any bridge setting that needs a URL is given.
func (b *BridgeConfig) used() bool {
	return b.ID != "" || len(b.Up) > 0 || len(b.Down) > 0 || b.Transparent.Enabled
}

// validateBridge checks the bridge section; it is skipped while the
// bridge is off.
func (c *Config) validateBridge(bad func(key, format string, args ...any)) {
	b := &c.Bridge
	if !b.enabled() {
		if b.used() {
			bad("bridge.url", "is required: the bridge section is set but has no url (mqtt://host:port)")
		}
		return
	}
	if b.ID == "" {
		bad("bridge.id", "is required: a name for this gateway, unique in the cluster")
	} else if !plainName(b.ID) {
		bad("bridge.id", "%q: use printable characters without spaces, + or #", b.ID)
	}
	if b.ClientID != "" && !plainName(b.ClientID) {
		bad("bridge.client_id", "%q: use printable characters without spaces, + or #", b.ClientID)
	}
	tlsURL, err := checkBridgeURL(b.URL)
	if err != nil {
		bad("bridge.url", "%v", err)
	}
	switch b.ProtocolVersion {
	case 0, 4, 5:
	default:
		bad("bridge.protocol_version", "%d is not 0 (MQTT 5, falling back to 3.1.1), 4 (3.1.1) or 5", b.ProtocolVersion)
	}
	if (b.TLS.CertFile == "") != (b.TLS.KeyFile == "") {
		bad("bridge.tls", "cert_file and key_file go together")
	}
	if b.TLS != (BridgeTLS{}) && err == nil && !tlsURL {
		bad("bridge.tls", "is set but the url is not mqtts://, ssl:// or tls://: the connection would not use TLS")
	}
	for key, d := range map[string]Duration{"keepalive": b.KeepAlive, "connect_timeout": b.ConnectTimeout,
		"min_backoff": b.MinBackoff, "max_backoff": b.MaxBackoff, "transparent.session_expiry": b.Transparent.SessionExpiry} {
		if d < 0 {
			bad("bridge."+key, "must not be negative")
		}
	}
	if b.KeepAlive > 0 && time.Duration(b.KeepAlive) > 65535*time.Second {
		bad("bridge.keepalive", "%s exceeds 65535s", b.KeepAlive)
	}
	if b.MaxInflight < 0 || b.MaxInflight > 65535 {
		bad("bridge.max_inflight", "%d is outside 0..65535", b.MaxInflight)
	}
	for i, r := range b.Up {
		checkBridgeRule(fmt.Sprintf("bridge.up[%d]", i), r, bad)
	}
	for i, r := range b.Down {
		checkBridgeRule(fmt.Sprintf("bridge.down[%d]", i), r, bad)
	}
	t := &b.Transparent
	if len(b.Up) == 0 && len(b.Down) == 0 && !t.Enabled {
		bad("bridge", "nothing to bridge: give up or down rules, or set transparent.enabled")
	}
	if strings.ContainsAny(t.RemotePrefix, "+#") {
		bad("bridge.transparent.remote_prefix", "%q has a wildcard", t.RemotePrefix)
	}
	if t.MaxClients < 0 || t.MaxQueued < 0 {
		bad("bridge.transparent", "max_clients and max_queued must not be negative")
	}
}

// plainName reports whether s is a usable client ID or gateway name.
func plainName(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '+' || r == '#' {
			return false
		}
	}
	return s != ""
}

// checkBridgeURL parses an upstream URL and reports whether it asks for
// TLS.
func checkBridgeURL(raw string) (bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return false, fmt.Errorf("%q is not a URL such as mqtt://broker.example:1883", raw)
	}
	tls := false
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
	case "mqtts", "ssl", "tls":
		tls = true
	default:
		return false, fmt.Errorf("%q: the scheme must be mqtt, tcp, mqtts, ssl or tls", raw)
	}
	if u.User != nil {
		// The bridge would ignore it, and the URL is logged.
		return false, fmt.Errorf("%q: give credentials in bridge.username and bridge.password, not in the URL", u.Redacted())
	}
	if u.Hostname() == "" {
		return false, fmt.Errorf("%q has no host", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false, fmt.Errorf("%q: port %q is outside 1..65535", raw, p)
		}
	}
	if u.Path != "" && u.Path != "/" {
		return false, fmt.Errorf("%q: a broker URL has no path", raw)
	}
	return tls, nil
}

// checkBridgeRule validates one up or down rule.
func checkBridgeRule(key string, r BridgeRule, bad func(key, format string, args ...any)) {
	if err := checkTopicFilter(r.Topic); err != nil {
		bad(key+".topic", "%v", err)
	} else if strings.HasPrefix(r.LocalPrefix+r.Topic, "$share/") || strings.HasPrefix(r.RemotePrefix+r.Topic, "$share/") {
		bad(key+".topic", "shared subscriptions are not bridged")
	}
	if strings.ContainsAny(r.LocalPrefix, "+#") || strings.ContainsAny(r.RemotePrefix, "+#") {
		bad(key, "local_prefix and remote_prefix may not contain wildcards")
	}
	if r.QoS < 0 || r.QoS > 2 {
		bad(key+".qos", "%d is not 0, 1 or 2", r.QoS)
	}
}

// checkTopicFilter checks an MQTT topic filter's wildcards.
func checkTopicFilter(f string) error {
	if f == "" {
		return fmt.Errorf(`empty topic filter (use "#" for everything under the prefixes)`)
	}
	if strings.ContainsRune(f, 0) {
		return fmt.Errorf("%q contains a NUL character", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("%q: # must be a whole level, and the last", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("%q: + must be a whole level", f)
		}
	}
	return nil
}

// bridgeConfig maps the bridge section onto bridge.Config.
func (c *Config) bridgeConfig(log *slog.Logger) bridge.Config {
	b := &c.Bridge
	rules := func(rs []BridgeRule) []bridge.Rule {
		out := make([]bridge.Rule, 0, len(rs))
		for _, r := range rs {
			out = append(out, bridge.Rule{Topic: r.Topic, LocalPrefix: r.LocalPrefix, RemotePrefix: r.RemotePrefix, QoS: byte(r.QoS)})
		}
		return out
	}
	t := &b.Transparent
	return bridge.Config{
		ID:              b.ID,
		URL:             b.URL,
		ProtocolVersion: b.ProtocolVersion,
		Username:        b.Username,
		Password:        b.Password,
		TLS: bridge.TLSConfig{
			CAFile:             b.TLS.CAFile,
			CertFile:           b.TLS.CertFile,
			KeyFile:            b.TLS.KeyFile,
			ServerName:         b.TLS.ServerName,
			InsecureSkipVerify: b.TLS.InsecureSkipVerify,
		},
		KeepAlive:          time.Duration(b.KeepAlive),
		ConnectTimeout:     time.Duration(b.ConnectTimeout),
		MinBackoff:         time.Duration(b.MinBackoff),
		MaxBackoff:         time.Duration(b.MaxBackoff),
		ClientID:           b.ClientID,
		SessionExpiry:      time.Duration(b.SessionExpiry),
		Up:                 rules(b.Up),
		Down:               rules(b.Down),
		MaxInflight:        b.MaxInflight,
		DropQoS0WhileDown:  b.DropQoS0WhileDown,
		LocalSessionExpiry: time.Duration(b.LocalSessionExpiry),
		LocalUsername:      b.LocalUsername,
		LocalPassword:      b.LocalPassword,
		Transparent: bridge.TransparentConfig{
			Enabled:        t.Enabled,
			ListenerPrefix: t.ListenerPrefix,
			ClientIDPrefix: t.ClientIDPrefix,
			RemotePrefix:   t.RemotePrefix,
			SessionExpiry:  time.Duration(t.SessionExpiry),
			MaxClients:     t.MaxClients,
			MaxQueued:      t.MaxQueued,
		},
		Logger: log,
	}
}
