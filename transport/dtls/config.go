package dtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	pdtls "github.com/pion/dtls/v3"
	"github.com/pion/logging"
)

// Defaults applied by Listen to zero Config fields.
const (
	// DefaultMTU is the largest MQTT-SN frame carried. A record adds at
	// most 46 bytes (13 header, 8 CID plus inner type, 8 explicit nonce,
	// 16 tag), so a full frame still fits the 1232-byte UDP payload of the
	// IPv6 minimum MTU (1280) without IP fragmentation.
	DefaultMTU = 1152
	// DefaultConnectionIDLength is the length of the Connection IDs the
	// listener issues (RFC 9146).
	DefaultConnectionIDLength = 8
	// DefaultMaxPending bounds cookie-verified handshakes in progress.
	DefaultMaxPending = 128
	// DefaultHandshakeTimeout bounds one handshake, from the first
	// ClientHello. Generous: retransmissions over a lossy radio back off
	// 1, 2, 4, 8 ... seconds.
	DefaultHandshakeTimeout = 30 * time.Second
	// DefaultIdleTimeout removes an association nothing has arrived on for
	// this long. Long, because sensors sleep for hours.
	DefaultIdleTimeout = 24 * time.Hour
	// DefaultMaxAssociations bounds established plus pending associations.
	DefaultMaxAssociations = 10000
	// DefaultReadQueue is the capacity of the queue of decrypted frames
	// waiting for ReadFrom.
	DefaultReadQueue = 1024
	// DefaultPeerQueue is the capacity of each association's queue of
	// received datagrams waiting for decryption.
	DefaultPeerQueue = 16

	// maxDatagram is the largest datagram the listener accepts; pion's own
	// read buffer has this size.
	maxDatagram = 8192
	// pionMTU limits handshake datagrams sent by pion (fragmentation).
	pionMTU = 1200
)

// PSK is one pre-shared key, bound to the identity a client presents.
type PSK struct {
	// Identity is the PSK identity the client sends (psk_identity).
	Identity string
	// Key is the raw key. The caller decodes it (hex, base64) from config.
	Key []byte
}

// Config configures a DTLS listener. Set PSKs, a certificate (CertFile and
// KeyFile), or both. The zero value of every other field but Addr has a
// sensible default.
type Config struct {
	// Addr is the local address to listen on, such as ":5684",
	// "127.0.0.1:0" or "[::1]:0".
	Addr string
	// Network is "udp" (default), "udp4" or "udp6".
	Network string
	// Name labels the link in logs and metrics; default "dtls".
	Name string

	// PSKs lists the accepted PSK identities and their keys.
	PSKs []PSK
	// PSKIdentityHint, when set, is sent to clients in ServerKeyExchange.
	PSKIdentityHint []byte

	// CertFile and KeyFile are the server certificate chain and key (PEM).
	CertFile string
	KeyFile  string
	// CAFile holds the CA certificates (PEM) that client certificates are
	// verified against. With CAFile set and RequireClientCert false, a
	// client certificate is optional but verified when presented.
	CAFile string
	// RequireClientCert rejects certificate handshakes without a client
	// certificate that verifies against CAFile.
	RequireClientCert bool

	// CipherSuites names the accepted suites, by IANA name
	// ("TLS_PSK_WITH_AES_128_CCM_8") or OpenSSL name ("PSK-AES128-CCM8"),
	// case-insensitively. Empty selects DefaultCipherSuites, filtered to
	// the configured credentials.
	CipherSuites []string

	// ConnectionIDLength is the length of the Connection IDs the listener
	// issues to clients that support them (RFC 9146). 0 selects
	// DefaultConnectionIDLength; a negative value disables Connection IDs.
	ConnectionIDLength int
	// MTU is the largest frame carried; default DefaultMTU.
	MTU int

	// MaxPending bounds handshakes in progress whose client has echoed the
	// HelloVerifyRequest cookie. A verified ClientHello beyond it is dropped
	// and counted; the client retransmits it later.
	MaxPending int
	// MaxUnverified bounds ClientHellos answered with a HelloVerifyRequest
	// whose cookie has not come back (what a spoofed flood creates). When
	// full, the oldest is evicted. Default 4*MaxPending.
	MaxUnverified int
	// HandshakeTimeout bounds a handshake from its first ClientHello.
	HandshakeTimeout time.Duration
	// IdleTimeout closes an association nothing has arrived on for this
	// long.
	IdleTimeout time.Duration
	// MaxAssociations bounds established plus pending associations.
	MaxAssociations int
	// ReadQueue is the capacity of the queue of decrypted frames waiting
	// for ReadFrom; when full, associations wait (back-pressure) and their
	// own queues drop.
	ReadQueue int
	// PeerQueue is the capacity of each association's queue of received
	// datagrams; a datagram beyond it is dropped and counted.
	PeerQueue int

	// Logger receives the link's logs, pion's at debug level; nil discards
	// them. The caller labels it (With("link", name)) as it wishes.
	Logger *slog.Logger
}

