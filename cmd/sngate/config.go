package main

import (
	"time"
)

// Duration is a time.Duration written in config files as "30s", "15m",
// "1h30m" (Go duration syntax). Plain numbers are refused so that "10"
// cannot mean ten nanoseconds by accident.
type Duration time.Duration

// MarshalYAML prints the duration in Go syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String returns the duration in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// Config is sngate's whole configuration, as read from YAML, the
// environment (SNGATE_...) and flags. Keys are snake_case; lists of
// structs keep client IDs case-sensitive.
type Config struct {
	Log     LogConfig     `mapstructure:"log" yaml:"log"`
	Metrics MetricsConfig `mapstructure:"metrics" yaml:"metrics"`
	// DataDir holds persistent state (the store file). It is created at
	// start when Persistence is on.
	DataDir string `mapstructure:"data_dir" yaml:"data_dir"`
	// Persistence keeps persistent sessions, their subscriptions and
	// QoS 1/2 messages, retained messages and MQTT-SN topic-ID
	// registrations in DataDir, across restarts and crashes. Off: all
	// state is in memory only.
	Persistence bool       `mapstructure:"persistence" yaml:"persistence"`
	MQTT        MQTTConfig `mapstructure:"mqtt" yaml:"mqtt"`
	SN          SNConfig   `mapstructure:"sn" yaml:"sn"`
	// Bridge links the broker to an upstream broker or cluster; it is
	// off while Bridge.URL is empty (see config_bridge.go).
	Bridge BridgeConfig `mapstructure:"bridge" yaml:"bridge,omitempty"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level" yaml:"level"`
	// Format is text or json.
	Format string `mapstructure:"format" yaml:"format"`
}

// MetricsConfig configures the Prometheus endpoint and $SYS gauges.
type MetricsConfig struct {
	// Listen is the address of the HTTP server with /metrics and
	// /healthz; "" disables it.
	Listen string `mapstructure:"listen" yaml:"listen"`
}

// MQTTConfig configures the broker and its MQTT listeners.
type MQTTConfig struct {
	Listeners []MQTTListener `mapstructure:"listeners" yaml:"listeners"`
	// AllowAnonymous lets clients connect without a user name.
	AllowAnonymous bool `mapstructure:"allow_anonymous" yaml:"allow_anonymous"`
	// PasswordFile is a "user:bcrypt-hash" file (see 'sngate passwd').
	PasswordFile string `mapstructure:"password_file" yaml:"password_file"`
	// ACLFile is an ACL file in the broker's format.
	ACLFile string `mapstructure:"acl_file" yaml:"acl_file"`
	// ACL is the same rules written in the config file (not with
	// acl_file). Empty (and no acl_file): everything is allowed.
	ACL []ACLRule `mapstructure:"acl" yaml:"acl,omitempty"`
	// CertAsUsername uses a verified TLS client certificate subject as
	// the user name.
	CertAsUsername bool `mapstructure:"cert_as_username" yaml:"cert_as_username"`
	// SysInterval is the period of $SYS publications; 0s disables them.
	SysInterval Duration   `mapstructure:"sys_interval" yaml:"sys_interval"`
	Limits      MQTTLimits `mapstructure:"limits" yaml:"limits"`
}

// ACLRule allows access to topics matching Topic. It applies to one
// user, one client ID, every client (all; %c and %u in Topic stand for
// the client ID and user name), or, with none of these, to anonymous
// clients.
type ACLRule struct {
	User     string `mapstructure:"user" yaml:"user,omitempty"`
	ClientID string `mapstructure:"client_id" yaml:"client_id,omitempty"`
	All      bool   `mapstructure:"all" yaml:"all,omitempty"`
	// Access is read (subscribe), write (publish) or readwrite (default).
	Access string `mapstructure:"access" yaml:"access,omitempty"`
	Topic  string `mapstructure:"topic" yaml:"topic"`
}

