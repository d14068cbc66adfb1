package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"time"

	"github.com/sngate/sngate/transport"
)

// Config holds every setting and bound of the gateway. It is a plain
// struct: the command line fills it from a config file. Start from
// DefaultConfig; New fills zero numeric fields with their defaults.
type Config struct {
	// GatewayID is the GwId sent in ADVERTISE and GWINFO.
	GatewayID uint8
	// Shards is the number of worker goroutines that own clients
	// (default GOMAXPROCS).
	Shards int
	// InboxSize bounds each shard's queue of frames and deliveries
	// (default 4096). Frames beyond it are dropped and counted.
	InboxSize int

	// MaxClients bounds the clients the gateway tracks: connected, asleep,
	// awake or in the middle of CONNECT. CONNACK "congestion" beyond it.
	MaxClients int
	// MaxClientIDLength bounds the CONNECT ClientId in bytes (MQTT-SN
	// 1.2 says 23; default 64). Longer ones get CONNACK "not supported".
	MaxClientIDLength int
	// MaxTopicIDs bounds the normal topic IDs registered per client, in
	// both directions (default 64). REGISTER beyond it gets REGACK
	// "congestion"; the gateway reuses its own oldest ID instead.
	MaxTopicIDs int
	// MaxPacketSize bounds frames in both directions (default 1500, and
	// never above a link's MTU).
	MaxPacketSize int

	// MaxPendingConnectsPerSource bounds the CONNECTs from one source IP
	// that are in the will dialogue at the same time (default 16).
	MaxPendingConnectsPerSource int
	// NewClientRate is the sustained rate of new clients accepted per
	// source IP per second, and NewClientBurst the burst (defaults 50
	// and 500). A new client beyond them gets CONNACK "congestion".
	NewClientRate  float64
	NewClientBurst int
	// MaxSources bounds the source IPs tracked for the two limits above
	// (default 100000); sources beyond it are not limited.
	MaxSources int

	// RetryInterval is T_RETRY, the time the gateway waits for an answer
	// to its own REGISTER, PUBLISH, PUBREL, WILLTOPICREQ and WILLMSGREQ
	// before resending them (default 10 s). MaxRetries is N_RETRY: after
	// that many resends the client is lost (default 4).
	RetryInterval time.Duration
	MaxRetries    int
	// KeepAliveTolerance multiplies a client's keep-alive period before
	// the client is declared lost (default 1.5).
	KeepAliveTolerance float64
	// SleepTolerance multiplies a client's sleep duration before the
	// sleeping client is declared lost (default 1.5).
	SleepTolerance float64

	// AdvertiseInterval is T_ADV: the period of ADVERTISE on links that
	// can broadcast. 0 (the default) sends none.
	AdvertiseInterval time.Duration

	// Predefined are the topic IDs every client may use without REGISTER.
	Predefined []TopicConfig
	// Clients is the client allow-list: per-client predefined topics and
	// QoS -1 rights. Client IDs are case-sensitive.
	Clients []ClientConfig
	// RestrictClients turns the allow-list on: a CONNECT whose ClientId
	// is not in Clients gets CONNACK "not supported".
	RestrictClients bool
	// AllowQoSMinus1 lets any sender publish with QoS -1. Otherwise only
	// Clients entries with QoSMinus1 set may, matched by Address.
	AllowQoSMinus1 bool
	// QoSMinus1Identity is the identity (client ID for the broker's ACL)
	// of QoS -1 publishes from senders without a Clients entry (default
	// "sn-qos-1").
	QoSMinus1Identity string

	// Forwarders lists the addresses (ip or ip:port) allowed to send
	// encapsulated frames. Empty allows any sender. It applies to IP
	// peers (and refuses forwarders on links that authenticate peers,
	// whose addresses are not IP); senders on links without IP addresses,
	// such as a serial bridge MCU or radio nodes, are always allowed
	// unless DisableForwarders is set.
	Forwarders []string
	// DisableForwarders drops every encapsulated frame.
	DisableForwarders bool
	// LinkPolicies give links that authenticate peers (DTLS) their own
	// identity policy: on such a link, a CONNECT or PINGREQ(ClientId) is
	// admitted only if the link's Allowed function accepts the peer's
	// authenticated identity (transport.Identifier) for the ClientId.
	// Identities thus belong to one listener: a PSK identity known to two
	// DTLS listeners grants on each only what that listener's policy says.
	// A refused CONNECT gets CONNACK "not supported"; a refused
	// PINGREQ(ClientId) is ignored, so the session and its address binding
	// stay as they were. Both are counted in Stats.RejectIdentity and
	// logged with the link, peer, identity and client ID. A peer without
	// an identity (a certificate suite with no client certificate) is
	// always refused. A client connected over a link that authenticates
	// peers cannot be taken over or woken from a link that does not (plain
	// UDP, serial): such a CONNECT or PINGREQ(ClientId) is refused the same
	// way. Each Link must be one of the links given to New and
	// must implement transport.Identifier; at most one policy per link.
	// For a DTLS listener, Allowed is typically (*dtls.Bindings).Allowed.
	LinkPolicies []LinkPolicy
	// Identities is the global identity policy, used on links that
	// authenticate peers but have no entry in LinkPolicies (kept for
	// compatibility; with more than one such link, prefer LinkPolicies,
	// since every listener then shares this table). It binds identities
	// (DTLS PSK identity or certificate identity) to the client IDs they
	// may use; a ClientIDs entry "*" allows any. An identity not listed
	// may use nothing, so an authenticating link with neither a
	// LinkPolicy nor Identities admits no client.
	Identities []IdentityConfig

	// Logger receives one info line per client state change and debug
	// lines per frame; nil uses slog.Default().
	Logger *slog.Logger

	// second is the unit of the protocol's Duration fields; tests shorten
	// it. Zero means time.Second.
	second time.Duration
}

