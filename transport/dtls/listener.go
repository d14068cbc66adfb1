// Package dtls implements transport.Link as a DTLS 1.2 server, with
// github.com/pion/dtls/v3 doing the protocol work: PSK and X.509
// authentication, and Connection IDs (RFC 9146) so a sensor whose NAT
// mapping changes keeps its association.
//
// # Addresses
//
// Every association is one peer. The transport.Addr that ReadFrom returns
// names the association, not the UDP endpoint: it stays the same when a
// client that negotiated a Connection ID reappears from a new port, and a
// new handshake always gets a new Addr. Such a move takes effect before
// ReadFrom returns the first authenticated record from the new port, so a
// reply to it goes to the new port; a datagram that fails authentication
// or replays an old record moves nothing. PeerIdentity (transport.Identifier)
// returns who authenticated on it.
//
// # Routing and denial of service
//
// One goroutine reads the socket and routes each datagram, without
// blocking, to its association's bounded queue: by Connection ID for
// tls12_cid records, otherwise by source address. A first ClientHello from
// an unknown address starts an association whose handshake runs in its own
// goroutine, so a silent peer delays nobody. pion answers with a
// HelloVerifyRequest; until the client echoes that cookie the association
// is "unverified", bounded by Config.MaxUnverified with the oldest evicted,
// and it holds no pending-handshake slot. A ClientHello carrying the right
// cookie promotes it to "pending" (bounded by Config.MaxPending; beyond it
// the ClientHello is dropped, counted, and retried by the client), and
// established plus pending associations are bounded by
// Config.MaxAssociations. pion keeps its cookie state per connection, so
// an unverified ClientHello does cost a pion Conn and its goroutines until
// it is evicted or Config.HandshakeTimeout passes; it never costs a slot.
//
// # Idle associations
//
// An idle association has no timer and no read deadline: its four
// goroutines (pion's handshake state machine and read loop, the read-context
// watcher pion starts per read, and this package's reader) block on
// channels. It costs about 38 KB, about 17 KB of it goroutine stacks and
// 8 KiB the buffer pion's blocked read loop holds (TestIdleAssociationCost
// measures it). One sweeper per listener closes associations idle for
// longer than Config.IdleTimeout.
package dtls

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	pdtls "github.com/pion/dtls/v3"
	"github.com/pion/transport/v5/netctx"

	"github.com/sngate/sngate/transport"
)

// ErrNoAssociation is returned by WriteTo for an Addr with no established
// association (never established, expired, or closed by the peer).
var ErrNoAssociation = errors.New("dtls: no such association")

// Listener is a DTLS server transport.Link. It also implements
// transport.Identifier.
type Listener struct {
	cfg  *settings
	pc   *net.UDPConn
	log  *slog.Logger
	warn limiter

	mu       sync.RWMutex
	byAddr   map[netip.AddrPort]*assoc // pending and established, by endpoint
	byCID    map[string]*assoc         // by issued Connection ID
	byID     map[uint64]*assoc         // established, by Addr
	hello    map[netip.AddrPort]*assoc // unverified, by endpoint
	helloQ   list.List                 // unverified, oldest first
	nPending int
	nActive  int
	nextID   uint64
	closing  bool

	in        chan frame
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	ctr       counters

	// trace, when set (tests), is told about routing events.
	trace func(event string)
}

var (
	_ transport.Link       = (*Listener)(nil)
	_ transport.Identifier = (*Listener)(nil)
)

// Listen opens the UDP socket and starts serving DTLS on it.
func Listen(cfg Config) (*Listener, error) { return listen(cfg, nil) }

