package dtls

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sngate/sngate/transport"
)

// IdentityKind says how a peer authenticated.
type IdentityKind uint8

// Identity kinds.
const (
	// IdentityNone: a certificate suite without a client certificate
	// (allowed when RequireClientCert is false).
	IdentityNone IdentityKind = iota
	// IdentityPSK: the identity is the PSK identity the client sent.
	IdentityPSK
	// IdentityCertificate: the identity comes from the client certificate.
	IdentityCertificate
)

// String returns "none", "psk" or "certificate".
func (k IdentityKind) String() string {
	switch k {
	case IdentityPSK:
		return "psk"
	case IdentityCertificate:
		return "certificate"
	}
	return "none"
}

// PeerInfo describes an established association.
type PeerInfo struct {
	// Identity is what PeerIdentity returns: the PSK identity verbatim, or
	// the client certificate's subject Common Name, or, for a certificate
	// without a Common Name, its whole subject in RFC 2253 form
	// (pkix.Name.String, e.g. "O=Acme,C=DE").
	Identity string
	// Kind says which of those Identity is.
	Kind IdentityKind
	// Subject is the full RFC 2253 subject of the client certificate.
	Subject string
	// Remote is the peer's current UDP endpoint, where replies go. With
	// Connection IDs it follows the peer when its NAT mapping changes.
	Remote netip.AddrPort
	// CipherSuite is the IANA name of the negotiated suite.
	CipherSuite string
	// ConnectionID reports that the client sends the Connection ID this
	// listener issued (RFC 9146), so it survives address changes.
	ConnectionID bool
	// Established is when the handshake completed.
	Established time.Time
}

// PeerIdentity implements transport.Identifier: it returns the
// authenticated identity of an established association (see
// PeerInfo.Identity). ok is false for an unknown Addr and for a
// certificate handshake in which the client presented no certificate.
func (l *Listener) PeerIdentity(a transport.Addr) (string, bool) {
	info, ok := l.Peer(a)
	if !ok || info.Kind == IdentityNone {
		return "", false
	}
	return info.Identity, true
}

// Peer returns what is known about an established association.
func (l *Listener) Peer(a transport.Addr) (PeerInfo, bool) {
	id, ok := idFromAddr(a)
	if !ok {
		return PeerInfo{}, false
	}
	l.mu.RLock()
	as := l.byID[id]
	l.mu.RUnlock()
	if as == nil {
		return PeerInfo{}, false
	}
	p := as.info.Load()
	if p == nil {
		return PeerInfo{}, false
	}
	info := *p
	if ua, ok := as.conn.RemoteAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		info.Remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return info, true
}

// Binding grants one authenticated identity the MQTT-SN client IDs it may
// use in CONNECT.
type Binding struct {
	// Identity is a PSK identity or certificate identity as PeerIdentity
	// returns it. "*" makes the binding apply to every identity that has
	// no binding of its own.
	Identity string
	// ClientIDs lists what the identity may use: an exact client ID,
	// "prefix*" for any ID starting with prefix, "*" for any ID, or
	// "{identity}" for the ID equal to the identity itself.
	ClientIDs []string
}

// Bindings decides which client IDs an authenticated identity may use.
// Build it with NewBindings; it is read-only afterwards and safe for
// concurrent use. A nil *Bindings allows nothing.
type Bindings struct {
	m   map[string][]string
	any []string // the "*" binding; nil when absent
}

// NewBindings checks and indexes a binding list. An identity may appear
// only once; empty identities and patterns are rejected.
func NewBindings(list []Binding) (*Bindings, error) {
	b := &Bindings{m: make(map[string][]string, len(list))}
	for _, e := range list {
		if e.Identity == "" {
			return nil, errors.New("dtls bindings: empty identity")
		}
		if len(e.ClientIDs) == 0 {
			return nil, fmt.Errorf("dtls bindings: identity %q has no client IDs", e.Identity)
		}
		for _, p := range e.ClientIDs {
			if p == "" {
				return nil, fmt.Errorf("dtls bindings: identity %q: empty client ID pattern", e.Identity)
			}
		}
		ids := append([]string(nil), e.ClientIDs...)
		if e.Identity == "*" {
			if b.any != nil {
				return nil, errors.New(`dtls bindings: duplicate identity "*"`)
			}
			b.any = ids
			continue
		}
		if _, dup := b.m[e.Identity]; dup {
			return nil, fmt.Errorf("dtls bindings: duplicate identity %q", e.Identity)
		}
		b.m[e.Identity] = ids
	}
	return b, nil
}

// Allowed reports whether identity may connect as clientID. An identity
// with no binding of its own falls back to the "*" binding, if any, and is
// otherwise refused. An empty identity is always refused.
func (b *Bindings) Allowed(identity, clientID string) bool {
	if b == nil || identity == "" {
		return false
	}
	pats, ok := b.m[identity]
	if !ok {
		pats = b.any
	}
	for _, p := range pats {
		switch {
		case p == "*":
			return true
		case p == "{identity}":
			if clientID == identity {
				return true
			}
		case strings.HasSuffix(p, "*"):
			if strings.HasPrefix(clientID, p[:len(p)-1]) {
				return true
			}
		case p == clientID:
			return true
		}
	}
	return false
}