// TopicConfig is a predefined topic: an ID known to both sides.
type TopicConfig struct {
	ID   uint16
	Name string
}

// ClientConfig is one allow-list entry.
type ClientConfig struct {
	// ID is the client ID (case-sensitive).
	ID string
	// Address optionally identifies the client's QoS -1 publishes
	// (ip:port or ip), which carry no ClientId.
	Address string
	// QoSMinus1 allows QoS -1 publishes from Address.
	QoSMinus1 bool
	// Predefined are topic IDs only this client uses; they take
	// precedence over the global ones.
	Predefined []TopicConfig
}

// IdentityConfig maps an authenticated link identity to client IDs.
type IdentityConfig struct {
	// Identity is the authenticated identity, as the link's
	// transport.Identifier reports it.
	Identity string
	// ClientIDs are the exact client IDs the identity may use; "*"
	// allows any.
	ClientIDs []string
}

// LinkPolicy is the identity policy of one link that authenticates peers
// (see Config.LinkPolicies).
type LinkPolicy struct {
	// Link is the link the policy applies to, one of those given to New.
	Link transport.Link
	// Allowed reports whether a peer authenticated as identity may use
	// clientID in CONNECT or PINGREQ(ClientId). It is called from the
	// gateway's shard goroutines, possibly concurrently, and must not
	// block. Identity is never empty.
	Allowed func(identity, clientID string) bool
}

