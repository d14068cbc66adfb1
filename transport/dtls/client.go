package dtls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	pdtls "github.com/pion/dtls/v3"
)

// ClientConfig configures a DTLS client (sngate pub/sub --dtls, tests).
// Set PSKIdentity and PSK for a PSK handshake, or CAFile (and optionally
// CertFile and KeyFile) for a certificate handshake.
type ClientConfig struct {
	// PSKIdentity and PSK are the identity sent and the raw key.
	PSKIdentity string
	PSK         []byte
	// CAFile holds the CA certificates (PEM) the server certificate must
	// chain to. Empty uses the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and key (PEM), sent
	// when the server asks for one.
	CertFile string
	KeyFile  string
	// ServerName is checked against the server certificate; Dial defaults
	// it to the host of the address (an IP literal checks IP SANs).
	ServerName string
	// ConnectionID offers Connection ID support (RFC 9146): the client
	// sends the server's CID in its records, so the server still finds it
	// after a NAT rebinding. The client asks for no CID of its own.
	ConnectionID bool
	// CipherSuites names the offered suites as in Config.CipherSuites;
	// empty offers DefaultCipherSuites usable with the credentials given.
	CipherSuites []string
}

// Dial opens a UDP socket and runs a DTLS handshake with addr. ctx bounds
// the handshake only. The returned net.Conn has datagram semantics: each
// Write sends one record and each Read returns one record (a buffer too
// small for it fails the Read and loses the record). Closing it closes the
// socket.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (net.Conn, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dtls dial %s: %w", addr, err)
	}
	network := "udp6"
	if raddr.IP.To4() != nil {
		network = "udp4"
	}
	pc, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("dtls dial %s: %w", addr, err)
	}
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	c, err := Client(ctx, pc, raddr, cfg)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("dtls dial %s: %w", addr, err)
	}
	return c, nil
}

// Client runs a DTLS handshake with raddr over pc, which it takes over:
// pc is closed with the returned conn, or on error. It serves callers that
// own the socket (a test that changes its source port, a radio bridge).
func Client(ctx context.Context, pc net.PacketConn, raddr net.Addr, cfg ClientConfig) (net.Conn, error) {
	opts, err := cfg.options()
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("dtls client: %w", err)
	}
	conn, err := pdtls.ClientWithOptions(pc, raddr, opts...)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("dtls client: %w", err)
	}
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("dtls handshake with %s: %w", raddr, err)
	}
	return conn, nil
}

func (cfg ClientConfig) options() ([]pdtls.ClientOption, error) {
	havePSK := cfg.PSKIdentity != "" || len(cfg.PSK) > 0
	if havePSK && (cfg.PSKIdentity == "" || len(cfg.PSK) == 0) {
		return nil, errors.New("PSKIdentity and PSK go together")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("CertFile and KeyFile go together")
	}
	// Certificate suites need no client certificate; offer them unless
	// this is a PSK-only client.
	haveCert := !havePSK || cfg.CAFile != "" || cfg.CertFile != "" || len(cfg.CipherSuites) > 0
	ids, err := cipherSuites(cfg.CipherSuites, havePSK, haveCert)
	if err != nil {
		return nil, err
	}
	opts := []pdtls.ClientOption{
		pdtls.WithCipherSuites(ids...),
		pdtls.WithExtendedMasterSecret(pdtls.RequestExtendedMasterSecret),
		pdtls.WithMTU(pionMTU),
	}
	if cfg.ServerName != "" {
		opts = append(opts, pdtls.WithServerName(cfg.ServerName))
	}
	if havePSK {
		key := append([]byte(nil), cfg.PSK...)
		opts = append(opts,
			pdtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
			pdtls.WithPSKIdentityHint([]byte(cfg.PSKIdentity)))
	}
	if cfg.CAFile != "" {
		pool, err := loadPool(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, pdtls.WithRootCAs(pool))
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		opts = append(opts, pdtls.WithCertificates(cert))
	}
	if cfg.ConnectionID {
		opts = append(opts, pdtls.WithConnectionIDGenerator(pdtls.OnlySendCIDGenerator()))
	}
	return opts, nil
}