// listen is Listen with a trace hook for tests.
func listen(cfg Config, trace func(string)) (*Listener, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("dtls listen %s: %w", cfg.Addr, err)
	}
	ua, err := net.ResolveUDPAddr(s.Network, s.Addr)
	if err != nil {
		return nil, fmt.Errorf("dtls listen %s: %w", s.Addr, err)
	}
	pc, err := net.ListenUDP(s.Network, ua)
	if err != nil {
		return nil, fmt.Errorf("dtls listen %s: %w", s.Addr, err)
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // never fails (crypto/rand)
	l := &Listener{
		cfg:    s,
		pc:     pc,
		log:    s.Logger,
		byAddr: make(map[netip.AddrPort]*assoc),
		byCID:  make(map[string]*assoc),
		byID:   make(map[uint64]*assoc),
		hello:  make(map[netip.AddrPort]*assoc),
		nextID: binary.BigEndian.Uint64(seed[:]),
		in:     make(chan frame, s.ReadQueue),
		closed: make(chan struct{}),
		trace:  trace,
	}
	l.wg.Add(2)
	go l.readLoop()
	go l.sweepLoop()
	l.log.Info("dtls listening", "addr", pc.LocalAddr().String(), "psk_identities", len(s.keys),
		"certificate", s.CertFile != "", "cid_len", s.cidLen)
	return l, nil
}

// addrFromID encodes an association number as an 8-byte Addr, a length no
// UDP endpoint has.
func addrFromID(id uint64) transport.Addr {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	a, _ := transport.AddrFromBytes(b[:])
	return a
}

func idFromAddr(a transport.Addr) (uint64, bool) {
	if a.Len() != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(a.Bytes()), true
}

// LocalAddr returns the address the listener is bound to.
func (l *Listener) LocalAddr() netip.AddrPort {
	return l.pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// ReadFrom returns the next decrypted frame and its association's Addr.
func (l *Listener) ReadFrom(p []byte) (int, transport.Addr, error) {
	for {
		select {
		case f := <-l.in:
			if len(f.b) > len(p) {
				l.ctr.dropTooLarge.Add(1)
				continue
			}
			l.ctr.framesIn.Add(1)
			return copy(p, f.b), f.from, nil
		case <-l.closed:
			return 0, transport.Addr{}, fmt.Errorf("dtls read: %w", transport.ErrClosed)
		}
	}
}

// WriteTo encrypts p and sends it on the association to.
func (l *Listener) WriteTo(p []byte, to transport.Addr) error {
	if len(p) > l.cfg.MTU {
		return fmt.Errorf("dtls write %d bytes to %s: %w", len(p), to, transport.ErrTooLarge)
	}
	id, ok := idFromAddr(to)
	l.mu.RLock()
	a := l.byID[id]
	closing := l.closing
	l.mu.RUnlock()
	switch {
	case closing:
		return fmt.Errorf("dtls write to %s: %w", to, transport.ErrClosed)
	case !ok || a == nil:
		return fmt.Errorf("dtls write to %s: %w", to, ErrNoAssociation)
	}
	if _, err := a.conn.Write(p); err != nil {
		// pion reports an association that is ending as ErrConnClosed or,
		// once its transport is closed, as a fatal netctx.ErrClosing (or
		// net.ErrClosed): either way the association is gone, unless the
		// whole listener is.
		if errors.Is(err, pdtls.ErrConnClosed) || errors.Is(err, netctx.ErrClosing) || errors.Is(err, net.ErrClosed) {
			l.mu.RLock()
			closing := l.closing
			l.mu.RUnlock()
			if closing {
				return fmt.Errorf("dtls write to %s: %w", to, transport.ErrClosed)
			}
			return fmt.Errorf("dtls write to %s: %w", to, ErrNoAssociation)
		}
		return fmt.Errorf("dtls write to %s: %w", to, err)
	}
	l.ctr.framesOut.Add(1)
	return nil
}

// Broadcast returns transport.ErrNoBroadcast: DTLS is unicast.
func (l *Listener) Broadcast([]byte) error { return transport.ErrNoBroadcast }

// MTU returns the largest frame the link carries.
func (l *Listener) MTU() int { return l.cfg.MTU }

// Name returns the link's label, "dtls" unless configured.
func (l *Listener) Name() string { return l.cfg.Name }

// Close closes every association (sending close_notify on established
// ones), then the socket, and waits for the listener's goroutines.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closing = true
		all := make(map[*assoc]struct{}, len(l.hello)+len(l.byAddr)+len(l.byID))
		for _, m := range []map[netip.AddrPort]*assoc{l.hello, l.byAddr} {
			for _, a := range m {
				all[a] = struct{}{}
			}
		}
		for _, a := range l.byID {
			all[a] = struct{}{}
		}
		for a := range all {
			a.reason = reasonShutdown
			l.detach(a)
		}
		l.mu.Unlock()
		close(l.closed)
		var wg sync.WaitGroup
		for a := range all {
			wg.Go(func() { _ = a.conn.Close() })
		}
		wg.Wait()
		if cerr := l.pc.Close(); cerr != nil {
			err = fmt.Errorf("dtls close: %w", cerr)
		}
		l.wg.Wait()
	})
	return err
}

