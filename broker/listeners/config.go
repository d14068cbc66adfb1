package listeners

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// Listener kinds.
const (
	KindTCP = "tcp" // plain MQTT over TCP
	KindTLS = "tls" // MQTT over TLS
	KindWS  = "ws"  // MQTT over WebSocket
	KindWSS = "wss" // MQTT over WebSocket over TLS
)

// Config describes one listener. Zero values take the defaults listed per
// field, so Config{Kind: "tcp", Addr: ":1883"} is a complete config.
type Config struct {
	// Name identifies the listener in logs, stats and
	// broker.ConnectInfo.Listener; default Kind.
	Name string
	// Kind is "tcp", "tls", "ws" or "wss".
	Kind string
	// Addr is the listen address, host:port; port 0 picks a free one.
	Addr string

	// CertFile and KeyFile are the PEM server certificate (chain) and
	// key, required for "tls" and "wss" unless TLSConfig is set.
	CertFile, KeyFile string
	// CAFile is a PEM bundle of CAs that sign client certificates. When
	// set, clients that present a certificate must present a valid one,
	// and its subject is passed as broker.ConnectInfo.CertSubject.
	CAFile string
	// RequireClientCert refuses TLS clients without a valid certificate
	// (needs CAFile or TLSConfig.ClientCAs).
	RequireClientCert bool
	// TLSConfig, when set, is used as is (cloned) instead of the files.
	TLSConfig *tls.Config

	// Path is the WebSocket endpoint; default "/mqtt".
	Path string

	// MaxConnections bounds the connections open at once on this
	// listener; more are closed right after accept. Default 10000; -1
	// means no limit.
	MaxConnections int
	// MaxPacketSize bounds packets from clients (bytes, whole packet),
	// and is announced to MQTT 5 clients. Default 1 MiB.
	MaxPacketSize uint32
	// ConnectTimeout is how long a new connection may take to complete
	// the TLS handshake and send CONNECT. Default 10s.
	ConnectTimeout time.Duration
	// WriteTimeout bounds one write to a client; a client that does not
	// read for that long is disconnected. Default 30s.
	WriteTimeout time.Duration
	// ReadBufferSize is the size of the read buffer a connection uses
	// while it has data to read (idle TCP connections give it back).
	// Default 4096.
	ReadBufferSize int
	// OutboundBufferSize is how many bytes of encoded packets may wait
	// for the socket before deliveries are refused (the broker then
	// queues them, bounded by its own config, until the buffer drains).
	// Default 256 KiB.
	OutboundBufferSize int
	// WriteDelay lets deliveries to a busy connection gather: when the
	// connection was written to less than WriteDelay ago, its next write
	// waits WriteDelay (or until 32 KiB are pending), so that one system
	// call carries many messages. A quiet connection is written to at
	// once. It trades up to WriteDelay of latency (about 1 ms at least,
	// for values under 1 ms, on an idle Linux machine) for CPU at
	// moderate rates. Default 0: no waiting.
	WriteDelay time.Duration

	// ReceiveMaximum is the number of QoS 2 PUBLISH packets an MQTT 5
	// client may have unreleased with us (CONNACK Receive Maximum);
	// exceeding it is a protocol error (0x93). Default 256. MQTT 3.1.1
	// clients are held to the same bound.
	ReceiveMaximum uint16
	// TopicAliasMaximum is the highest topic alias MQTT 5 clients may
	// use towards us (CONNACK Topic Alias Maximum). Default 64; -1
	// disables topic aliases from clients.
	TopicAliasMaximum int
	// ServerKeepAlive, when non-zero, replaces the keep-alive interval
	// of MQTT 5 clients (sent as CONNACK Server Keep Alive).
	ServerKeepAlive time.Duration
	// ResponseInformation is sent to MQTT 5 clients that ask for it
	// (Request Response Information); empty sends nothing.
	ResponseInformation string
}

// Defaults applied to zero Config fields.
const (
	DefaultMaxConnections     = 10000
	DefaultMaxPacketSize      = 1 << 20
	DefaultConnectTimeout     = 10 * time.Second
	DefaultWriteTimeout       = 30 * time.Second
	DefaultReadBufferSize     = 4096
	DefaultOutboundBufferSize = 256 << 10
	DefaultReceiveMaximum     = 256
	DefaultTopicAliasMaximum  = 64
	DefaultPath               = "/mqtt"
)

// withDefaults validates c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	switch c.Kind {
	case KindTCP, KindTLS, KindWS, KindWSS:
	case "":
		c.Kind = KindTCP
	default:
		return c, fmt.Errorf("listeners: unknown kind %q (want tcp, tls, ws or wss)", c.Kind)
	}
	if c.Name == "" {
		c.Name = c.Kind
	}
	if c.Addr == "" {
		return c, fmt.Errorf("listeners: %s: no address", c.Name)
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = DefaultReadBufferSize
	}
	if c.ReadBufferSize < 64 {
		c.ReadBufferSize = 64
	}
	if c.OutboundBufferSize <= 0 {
		c.OutboundBufferSize = DefaultOutboundBufferSize
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = DefaultReceiveMaximum
	}
	switch {
	case c.TopicAliasMaximum == 0:
		c.TopicAliasMaximum = DefaultTopicAliasMaximum
	case c.TopicAliasMaximum < 0:
		c.TopicAliasMaximum = 0
	case c.TopicAliasMaximum > 65535:
		c.TopicAliasMaximum = 65535
	}
	if c.ServerKeepAlive > 65535*time.Second {
		c.ServerKeepAlive = 65535 * time.Second
	}
	return c, nil
}

// secure reports whether the listener speaks TLS.
func (c *Config) secure() bool { return c.Kind == KindTLS || c.Kind == KindWSS }

// tlsConfig builds the server TLS configuration from the files.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if c.TLSConfig != nil {
		tc := c.TLSConfig.Clone()
		if c.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return tc, nil
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, fmt.Errorf("listeners: %s: %s needs CertFile and KeyFile", c.Name, c.Kind)
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("listeners: %s: load certificate: %w", c.Name, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("listeners: %s: read CA file: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("listeners: %s: no certificate in CA file %s", c.Name, c.CAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if c.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if c.RequireClientCert {
		return nil, errors.New("listeners: " + c.Name + ": RequireClientCert needs CAFile")
	}
	return tc, nil
}