// MQTTListener is one MQTT listener.
type MQTTListener struct {
	// Type is tcp, tls, ws or wss.
	Type string `mapstructure:"type" yaml:"type"`
	// Addr is host:port; port 0 picks a free port.
	Addr string `mapstructure:"addr" yaml:"addr"`
	// Cert, Key: server certificate and key (PEM), for tls and wss.
	Cert string `mapstructure:"cert" yaml:"cert,omitempty"`
	Key  string `mapstructure:"key" yaml:"key,omitempty"`
	// CA verifies client certificates (PEM).
	CA string `mapstructure:"ca" yaml:"ca,omitempty"`
	// RequireClientCert refuses TLS clients without a valid certificate.
	RequireClientCert bool `mapstructure:"require_client_cert" yaml:"require_client_cert,omitempty"`
	// Path is the HTTP path of ws and wss listeners.
	Path string `mapstructure:"path" yaml:"path,omitempty"`
}

// MQTTLimits are the broker's bounds; 0 means the default (per-session
// bounds) or unlimited (global bounds), as broker.Config says.
type MQTTLimits struct {
	MaxSessions                int      `mapstructure:"max_sessions" yaml:"max_sessions"`
	MaxQueuedMessages          int      `mapstructure:"max_queued_messages" yaml:"max_queued_messages"`
	MaxInflight                int      `mapstructure:"max_inflight" yaml:"max_inflight"`
	QueueQoS0                  bool     `mapstructure:"queue_qos0" yaml:"queue_qos0"`
	MaxSubscriptionsPerSession int      `mapstructure:"max_subscriptions_per_session" yaml:"max_subscriptions_per_session"`
	MaxSessionExpiry           Duration `mapstructure:"max_session_expiry" yaml:"max_session_expiry"`
	MaxTopicLength             int      `mapstructure:"max_topic_length" yaml:"max_topic_length"`
	MaxTopicLevels             int      `mapstructure:"max_topic_levels" yaml:"max_topic_levels"`
	MaxRetainedMessages        int      `mapstructure:"max_retained_messages" yaml:"max_retained_messages"`
	MaxRetainedBytes           int64    `mapstructure:"max_retained_bytes" yaml:"max_retained_bytes"`

	// Per MQTT listener: open connections (-1 = no limit), largest packet
	// from a client, time to complete TLS and CONNECT, time one write to a
	// client may take.
	MaxConnections int      `mapstructure:"max_connections" yaml:"max_connections"`
	MaxPacketSize  int      `mapstructure:"max_packet_size" yaml:"max_packet_size"`
	ConnectTimeout Duration `mapstructure:"connect_timeout" yaml:"connect_timeout"`
	WriteTimeout   Duration `mapstructure:"write_timeout" yaml:"write_timeout"`
}

// SNConfig configures the MQTT-SN gateway and its links.
type SNConfig struct {
	UDP    []UDPLink    `mapstructure:"udp" yaml:"udp"`
	DTLS   []DTLSLink   `mapstructure:"dtls" yaml:"dtls"`
	Serial []SerialLink `mapstructure:"serial" yaml:"serial"`
	// Semtech are LoRa concentrators running the Semtech UDP packet
	// forwarder (see configs/concentrator.yaml).
	Semtech []SemtechLink `mapstructure:"semtech" yaml:"semtech"`

	// GatewayID is sent in ADVERTISE and GWINFO (1-255).
	GatewayID int `mapstructure:"gateway_id" yaml:"gateway_id"`
	// Shards is the number of gateway workers; 0 = one per CPU.
	Shards int `mapstructure:"shards" yaml:"shards"`
	// AdvertiseInterval is the ADVERTISE period on links that can
	// broadcast; 0s sends none.
	AdvertiseInterval Duration `mapstructure:"advertise_interval" yaml:"advertise_interval"`
	// QoSMinus1 lets any sender publish at QoS -1. Otherwise only
	// sn.clients entries with qos_minus1 and an address may.
	QoSMinus1 bool `mapstructure:"qos_minus1" yaml:"qos_minus1"`
	// QoSMinus1Identity is the client ID the broker's ACL sees for QoS -1
	// publishes from senders without an sn.clients entry.
	QoSMinus1Identity string `mapstructure:"qos_minus1_identity" yaml:"qos_minus1_identity"`
	// RestrictClients admits only the client IDs listed in sn.clients.
	RestrictClients bool `mapstructure:"restrict_clients" yaml:"restrict_clients"`
	// Forwarders lists the addresses (ip or ip:port) allowed to send
	// encapsulated frames; empty allows any sender.
	Forwarders []string `mapstructure:"forwarders" yaml:"forwarders"`
	// DisableForwarders drops every encapsulated frame.
	DisableForwarders bool `mapstructure:"disable_forwarders" yaml:"disable_forwarders"`

	Timers SNTimers `mapstructure:"timers" yaml:"timers"`
	Limits SNLimits `mapstructure:"limits" yaml:"limits"`

	// PredefinedTopics maps topic IDs to names, for one client or all.
	PredefinedTopics []PredefinedTopic `mapstructure:"predefined_topics" yaml:"predefined_topics"`
	// Clients lists known clients: their QoS -1 rights and own predefined
	// topics, and, with restrict_clients, who may connect at all.
	Clients []SNClient `mapstructure:"clients" yaml:"clients"`
}

