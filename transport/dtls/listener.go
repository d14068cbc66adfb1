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
// new handshake always gets a new Addr. PeerIdentity (transport.Identifier)
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
// An idle association has no timer and no read deadline: its goroutines
// (pion's two, pion's read-context watcher and this package's one) block on
// channels. One sweeper per listener closes associations idle for longer
// than Config.IdleTimeout.
package dtls

import (
	"bytes"
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
		log:    s.Logger.With("link", s.Name),
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
		if errors.Is(err, pdtls.ErrConnClosed) {
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

func (l *Listener) readLoop() {
	defer l.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, src, err := l.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Debug("dtls socket read", "err", err)
			continue
		}
		l.ctr.datagramsIn.Add(1)
		l.route(buf[:n], netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
	}
}

func (l *Listener) event(ev string) {
	if l.trace != nil {
		l.trace(ev)
	}
}

// route hands one datagram to its association, or starts one. It never
// blocks on an association.
func (l *Listener) route(d []byte, src netip.AddrPort) {
	if len(d) < recordHeaderLen || len(d) > maxDatagram {
		l.ctr.dropMalformed.Add(1)
		l.event("malformed")
		return
	}
	now := time.Now().UnixNano()
	if cid, ok := recordCID(d, l.cfg.cidLen); ok {
		l.mu.RLock()
		a := l.byCID[string(cid)]
		if a == nil {
			a = l.byAddr[src]
		}
		l.mu.RUnlock()
		l.deliver(a, d, src, now)
		return
	}
	h, isHello := parseClientHello(d)
	if !isHello {
		l.mu.RLock()
		a := l.byAddr[src]
		if a == nil {
			a = l.hello[src]
		}
		l.mu.RUnlock()
		l.deliver(a, d, src, now)
		return
	}
	l.routeHello(d, src, h, now)
}

func (l *Listener) deliver(a *assoc, d []byte, src netip.AddrPort, now int64) {
	switch {
	case a == nil:
		l.ctr.dropUnknownSource.Add(1)
		l.event("unknown")
	case !a.push(d, src, now):
		l.ctr.dropPeerQueue.Add(1)
		l.event("peer-queue")
	}
}

// routeHello routes an epoch-0 ClientHello (RFC 6347, sections 4.2.1 and
// 4.2.8).
func (l *Listener) routeHello(d []byte, src netip.AddrPort, h helloInfo, now int64) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return
	}
	var target *assoc
	switch hello := l.hello[src]; {
	case !h.first: // a later fragment: to whoever is shaking hands
		target = hello
		if target == nil {
			if a := l.byAddr[src]; a != nil && a.state == statePending {
				target = a
			}
		}
	case len(h.cookie) == 0: // a first ClientHello, or its retransmission
		target = hello
		if target == nil {
			target = l.newHello(src)
		}
	case hello != nil: // the cookie echo
		if hello.cookie == nil || !bytes.Equal(hello.cookie, h.cookie) {
			l.mu.Unlock()
			l.ctr.dropBadCookie.Add(1)
			l.event("bad-cookie")
			return
		}
		old, ok := l.promote(hello, src)
		l.mu.Unlock()
		if !ok {
			return
		}
		if old != nil {
			l.ctr.replaced.Add(1)
			l.closeLater(old)
		}
		l.deliver(hello, d, src, now)
		l.event("promoted")
		return
	default: // a retransmitted cookie echo during the handshake
		if a := l.byAddr[src]; a != nil && a.state == statePending {
			target = a
		}
	}
	l.mu.Unlock()
	if target == nil && len(h.cookie) > 0 {
		l.ctr.dropBadCookie.Add(1)
		l.event("bad-cookie")
		return
	}
	l.deliver(target, d, src, now)
}

// newHello starts an unverified association for src. l.mu is held.
func (l *Listener) newHello(src netip.AddrPort) *assoc {
	if len(l.hello) >= l.cfg.MaxUnverified {
		if e := l.helloQ.Front(); e != nil {
			old := e.Value.(*assoc)
			old.reason = reasonEvicted
			l.detach(old)
			l.ctr.unverifiedEvicted.Add(1)
			l.closeLater(old)
			l.warnf("unverified-full", "dtls unverified ClientHellos at bound, evicting oldest",
				"max_unverified", l.cfg.MaxUnverified)
		}
	}
	l.nextID++
	if l.nextID == 0 {
		l.nextID++
	}
	a := newAssoc(l, l.nextID, src)
	conn, err := pdtls.ServerWithOptions((*peerConn)(a), a.lastUDP, a.serverOptions()...)
	if err != nil {
		l.log.Error("dtls new server conn", "err", err)
		return nil
	}
	a.conn = conn
	a.state = stateUnverified
	l.hello[src] = a
	a.helloEl = l.helloQ.PushBack(a)
	l.wg.Add(1)
	go a.run()
	l.event("hello")
	return a
}