// establish records a completed handshake. It reports false if the
// association was closed meanwhile.
func (l *Listener) establish(a *assoc) bool {
	info := PeerInfo{Established: time.Now(), ConnectionID: a.cidUsed.Load()}
	if id := a.ident.Load(); id != nil {
		info.Identity, info.Kind, info.Subject = id.name, id.kind, id.subject
	}
	if st, ok := a.conn.ConnectionState(); ok {
		info.CipherSuite = suiteName(st.CipherSuiteID)
	}
	a.info.Store(&info)
	l.mu.Lock()
	if a.state != statePending {
		l.mu.Unlock()
		return false
	}
	a.state = stateEstablished
	l.nPending--
	l.nActive++
	l.byID[a.id] = a
	if !info.ConnectionID && a.cid != nil && l.byCID[string(a.cid)] == a {
		delete(l.byCID, string(a.cid)) // the client does not use it
		a.cid = nil
	}
	remote := a.remote
	l.mu.Unlock()
	a.up.Store(true)
	select { // let pion's read loop take held datagrams
	case a.rxSig <- struct{}{}:
	default:
	}
	l.ctr.handshakesOK.Add(1)
	l.log.Debug("dtls association established", "peer", a.addr.String(), "remote", remote.String(),
		"identity", info.Identity, "suite", info.CipherSuite, "cid", info.ConnectionID)
	l.event("established")
	return true
}

// handshakeFailed counts a handshake that did not complete.
func (l *Listener) handshakeFailed(a *assoc, err error) {
	l.mu.RLock()
	reason, remote := a.reason, a.remote
	l.mu.RUnlock()
	if !a.verified.Load() {
		if reason == reasonNone {
			l.ctr.unverifiedExpired.Add(1)
		}
		l.event("unverified-ended")
		return
	}
	kind := "other"
	switch {
	case reason != reasonNone:
		kind = "aborted"
		l.ctr.failedAborted.Add(1)
	case errors.Is(err, context.DeadlineExceeded):
		kind = "timeout"
		l.ctr.failedTimeout.Add(1)
	case a.authFailed.Load() || isAuthError(err):
		kind = "auth"
		l.ctr.failedAuth.Add(1)
	default:
		l.ctr.failedOther.Add(1)
	}
	l.log.Debug("dtls handshake failed", "remote", remote.String(), "reason", kind, "err", err)
	l.event("failed-" + kind)
}

// sweepLoop closes idle associations. It is the only timer of the
// listener: associations have none.
func (l *Listener) sweepLoop() {
	defer l.wg.Done()
	every := min(max(l.cfg.IdleTimeout/8, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			l.sweep(now)
		case <-l.closed:
			return
		}
	}
}

func (l *Listener) sweep(now time.Time) {
	cutoff := now.Add(-l.cfg.IdleTimeout).UnixNano()
	var idle []*assoc
	l.mu.Lock()
	for _, a := range l.byID {
		if a.lastSeen.Load() < cutoff {
			a.reason = reasonIdle
			l.detach(a)
			idle = append(idle, a)
		}
	}
	l.mu.Unlock()
	for _, a := range idle {
		l.ctr.idleExpired.Add(1)
		l.log.Debug("dtls association idle, closing", "peer", a.addr.String())
		l.event("idle")
		_ = a.conn.Close()
	}
}

func (l *Listener) warnf(key, msg string, args ...any) {
	if l.warn.allow(key, time.Now()) {
		l.log.Warn(msg, args...)
	}
}