// SNTimers are the gateway's protocol timers.
type SNTimers struct {
	// KeepAliveTolerance multiplies a client's keep-alive before it is
	// declared lost; SleepTolerance does the same for a sleep duration.
	KeepAliveTolerance float64 `mapstructure:"keepalive_tolerance" yaml:"keepalive_tolerance"`
	SleepTolerance     float64 `mapstructure:"sleep_tolerance" yaml:"sleep_tolerance"`
	// TRetry and NRetry: retransmission timer and count (MQTT-SN 6.13).
	TRetry Duration `mapstructure:"t_retry" yaml:"t_retry"`
	NRetry int      `mapstructure:"n_retry" yaml:"n_retry"`
}

// SNLimits bound what the network can make the gateway hold.
type SNLimits struct {
	MaxClients        int `mapstructure:"max_clients" yaml:"max_clients"`
	MaxClientIDLength int `mapstructure:"max_client_id_length" yaml:"max_client_id_length"`
	MaxTopicIDs       int `mapstructure:"max_topic_ids" yaml:"max_topic_ids"`
	MaxPacketSize     int `mapstructure:"max_packet_size" yaml:"max_packet_size"`
	InboxSize         int `mapstructure:"inbox_size" yaml:"inbox_size"`
	// Per source IP: CONNECTs in the will dialogue at once, and the rate
	// and burst of new clients.
	MaxPendingConnectsPerSource int     `mapstructure:"max_pending_connects_per_source" yaml:"max_pending_connects_per_source"`
	NewClientRate               float64 `mapstructure:"new_client_rate" yaml:"new_client_rate"`
	NewClientBurst              int     `mapstructure:"new_client_burst" yaml:"new_client_burst"`
	MaxSources                  int     `mapstructure:"max_sources" yaml:"max_sources"`
}

// UDPLink is one MQTT-SN UDP listener.
type UDPLink struct {
	// Listen is host:port; port 0 picks a free port.
	Listen string `mapstructure:"listen" yaml:"listen"`
	// Multicast is the discovery group ip:port ("" = none).
	Multicast          string `mapstructure:"multicast" yaml:"multicast,omitempty"`
	MulticastInterface string `mapstructure:"multicast_interface" yaml:"multicast_interface,omitempty"`
	MulticastTTL       int    `mapstructure:"multicast_ttl" yaml:"multicast_ttl,omitempty"`
	// MTU is the largest frame; 0 = 1500.
	MTU int `mapstructure:"mtu" yaml:"mtu,omitempty"`
	// ReadBuffer and WriteBuffer set socket buffer sizes in bytes
	// (SO_RCVBUF, SO_SNDBUF); 0 = defaultUDPReadBuffer and
	// defaultUDPWriteBuffer. The kernel caps them at net.core.rmem_max
	// and net.core.wmem_max.
	ReadBuffer  int `mapstructure:"read_buffer" yaml:"read_buffer,omitempty"`
	WriteBuffer int `mapstructure:"write_buffer" yaml:"write_buffer,omitempty"`
}

