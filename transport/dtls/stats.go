package dtls

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats are a listener's counters and gauges, for metrics. Counters only
// grow; gauges (the first three fields) are current values.
type Stats struct {
	// Associations is the number of established associations.
	Associations int
	// Pending is the number of handshakes in progress whose client echoed
	// the HelloVerifyRequest cookie (bounded by Config.MaxPending).
	Pending int
	// Unverified is the number of ClientHellos answered with a
	// HelloVerifyRequest whose cookie has not come back (bounded by
	// Config.MaxUnverified).
	Unverified int

	// HandshakesOK counts completed handshakes.
	HandshakesOK uint64
	// HandshakesFailed counts cookie-verified handshakes that did not
	// complete: the sum of the four reasons below.
	HandshakesFailed uint64
	// FailedTimeout: HandshakeTimeout passed.
	FailedTimeout uint64
	// FailedAuth: unknown PSK identity, wrong PSK (Finished did not
	// verify) or a client certificate that did not verify.
	FailedAuth uint64
	// FailedAborted: the listener closed the handshake (replaced by a newer
	// one from the same address, or shutdown).
	FailedAborted uint64
	// FailedOther: anything else (peer alert, no common cipher suite, ...).
	FailedOther uint64

	// UnverifiedExpired counts ClientHellos whose cookie never came back
	// within HandshakeTimeout, or that pion rejected before the cookie
	// exchange (wrong version).
	UnverifiedExpired uint64
	// UnverifiedEvicted counts unverified ClientHellos evicted to make room
	// for newer ones (MaxUnverified reached).
	UnverifiedEvicted uint64

	// IdleExpired counts associations closed after IdleTimeout.
	IdleExpired uint64
	// Replaced counts associations closed because their address started a
	// new, cookie-verified handshake (RFC 6347, section 4.2.8).
	Replaced uint64
	// PeerClosed counts established associations ended by the peer
	// (close_notify, fatal alert) or by an error.
	PeerClosed uint64

	// DatagramsIn counts datagrams received on the socket.
	DatagramsIn uint64
	// FramesIn and FramesOut count decrypted frames returned by ReadFrom and
	// frames sent by WriteTo.
	FramesIn  uint64
	FramesOut uint64

	// DropPendingFull counts verified ClientHellos dropped at MaxPending.
	DropPendingFull uint64
	// DropMaxAssociations counts verified ClientHellos dropped at
	// MaxAssociations.
	DropMaxAssociations uint64
	// DropBadCookie counts ClientHellos whose cookie did not match.
	DropBadCookie uint64
	// DropUnknownSource counts datagrams that are no ClientHello from an
	// address or Connection ID without an association.
	DropUnknownSource uint64
	// DropMalformed counts datagrams too short or too long to be DTLS.
	DropMalformed uint64
	// DropPeerQueue counts datagrams dropped because their association's
	// queue was full.
	DropPeerQueue uint64
	// DropTooLarge counts decrypted frames larger than the MTU or the
	// ReadFrom buffer.
	DropTooLarge uint64
}

// counters are the atomic counters behind Stats.
type counters struct {
	handshakesOK, failedTimeout, failedAuth, failedAborted, failedOther atomic.Uint64
	unverifiedExpired, unverifiedEvicted                                atomic.Uint64
	idleExpired, replaced, peerClosed                                   atomic.Uint64
	datagramsIn, framesIn, framesOut                                    atomic.Uint64
	dropPendingFull, dropMaxAssociations, dropBadCookie                 atomic.Uint64
	dropUnknownSource, dropMalformed, dropPeerQueue, dropTooLarge       atomic.Uint64
}

// Stats returns a snapshot of the listener's counters.
func (l *Listener) Stats() Stats {
	c := &l.ctr
	s := Stats{
		HandshakesOK:        c.handshakesOK.Load(),
		FailedTimeout:       c.failedTimeout.Load(),
		FailedAuth:          c.failedAuth.Load(),
		FailedAborted:       c.failedAborted.Load(),
		FailedOther:         c.failedOther.Load(),
		UnverifiedExpired:   c.unverifiedExpired.Load(),
		UnverifiedEvicted:   c.unverifiedEvicted.Load(),
		IdleExpired:         c.idleExpired.Load(),
		Replaced:            c.replaced.Load(),
		PeerClosed:          c.peerClosed.Load(),
		DatagramsIn:         c.datagramsIn.Load(),
		FramesIn:            c.framesIn.Load(),
		FramesOut:           c.framesOut.Load(),
		DropPendingFull:     c.dropPendingFull.Load(),
		DropMaxAssociations: c.dropMaxAssociations.Load(),
		DropBadCookie:       c.dropBadCookie.Load(),
		DropUnknownSource:   c.dropUnknownSource.Load(),
		DropMalformed:       c.dropMalformed.Load(),
		DropPeerQueue:       c.dropPeerQueue.Load(),
		DropTooLarge:        c.dropTooLarge.Load(),
	}
	s.HandshakesFailed = s.FailedTimeout + s.FailedAuth + s.FailedAborted + s.FailedOther
	l.mu.RLock()
	s.Associations, s.Pending, s.Unverified = l.nActive, l.nPending, len(l.hello)
	l.mu.RUnlock()
	return s
}

// limiter lets a warning through at most once per interval per key, so a
// flood that hits a bound is logged without flooding the log.
type limiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *limiter) allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = make(map[string]time.Time) // keys are a fixed set of constants
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < 10*time.Second {
		return false
	}
	r.last[key] = now
	return true
}
