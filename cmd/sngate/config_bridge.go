package main

// The bridge section: its schema and mapping onto bridge.Config, which
// validates it.

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"time"

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

// validateBridge checks the bridge section with bridge.Config.Validate,
// the bridge's own checks, naming each field by its key; it is skipped
// while the bridge is off.
func (c *Config) validateBridge(bad func(key, format string, args ...any)) {
	b := &c.Bridge
	if !b.enabled() {
		if b.used() {
			bad("bridge.url", "is required: the bridge section is set but has no url (mqtt://host:port)")
		}
		return
	}
	err := c.bridgeConfig(nil).Validate()
	if err == nil {
		return
	}
	var ce *bridge.ConfigError
	if !errors.As(err, &ce) {
		bad("bridge", "%v", err)
		return
	}
	for _, f := range ce.Fields {
		key, _ := bridgeKey(f.Field)
		bad(key, "%v", f.Err)
	}
}

// bridgeKey maps a bridge.Config field path ("URL", "TLS.CertFile",
// "Up[0].QoS", "" for the whole) onto its key ("bridge.url",
// "bridge.tls.cert_file", "bridge.up[0].qos", "bridge") through the
// mapstructure tags of BridgeConfig, whose field names are those of
// bridge.Config. ok is false if a name has no counterpart: the rest of
// the path is then kept as is.
func bridgeKey(field string) (key string, ok bool) {
	key = "bridge"
	if field == "" {
		return key, true
	}
	t := reflect.TypeFor[BridgeConfig]()
	parts := strings.Split(field, ".")
	for i, part := range parts {
		name, index, indexed := strings.Cut(part, "[")
		var f reflect.StructField
		found := false
		if t.Kind() == reflect.Struct {
			f, found = t.FieldByName(name)
		}
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !found || tag == "" {
			return key + "." + strings.Join(parts[i:], "."), false
		}
		key += "." + tag
		t = f.Type
		if indexed {
			key += "[" + index
			if t.Kind() == reflect.Slice {
				t = t.Elem()
			}
		}
	}
	return key, true
}

// bridgeConfig maps the bridge section onto bridge.Config.
func (c *Config) bridgeConfig(log *slog.Logger) bridge.Config {
	b := &c.Bridge
	rules := func(rs []BridgeRule) []bridge.Rule {
		out := make([]bridge.Rule, 0, len(rs))
		for _, r := range rs {
			qos := byte(0xFF) // out of range: Validate reports it
			if r.QoS >= 0 && r.QoS <= 2 {
				qos = byte(r.QoS)
			}
			out = append(out, bridge.Rule{Topic: r.Topic, LocalPrefix: r.LocalPrefix, RemotePrefix: r.RemotePrefix, QoS: qos})
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