// DTLSLink is one MQTT-SN DTLS listener.
type DTLSLink struct {
	Listen string    `mapstructure:"listen" yaml:"listen"`
	PSK    []PSKSpec `mapstructure:"psk" yaml:"psk,omitempty"`
	Cert   string    `mapstructure:"cert" yaml:"cert,omitempty"`
	Key    string    `mapstructure:"key" yaml:"key,omitempty"`
	CA     string    `mapstructure:"ca" yaml:"ca,omitempty"`
	// RequireClientCert refuses certificate handshakes without a client
	// certificate that verifies against CA.
	RequireClientCert bool `mapstructure:"require_client_cert" yaml:"require_client_cert,omitempty"`
	// Bindings grant identities the client IDs they may use.
	Bindings []DTLSBinding `mapstructure:"bindings" yaml:"bindings,omitempty"`
	// CID is the Connection ID length (RFC 9146); 0 = 8, -1 disables.
	CID          int      `mapstructure:"cid" yaml:"cid,omitempty"`
	CipherSuites []string `mapstructure:"cipher_suites" yaml:"cipher_suites,omitempty"`
	MTU          int      `mapstructure:"mtu" yaml:"mtu,omitempty"`
	// Limits; 0 = the transport's defaults.
	MaxPending       int      `mapstructure:"max_pending" yaml:"max_pending,omitempty"`
	MaxAssociations  int      `mapstructure:"max_associations" yaml:"max_associations,omitempty"`
	HandshakeTimeout Duration `mapstructure:"handshake_timeout" yaml:"handshake_timeout,omitempty"`
	IdleTimeout      Duration `mapstructure:"idle_timeout" yaml:"idle_timeout,omitempty"`
}

// PSKSpec is one pre-shared key.
type PSKSpec struct {
	Identity string `mapstructure:"identity" yaml:"identity"`
	// KeyHex is the key in hexadecimal.
	KeyHex string `mapstructure:"key_hex" yaml:"key_hex"`
}

// DTLSBinding grants one identity ("*" for any) its client IDs.
type DTLSBinding struct {
	Identity  string   `mapstructure:"identity" yaml:"identity"`
	ClientIDs []string `mapstructure:"client_ids" yaml:"client_ids"`
}

// SerialLink is one serial radio modem or bridge. Zero fields take the
// transport's defaults for the kind.
type SerialLink struct {
	// Kind is xbee, loralink, slip, cobs, rn2483 or rak.
	Kind   string `mapstructure:"kind" yaml:"kind"`
	Device string `mapstructure:"device" yaml:"device"`
	// Baud: 0 = 9600 (xbee), 57600 (rn2483), 115200 (others).
	Baud int `mapstructure:"baud" yaml:"baud,omitempty"`
	// Name labels the link in logs and metrics (default: the kind).
	Name string `mapstructure:"name" yaml:"name,omitempty"`
	// PayloadLimit caps the MQTT-SN frame size (the link MTU).
	PayloadLimit int `mapstructure:"payload_limit" yaml:"payload_limit,omitempty"`

	// APIMode is the XBee AP parameter, 1 or 2 (escaped; default).
	APIMode int `mapstructure:"api_mode" yaml:"api_mode,omitempty"`
	// XBeeRadius is the broadcast radius (0 = maximum).
	XBeeRadius int `mapstructure:"xbee_radius" yaml:"xbee_radius,omitempty"`

	// TxDevice is LoRaLink's separate transmit modem ("" = Device).
	TxDevice        string   `mapstructure:"tx_device" yaml:"tx_device,omitempty"`
	TxBaud          int      `mapstructure:"tx_baud" yaml:"tx_baud,omitempty"`
	DeliveryTimeout Duration `mapstructure:"delivery_timeout" yaml:"delivery_timeout,omitempty"`

	// NetworkID is the raw-LoRa header network ID (rn2483, rak).
	NetworkID   int       `mapstructure:"network_id" yaml:"network_id,omitempty"`
	FrequencyHz int       `mapstructure:"frequency_hz" yaml:"frequency_hz,omitempty"`
	PowerDBm    int       `mapstructure:"power_dbm" yaml:"power_dbm,omitempty"`
	SyncWord    int       `mapstructure:"sync_word" yaml:"sync_word,omitempty"`
	LoRa        LoRaRadio `mapstructure:"lora" yaml:"lora,omitempty"`
	// Region names the duty-cycle rules: EU868 (default), US915 or none.
	Region         string   `mapstructure:"region" yaml:"region,omitempty"`
	CommandTimeout Duration `mapstructure:"command_timeout" yaml:"command_timeout,omitempty"`

	// RxQueue and TxQueue bound frames waiting (0 = 64 and 32).
	RxQueue int `mapstructure:"rx_queue" yaml:"rx_queue,omitempty"`
	TxQueue int `mapstructure:"tx_queue" yaml:"tx_queue,omitempty"`
}