// promote moves an unverified association whose cookie came back to
// pending, if the bounds allow. It returns an association it displaced
// from src, which the caller closes. l.mu is held.
func (l *Listener) promote(a *assoc, src netip.AddrPort) (*assoc, bool) {
	old := l.byAddr[src]
	pending, total := l.nPending, l.nPending+l.nActive
	if old != nil {
		total--
		if old.state == statePending {
			pending--
		}
	}
	if pending >= l.cfg.MaxPending {
		l.ctr.dropPendingFull.Add(1)
		l.event("pending-full")
		l.warnf("pending-full", "dtls pending handshakes at bound, dropping ClientHello",
			"max_pending", l.cfg.MaxPending)
		return nil, false
	}
	if total >= l.cfg.MaxAssociations {
		l.ctr.dropMaxAssociations.Add(1)
		l.event("max-associations")
		l.warnf("max-associations", "dtls associations at bound, dropping ClientHello",
			"max_associations", l.cfg.MaxAssociations)
		return nil, false
	}
	if old != nil {
		old.reason = reasonReplaced
		l.detach(old)
	}
	delete(l.hello, src)
	l.helloQ.Remove(a.helloEl)
	a.helloEl = nil
	a.state = statePending
	a.verified.Store(true)
	l.nPending++
	l.byAddr[src] = a
	a.mapped = true
	if l.cfg.cidLen > 0 {
		cid := make([]byte, l.cfg.cidLen)
		for range 8 {
			_, _ = rand.Read(cid)
			if l.byCID[string(cid)] == nil {
				a.cid = cid
				l.byCID[string(cid)] = a
				break
			}
		}
	}
	return old, true
}

// detach removes a from every map and fixes the gauges. l.mu is held.
func (l *Listener) detach(a *assoc) {
	switch a.state {
	case stateClosed:
		return
	case stateUnverified:
		if l.hello[a.remote] == a {
			delete(l.hello, a.remote)
		}
		if a.helloEl != nil {
			l.helloQ.Remove(a.helloEl)
			a.helloEl = nil
		}
	case statePending:
		l.nPending--
	case stateEstablished:
		l.nActive--
		delete(l.byID, a.id)
		if a.reason == reasonNone {
			l.ctr.peerClosed.Add(1)
		}
	}
	if a.mapped && l.byAddr[a.remote] == a {
		delete(l.byAddr, a.remote)
	}
	a.mapped = false
	if a.cid != nil && l.byCID[string(a.cid)] == a {
		delete(l.byCID, string(a.cid))
	}
	a.state = stateClosed
}

// release runs when pion closes an association's conn.
func (l *Listener) release(a *assoc) {
	l.mu.Lock()
	l.detach(a)
	l.mu.Unlock()
	a.once.Do(func() { close(a.done) })
}

// closeLater closes an association's pion conn without blocking the
// caller (the read loop). Called from a goroutine counted in l.wg.
func (l *Listener) closeLater(a *assoc) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = a.conn.Close()
	}()
}

// noteWrite watches what pion sends: it records the HelloVerifyRequest
// cookie of an unverified association, and follows an authenticated
// address change.
func (l *Listener) noteWrite(a *assoc, b []byte, to netip.AddrPort) {
	l.mu.RLock()
	state, remote := a.state, a.remote
	l.mu.RUnlock()
	if state == stateUnverified {
		if cookie, ok := parseHelloVerifyRequest(b); ok {
			l.mu.Lock()
			a.cookie = bytes.Clone(cookie)
			l.mu.Unlock()
		}
	}
	if to == remote || state == stateClosed || state == stateUnverified {
		return
	}
	l.mu.Lock()
	if a.state != stateClosed && a.remote != to {
		if a.mapped && l.byAddr[a.remote] == a {
			delete(l.byAddr, a.remote)
		}
		a.mapped = false
		from := a.remote
		a.remote = to
		if l.byAddr[to] == nil {
			l.byAddr[to] = a
			a.mapped = true
		}
		l.log.Debug("dtls peer moved", "peer", a.addr.String(), "from", from.String(), "to", to.String())
		l.event("moved")
	}
	l.mu.Unlock()
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