// suite is one cipher suite this package accepts by name.
type suite struct {
	id      pdtls.CipherSuiteID
	iana    string
	openssl string
	psk     bool
}

var suites = []suite{
	{pdtls.TLS_PSK_WITH_AES_128_CCM_8, "TLS_PSK_WITH_AES_128_CCM_8", "PSK-AES128-CCM8", true},
	{pdtls.TLS_PSK_WITH_AES_128_GCM_SHA256, "TLS_PSK_WITH_AES_128_GCM_SHA256", "PSK-AES128-GCM-SHA256", true},
	{pdtls.TLS_PSK_WITH_AES_128_CCM, "TLS_PSK_WITH_AES_128_CCM", "PSK-AES128-CCM", true},
	{pdtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", "ECDHE-ECDSA-AES128-CCM8", false},
	{pdtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", false},
	{pdtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "ECDHE-ECDSA-AES128-CCM", false},
	{pdtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", false},
}

// DefaultCipherSuites are the suites accepted when Config.CipherSuites is
// empty, most preferred first: the CCM_8 suites constrained devices use,
// then their GCM and CCM variants.
var DefaultCipherSuites = []string{
	"TLS_PSK_WITH_AES_128_CCM_8",
	"TLS_PSK_WITH_AES_128_GCM_SHA256",
	"TLS_PSK_WITH_AES_128_CCM",
	"TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
}

func lookupSuite(name string) (suite, bool) {
	for _, s := range suites {
		if strings.EqualFold(name, s.iana) || strings.EqualFold(name, s.openssl) {
			return s, true
		}
	}
	return suite{}, false
}

// suiteName returns the IANA name of a negotiated suite.
func suiteName(id pdtls.CipherSuiteID) string {
	for _, s := range suites {
		if s.id == id {
			return s.iana
		}
	}
	return pdtls.CipherSuiteName(id)
}

// cipherSuites resolves names to IDs. With explicit names, every name must
// be known and usable with the configured credentials; defaults are
// filtered silently.
func cipherSuites(names []string, havePSK, haveCert bool) ([]pdtls.CipherSuiteID, error) {
	explicit := len(names) > 0
	if !explicit {
		names = DefaultCipherSuites
	}
	var ids []pdtls.CipherSuiteID
	for _, n := range names {
		s, ok := lookupSuite(n)
		if !ok {
			return nil, fmt.Errorf("unknown cipher suite %q", n)
		}
		if (s.psk && !havePSK) || (!s.psk && !haveCert) {
			if explicit {
				need := "a certificate"
				if s.psk {
					need = "PSKs"
				}
				return nil, fmt.Errorf("cipher suite %s needs %s", s.iana, need)
			}
			continue
		}
		ids = append(ids, s.id)
	}
	if len(ids) == 0 {
		return nil, errors.New("no usable cipher suite")
	}
	return ids, nil
}

// settings is a validated Config with defaults applied and files loaded.
type settings struct {
	Config
	cidLen int
	keys   map[string][]byte
	opts   []pdtls.ServerOption
}

func (c Config) resolve() (*settings, error) {
	s := &settings{Config: c}
	if s.Addr == "" {
		return nil, errors.New("no listen address")
	}
	if s.Network == "" {
		s.Network = "udp"
	}
	if s.Name == "" {
		s.Name = "dtls"
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.MTU, DefaultMTU)
	def(&s.MaxPending, DefaultMaxPending)
	def(&s.MaxUnverified, 4*s.MaxPending)
	def(&s.MaxAssociations, DefaultMaxAssociations)
	def(&s.ReadQueue, DefaultReadQueue)
	def(&s.PeerQueue, DefaultPeerQueue)
	if s.HandshakeTimeout <= 0 {
		s.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	switch {
	case s.ConnectionIDLength == 0:
		s.cidLen = DefaultConnectionIDLength
	case s.ConnectionIDLength > 0:
		s.cidLen = s.ConnectionIDLength
	}
	if s.cidLen > 255 {
		return nil, fmt.Errorf("connection ID length %d exceeds 255", s.cidLen)
	}
	if s.MTU > maxDatagram-64 {
		return nil, fmt.Errorf("MTU %d exceeds %d", s.MTU, maxDatagram-64)
	}

	s.keys = make(map[string][]byte, len(s.PSKs))
	for _, p := range s.PSKs {
		if p.Identity == "" || len(p.Key) == 0 {
			return nil, errors.New("PSK with empty identity or key")
		}
		if _, dup := s.keys[p.Identity]; dup {
			return nil, fmt.Errorf("duplicate PSK identity %q", p.Identity)
		}
		s.keys[p.Identity] = append([]byte(nil), p.Key...)
	}
	havePSK := len(s.keys) > 0
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, errors.New("CertFile and KeyFile go together")
	}
	haveCert := s.CertFile != ""
	if !havePSK && !haveCert {
		return nil, errors.New("neither PSKs nor a certificate configured")
	}
	ids, err := cipherSuites(s.CipherSuites, havePSK, haveCert)
	if err != nil {
		return nil, err
	}

	s.opts = []pdtls.ServerOption{
		pdtls.WithCipherSuites(ids...),
		pdtls.WithExtendedMasterSecret(pdtls.RequestExtendedMasterSecret),
		pdtls.WithMTU(pionMTU),
		pdtls.WithLoggerFactory(pionLogs{l: s.Logger}),
	}
	if len(s.PSKIdentityHint) > 0 {
		s.opts = append(s.opts, pdtls.WithPSKIdentityHint(s.PSKIdentityHint))
	}
	if haveCert {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load certificate: %w", err)
		}
		s.opts = append(s.opts, pdtls.WithCertificates(cert))
	}
	switch {
	case s.CAFile != "":
		pool, err := loadPool(s.CAFile)
		if err != nil {
			return nil, err
		}
		auth := pdtls.VerifyClientCertIfGiven
		if s.RequireClientCert {
			auth = pdtls.RequireAndVerifyClientCert
		}
		s.opts = append(s.opts, pdtls.WithClientCAs(pool), pdtls.WithClientAuth(auth))
	case s.RequireClientCert:
		return nil, errors.New("RequireClientCert needs CAFile")
	}
	return s, nil
}

// loadPool reads PEM CA certificates.
func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate", file)
	}
	return pool, nil
}