// SemtechLink is one Semtech UDP packet-forwarder server. Zero fields
// take the transport's defaults.
type SemtechLink struct {
	// Listen is the UDP address forwarders send to (default ":1700").
	Listen string `mapstructure:"listen" yaml:"listen"`
	Name   string `mapstructure:"name" yaml:"name,omitempty"`
	// NetworkID is the raw-LoRa address header network ID.
	NetworkID int `mapstructure:"network_id" yaml:"network_id"`
	// RXDelay: from the end of a node's uplink to its receive window.
	RXDelay     Duration `mapstructure:"rx_delay" yaml:"rx_delay,omitempty"`
	TxLead      Duration `mapstructure:"tx_lead" yaml:"tx_lead,omitempty"`
	DedupWindow Duration `mapstructure:"dedup_window" yaml:"dedup_window,omitempty"`
	// NoIQInversion sends downlinks with normal IQ polarity.
	NoIQInversion bool `mapstructure:"no_iq_inversion" yaml:"no_iq_inversion,omitempty"`
	PowerDBm      int  `mapstructure:"power_dbm" yaml:"power_dbm,omitempty"`
	RFChain       int  `mapstructure:"rf_chain" yaml:"rf_chain,omitempty"`
	Preamble      int  `mapstructure:"preamble" yaml:"preamble,omitempty"`
	NoCRC         bool `mapstructure:"no_crc" yaml:"no_crc,omitempty"`
	// Region names the duty-cycle rules: EU868 (default), US915 or none.
	Region string `mapstructure:"region" yaml:"region,omitempty"`
	// Broadcast (ADVERTISE, GWINFO) channel; 0 Hz disables broadcasts.
	BroadcastFrequencyHz int    `mapstructure:"broadcast_frequency_hz" yaml:"broadcast_frequency_hz,omitempty"`
	BroadcastDataRate    string `mapstructure:"broadcast_data_rate" yaml:"broadcast_data_rate,omitempty"`
	BroadcastCodingRate  string `mapstructure:"broadcast_coding_rate" yaml:"broadcast_coding_rate,omitempty"`
	// Forwarders lists the gateway EUIs allowed; empty allows any.
	Forwarders []string `mapstructure:"forwarders" yaml:"forwarders,omitempty"`
	// Bounds; 0 = the transport's defaults.
	MaxForwarders int      `mapstructure:"max_forwarders" yaml:"max_forwarders,omitempty"`
	MaxNodes      int      `mapstructure:"max_nodes" yaml:"max_nodes,omitempty"`
	NodeQueue     int      `mapstructure:"node_queue" yaml:"node_queue,omitempty"`
	MaxQueued     int      `mapstructure:"max_queued" yaml:"max_queued,omitempty"`
	MaxInflight   int      `mapstructure:"max_inflight" yaml:"max_inflight,omitempty"`
	FrameTTL      Duration `mapstructure:"frame_ttl" yaml:"frame_ttl,omitempty"`
	RxQueue       int      `mapstructure:"rx_queue" yaml:"rx_queue,omitempty"`
	PayloadLimit  int      `mapstructure:"payload_limit" yaml:"payload_limit,omitempty"`
}

// LoRaRadio are LoRa modulation parameters (rn2483, rak).
type LoRaRadio struct {
	SF          int `mapstructure:"sf" yaml:"sf,omitempty"`
	BandwidthHz int `mapstructure:"bandwidth_hz" yaml:"bandwidth_hz,omitempty"`
	// CodingRate 1..4 means 4/5..4/8 (0 = 1).
	CodingRate int `mapstructure:"coding_rate" yaml:"coding_rate,omitempty"`
	// Preamble symbols (0 = 8).
	Preamble int `mapstructure:"preamble" yaml:"preamble,omitempty"`
}