// DefaultConfig returns the out-of-the-box configuration.
func DefaultConfig() Config {
	return Config{
		GatewayID:                   1,
		Shards:                      runtime.GOMAXPROCS(0),
		InboxSize:                   4096,
		MaxClients:                  250000,
		MaxClientIDLength:           64,
		MaxTopicIDs:                 64,
		MaxPacketSize:               1500,
		MaxPendingConnectsPerSource: 16,
		NewClientRate:               50,
		NewClientBurst:              500,
		MaxSources:                  100000,
		RetryInterval:               10 * time.Second,
		MaxRetries:                  4,
		KeepAliveTolerance:          1.5,
		SleepTolerance:              1.5,
		QoSMinus1Identity:           "sn-qos-1",
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	defaultIfUnset(&c.Shards, d.Shards)
	defaultIfUnset(&c.InboxSize, d.InboxSize)
	defaultIfUnset(&c.MaxClients, d.MaxClients)
	defaultIfUnset(&c.MaxClientIDLength, d.MaxClientIDLength)
	defaultIfUnset(&c.MaxTopicIDs, d.MaxTopicIDs)
	if c.MaxTopicIDs > 0xFFFE {
		c.MaxTopicIDs = 0xFFFE
	}
	defaultIfUnset(&c.MaxPacketSize, d.MaxPacketSize)
	defaultIfUnset(&c.MaxPendingConnectsPerSource, d.MaxPendingConnectsPerSource)
	defaultIfUnset(&c.NewClientRate, d.NewClientRate)
	defaultIfUnset(&c.NewClientBurst, d.NewClientBurst)
	defaultIfUnset(&c.MaxSources, d.MaxSources)
	defaultIfUnset(&c.RetryInterval, d.RetryInterval)
	defaultIfUnset(&c.MaxRetries, d.MaxRetries)
	if c.KeepAliveTolerance < 1 {
		c.KeepAliveTolerance = d.KeepAliveTolerance
	}
	if c.SleepTolerance < 1 {
		c.SleepTolerance = d.SleepTolerance
	}
	if c.QoSMinus1Identity == "" {
		c.QoSMinus1Identity = d.QoSMinus1Identity
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.second <= 0 {
		c.second = time.Second
	}
	return c
}

// topicTable maps predefined topic IDs to names and back.
type topicTable struct {
	byID   map[uint16]string
	byName map[string]uint16
}

func newTopicTable(ts []TopicConfig) (*topicTable, error) {
	t := &topicTable{byID: make(map[uint16]string, len(ts)), byName: make(map[string]uint16, len(ts))}
	for _, p := range ts {
		if p.ID == 0 || p.ID == 0xFFFF {
			return nil, fmt.Errorf("predefined topic %q: ID %d is reserved", p.Name, p.ID)
		}
		if p.Name == "" || strings.ContainsAny(p.Name, "+#") {
			return nil, fmt.Errorf("predefined topic ID %d: invalid name %q", p.ID, p.Name)
		}
		if _, dup := t.byID[p.ID]; dup {
			return nil, fmt.Errorf("predefined topic ID %d defined twice", p.ID)
		}
		t.byID[p.ID] = p.Name
		if _, dup := t.byName[p.Name]; !dup {
			t.byName[p.Name] = p.ID
		}
	}
	return t, nil
}

// clientPolicy is the compiled allow-list entry of one client.
type clientPolicy struct {
	id         string
	qosMinus1  bool
	predefined *topicTable
}

// policy is the compiled admission configuration. It is immutable; Reload
// replaces it as a whole (reload.go).
type policy struct {
	global     *topicTable
	clients    map[string]*clientPolicy
	byAddrPort map[netip.AddrPort]*clientPolicy // QoS -1 senders
	byAddr     map[netip.Addr]*clientPolicy
	fwdAny     bool
	fwdOff     bool // Config.DisableForwarders
	fwdAddr    map[netip.Addr]bool
	fwdPort    map[netip.AddrPort]bool
	identities map[string]map[string]bool
}

func compilePolicy(c *Config) (*policy, error) {
	var err error
	p := &policy{
		clients:    make(map[string]*clientPolicy),
		byAddrPort: make(map[netip.AddrPort]*clientPolicy),
		byAddr:     make(map[netip.Addr]*clientPolicy),
		fwdAddr:    make(map[netip.Addr]bool),
		fwdPort:    make(map[netip.AddrPort]bool),
		identities: make(map[string]map[string]bool),
		fwdAny:     len(c.Forwarders) == 0,
		fwdOff:     c.DisableForwarders,
	}
	if p.global, err = newTopicTable(c.Predefined); err != nil {
		return nil, err
	}
	for _, cc := range c.Clients {
		if cc.ID == "" {
			return nil, errors.New("client allow-list entry with an empty ID")
		}
		if _, dup := p.clients[cc.ID]; dup {
			return nil, fmt.Errorf("client %q listed twice", cc.ID)
		}
		cp := &clientPolicy{id: cc.ID, qosMinus1: cc.QoSMinus1}
		if cp.predefined, err = newTopicTable(cc.Predefined); err != nil {
			return nil, fmt.Errorf("client %q: %w", cc.ID, err)
		}
		p.clients[cc.ID] = cp
		if cc.Address != "" {
			if ap, err := netip.ParseAddrPort(cc.Address); err == nil {
				p.byAddrPort[unmapAP(ap)] = cp
			} else if a, err := netip.ParseAddr(cc.Address); err == nil {
				p.byAddr[a.Unmap()] = cp
			} else {
				return nil, fmt.Errorf("client %q: address %q: want ip or ip:port", cc.ID, cc.Address)
			}
		}
	}
	for _, f := range c.Forwarders {
		if ap, err := netip.ParseAddrPort(f); err == nil {
			p.fwdPort[unmapAP(ap)] = true
		} else if a, err := netip.ParseAddr(f); err == nil {
			p.fwdAddr[a.Unmap()] = true
		} else {
			return nil, fmt.Errorf("forwarder %q: want ip or ip:port", f)
		}
	}
	for _, id := range c.Identities {
		m := p.identities[id.Identity]
		if m == nil {
			m = make(map[string]bool)
			p.identities[id.Identity] = m
		}
		for _, cid := range id.ClientIDs {
			m[cid] = true
		}
	}
	return p, nil
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// senderPolicy returns the allow-list entry that matches a QoS -1 sender.
func (p *policy) senderPolicy(ap netip.AddrPort, ok bool) *clientPolicy {
	if !ok {
		return nil
	}
	if cp := p.byAddrPort[ap]; cp != nil {
		return cp
	}
	return p.byAddr[ap.Addr()]
}

// forwarderAllowed reports whether a forwarder at ap may relay frames.
func (p *policy) forwarderAllowed(ap netip.AddrPort, ok bool) bool {
	if p.fwdAny {
		return true
	}
	return ok && (p.fwdPort[ap] || p.fwdAddr[ap.Addr()])
}

// identityAllows reports whether identity may use clientID.
func (p *policy) identityAllows(identity, clientID string) bool {
	m := p.identities[identity]
	return m != nil && (m["*"] || m[clientID])
}

// sameLink reports whether a and b are the same link. == on interface
// values panics when their dynamic type (or a value inside it) is not
// comparable; such values are reported as different.
func sameLink(a, b transport.Link) (same bool) {
	ta := reflect.TypeOf(a)
	if ta == nil || ta != reflect.TypeOf(b) || !ta.Comparable() {
		return false
	}
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// defaultIfUnset sets *v to def when *v is zero or negative (unset).
func defaultIfUnset[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