// pionLogs routes pion's logs to slog at debug level: pion logs per-packet
// events that a peer controls, so nothing it says may be louder than debug.
// One logger value serves every connection, so no association pays for it.
type pionLogs struct{ l *slog.Logger }

// NewLogger returns the one shared logger.
func (p pionLogs) NewLogger(string) logging.LeveledLogger { return p }

func (p pionLogs) log(msg string) { p.l.Debug(msg, "component", "pion") }

func (p pionLogs) logf(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.log(fmt.Sprintf(format, args...))
	}
}

// Trace drops pion's trace output.
func (p pionLogs) Trace(string) {}

// Tracef drops pion's trace output.
func (p pionLogs) Tracef(string, ...any) {}

// Debug logs at debug level.
func (p pionLogs) Debug(m string) { p.log(m) }

// Debugf logs at debug level.
func (p pionLogs) Debugf(f string, a ...any) { p.logf(f, a...) }

// Info logs at debug level.
func (p pionLogs) Info(m string) { p.log(m) }

// Infof logs at debug level.
func (p pionLogs) Infof(f string, a ...any) { p.logf(f, a...) }

// Warn logs at debug level: a peer can trigger pion's warnings.
func (p pionLogs) Warn(m string) { p.log(m) }

// Warnf logs at debug level: a peer can trigger pion's warnings.
func (p pionLogs) Warnf(f string, a ...any) { p.logf(f, a...) }

// Error logs at debug level: a peer can trigger pion's errors.
func (p pionLogs) Error(m string) { p.log(m) }

// Errorf logs at debug level: a peer can trigger pion's errors.
func (p pionLogs) Errorf(f string, a ...any) { p.logf(f, a...) }