// PredefinedTopic is one predefined topic ID.
type PredefinedTopic struct {
	// ClientID is the client it applies to, or "*" for every client.
	ClientID string `mapstructure:"client_id" yaml:"client_id"`
	Topic    string `mapstructure:"topic" yaml:"topic"`
	ID       int    `mapstructure:"id" yaml:"id"`
}

// SNClient is one allow-list entry.
type SNClient struct {
	ClientID string `mapstructure:"client_id" yaml:"client_id"`
	// Address (ip or ip:port) identifies the client's QoS -1 publishes,
	// which carry no client ID.
	Address string `mapstructure:"address" yaml:"address,omitempty"`
	// QoSMinus1 lets the client publish at QoS -1 from Address.
	QoSMinus1 bool `mapstructure:"qos_minus1" yaml:"qos_minus1,omitempty"`
	// Predefined are topic IDs for this client only.
	Predefined []ClientTopic `mapstructure:"predefined" yaml:"predefined,omitempty"`
}

// ClientTopic is a predefined topic ID inside an allow-list entry.
type ClientTopic struct {
	Topic string `mapstructure:"topic" yaml:"topic"`
	ID    int    `mapstructure:"id" yaml:"id"`
}

// Default UDP socket buffers: the OS default receive buffer (about
// 208 KiB on Linux) loses datagrams in bursts at tens of thousands of
// messages per second.
const (
	defaultUDPReadBuffer  = 4 << 20
	defaultUDPWriteBuffer = 1 << 20
)

// applyDefaults fills the per-item defaults of list entries, which the
// layered defaults cannot reach (a list in a file replaces the default
// list whole).
func (c *Config) applyDefaults() {
	for i := range c.SN.UDP {
		u := &c.SN.UDP[i]
		if u.ReadBuffer == 0 {
			u.ReadBuffer = defaultUDPReadBuffer
		}
		if u.WriteBuffer == 0 {
			u.WriteBuffer = defaultUDPWriteBuffer
		}
	}
}

// defaultConfig is the embedded configuration: what 'sngate serve' runs
// with no file, and what configs/sngate.yaml documents.
func defaultConfig() Config {
	return Config{
		Log:         LogConfig{Level: "info", Format: "text"},
		Metrics:     MetricsConfig{Listen: "127.0.0.1:9184"},
		DataDir:     "./data",
		Persistence: true,
		MQTT: MQTTConfig{
			Listeners:      []MQTTListener{{Type: "tcp", Addr: ":1883"}},
			AllowAnonymous: true,
			SysInterval:    Duration(10 * time.Second),
			Limits: MQTTLimits{
				MaxSessions:                250000,
				MaxQueuedMessages:          1000,
				MaxInflight:                64,
				MaxSubscriptionsPerSession: 1000,
				MaxTopicLength:             65535,
				MaxTopicLevels:             128,
				MaxRetainedMessages:        100000,
				MaxRetainedBytes:           256 << 20,
				MaxConnections:             10000,
				MaxPacketSize:              1 << 20,
				ConnectTimeout:             Duration(10 * time.Second),
				WriteTimeout:               Duration(30 * time.Second),
			},
		},
		SN: SNConfig{
			UDP:               []UDPLink{{Listen: ":1884", ReadBuffer: defaultUDPReadBuffer, WriteBuffer: defaultUDPWriteBuffer}},
			GatewayID:         1,
			QoSMinus1Identity: "sn-qos-1",
			Forwarders:        []string{},
			Timers: SNTimers{
				KeepAliveTolerance: 1.5,
				SleepTolerance:     1.5,
				TRetry:             Duration(10 * time.Second),
				NRetry:             4,
			},
			Limits: SNLimits{
				MaxClients:                  250000,
				MaxClientIDLength:           64,
				MaxTopicIDs:                 64,
				MaxPacketSize:               1500,
				InboxSize:                   4096,
				MaxPendingConnectsPerSource: 16,
				NewClientRate:               50,
				NewClientBurst:              500,
				MaxSources:                  10000,
			},
		},
	}
}
