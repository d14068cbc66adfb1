package dtls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"time"

	pdtls "github.com/pion/dtls/v3"
)

// Routing: the socket's one reader hands each datagram to an association,
// and the bookkeeping that moves associations between the listener's maps.

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
	if state == statePending && len(b) > 0 && b[0] == contentChangeCipher {
		a.finSent.Store(true)
	}
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
