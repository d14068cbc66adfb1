package dtls

import (
	"bytes"
	"container/list"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pdtls "github.com/pion/dtls/v3"
	"github.com/pion/transport/v5/deadline"

	"github.com/sngate/sngate/transport"
)

// assocState is where an association stands; it decides which of the
// listener's maps hold it.
type assocState uint8

const (
	// stateUnverified: pion answered the first ClientHello with a
	// HelloVerifyRequest; the cookie has not come back. In l.hello.
	stateUnverified assocState = iota
	// statePending: the client echoed the cookie; handshake in progress.
	// In l.byAddr (and l.byCID).
	statePending
	// stateEstablished: handshake done. In l.byAddr (while mapped),
	// l.byCID and l.byID.
	stateEstablished
	// stateClosed: in no map.
	stateClosed
)

// endReason records why the listener, not the peer, ended an association.
type endReason uint8

const (
	reasonNone endReason = iota
	reasonEvicted
	reasonReplaced
	reasonIdle
	reasonShutdown
)

// datagram is one received datagram waiting for pion's read loop.
type datagram struct {
	b    []byte
	from netip.AddrPort
}

// frame is one decrypted frame waiting for ReadFrom.
type frame struct {
	b    []byte
	from transport.Addr
}

// assoc is one DTLS association: pion's server Conn plus the queue that
// feeds it. It exists from the first ClientHello of a peer.
type assoc struct {
	l    *Listener
	id   uint64
	addr transport.Addr
	conn *pdtls.Conn

	// Guarded by l.mu.
	state   assocState
	reason  endReason
	remote  netip.AddrPort // current UDP endpoint of the peer
	mapped  bool           // l.byAddr[remote] == a
	cookie  []byte         // cookie of the HelloVerifyRequest pion sent
	cid     []byte         // Connection ID issued to the peer, in l.byCID
	helloEl *list.Element  // position in l.helloQ while unverified

	verified   atomic.Bool  // the cookie came back (statePending reached)
	finSent    atomic.Bool  // pion sent its ChangeCipherSpec (final flight)
	up         atomic.Bool  // established: HandshakeContext returned
	cidUsed    atomic.Bool  // pion put our CID in its ServerHello
	authFailed atomic.Bool  // the PSK identity was unknown
	lastSeen   atomic.Int64 // UnixNano of the last datagram routed here
	ident      atomic.Pointer[identity]
	info       atomic.Pointer[PeerInfo] // set when established

	// Received datagrams, filled by the listener's read loop and drained by
	// pion's read loop through peerConn.ReadFrom.
	rxMu  sync.Mutex
	rxq   []datagram
	rxSig chan struct{} // capacity 1: "rxq may be non-empty"
	done  chan struct{} // closed when pion closes the conn
	once  sync.Once
	rdl   *deadline.Deadline

	// Where pion's read loop is (see settle). Guarded by rxMu.
	pionBusy bool           // pion is processing a datagram peerConn.ReadFrom returned
	busyFrom netip.AddrPort // its source
	pionGen  uint64         // calls of peerConn.ReadFrom so far
	pionSig  chan struct{}  // capacity 1: "pion called peerConn.ReadFrom"

	// Used only by pion's read loop (netctx serialises its reads).
	lastFrom netip.AddrPort
	lastUDP  *net.UDPAddr
}

// identity is the authenticated peer name captured during the handshake.
type identity struct {
	name    string
	kind    IdentityKind
	subject string
}

func newAssoc(l *Listener, id uint64, src netip.AddrPort) *assoc {
	a := &assoc{
		l:        l,
		id:       id,
		addr:     addrFromID(id),
		remote:   src,
		rxSig:    make(chan struct{}, 1),
		pionSig:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		rdl:      deadline.New(),
		lastFrom: src,
		lastUDP:  net.UDPAddrFromAddrPort(src),
	}
	a.lastSeen.Store(time.Now().UnixNano())
	return a
}

// serverOptions are the listener's pion options plus this association's
// callbacks.
func (a *assoc) serverOptions() []pdtls.ServerOption {
	base := a.l.cfg.opts
	opts := append(base[:len(base):len(base)], pdtls.WithVerifyPeerCertificate(a.verifyCert))
	if len(a.l.cfg.keys) > 0 {
		opts = append(opts, pdtls.WithPSK(a.pskKey))
	}
	if a.l.cfg.cidLen > 0 {
		opts = append(opts, pdtls.WithConnectionIDGenerator(a.connectionID))
	}
	return opts
}

// pskKey is pion's PSK callback: it looks the client's identity up.
func (a *assoc) pskKey(id []byte) ([]byte, error) {
	key, ok := a.l.cfg.keys[string(id)]
	if !ok {
		a.authFailed.Store(true)
		return nil, fmt.Errorf("unknown PSK identity %q", id)
	}
	a.ident.Store(&identity{name: string(id), kind: IdentityPSK})
	return key, nil
}

// verifyCert runs after pion verified the client chain (when CAFile is
// set); it records the certificate subject.
func (a *assoc) verifyCert(raw [][]byte, chains [][]*x509.Certificate) error {
	var leaf *x509.Certificate
	if len(chains) > 0 && len(chains[0]) > 0 {
		leaf = chains[0][0]
	} else if len(raw) > 0 {
		c, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("client certificate: %w", err)
		}
		leaf = c
	}
	if leaf == nil {
		return nil
	}
	name := leaf.Subject.CommonName
	if name == "" {
		name = leaf.Subject.String()
	}
	a.ident.Store(&identity{name: name, kind: IdentityCertificate, subject: leaf.Subject.String()})
	return nil
}

// connectionID is pion's Connection ID generator. pion calls it while
// building the ServerHello, only for clients that offered the extension.
// It returns the CID reserved at promotion, or nil (the client then sends
// no CID) if none could be reserved.
func (a *assoc) connectionID() []byte {
	a.l.mu.RLock()
	cid := a.cid
	a.l.mu.RUnlock()
	if cid != nil {
		a.cidUsed.Store(true)
	}
	return cid
}

// push queues a received datagram for pion. Called by the read loop.
func (a *assoc) push(d []byte, from netip.AddrPort, now int64) bool {
	a.rxMu.Lock()
	if len(a.rxq) >= a.l.cfg.PeerQueue {
		a.rxMu.Unlock()
		return false
	}
	a.rxq = append(a.rxq, datagram{b: bytes.Clone(d), from: from})
	a.rxMu.Unlock()
	select {
	case a.rxSig <- struct{}{}:
	default:
	}
	a.lastSeen.Store(now)
	return true
}

// run drives the handshake, then forwards decrypted frames to ReadFrom
// until the association ends. One goroutine per association.
func (a *assoc) run() {
	l := a.l
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.HandshakeTimeout)
	err := a.conn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.handshakeFailed(a, err)
		_ = a.conn.Close()
		return
	}
	if !l.establish(a) {
		_ = a.conn.Close()
		return
	}
	buf := make([]byte, l.cfg.MTU)
	for errs := 0; ; {
		n, err := a.conn.Read(buf)
		if err != nil {
			// pion reports an oversized record (its error is unexported,
			// hence the text) or a warning alert through Read and keeps
			// the association; each such error is consumed by the Read.
			// The bound on consecutive errors is only a safety net.
			if errors.Is(err, io.EOF) || a.isDone() || errs >= 64 {
				break
			}
			errs++
			if strings.Contains(err.Error(), "buffer is too small") {
				l.ctr.dropTooLarge.Add(1)
			}
			continue
		}
		errs = 0
		a.settle()
		select {
		case l.in <- frame{b: bytes.Clone(buf[:n]), from: a.addr}:
		case <-l.closed:
			_ = a.conn.Close()
			return
		}
	}
	_ = a.conn.Close()
}

// settle returns once pion has finished with the record that carried the
// frame Read just returned, so that the peer address pion writes to already
// reflects it.
//
// pion moves an association with a Connection ID to the source of the
// latest record it authenticates (RFC 9146, section 6), but only after it
// has handed that record's plaintext to Read: without this wait, a reply
// written as soon as ReadFrom returns the first record from a client's new
// port could still go to the old one. The move stays pion's decision, so a
// datagram that fails authentication or is a replay moves nothing.
//
// With a Connection ID, peerConn.ReadFrom gives pion one record at a time,
// so a record yields at most one result for Read and pion, having filled
// the one place of its result queue, always gets back to peerConn.ReadFrom
// without waiting for Read: the wait ends.
func (a *assoc) settle() {
	if !a.cidUsed.Load() {
		return // pion never moves the peer
	}
	a.rxMu.Lock()
	busy, from, gen := a.pionBusy, a.busyFrom, a.pionGen
	a.rxMu.Unlock()
	if !busy {
		return // pion is waiting for a datagram: every record is done
	}
	// Every record before the one pion is processing is done, and that one
	// can move the peer only to its own source.
	if ua, ok := a.conn.RemoteAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		if netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) == from {
			return
		}
	}
	for {
		select {
		case <-a.pionSig:
		case <-a.done:
			return
		case <-a.l.closed:
			return
		}
		a.rxMu.Lock()
		moved := a.pionGen != gen
		a.rxMu.Unlock()
		if moved {
			return
		}
	}
}

func (a *assoc) isDone() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// isAuthError reports whether a failed handshake failed on credentials.
// pion does not export these errors, so wrong-key (Finished mismatch) and
// missing-certificate failures are recognised by their text; anything
// unrecognised counts as "other".
func isAuthError(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	if errors.As(err, &ua) || errors.As(err, &ci) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "verify data does not match") ||
		strings.Contains(msg, "client verification") ||
		strings.Contains(msg, "not signed by an acceptable CA")
}

// peerConn is the net.PacketConn pion's server Conn reads and writes: the
// association's queue on the way in, the listener's socket on the way out.
type peerConn assoc

// ReadFrom returns the next queued datagram.
//
// Between sending its final flight and marking the handshake complete,
// pion keeps at most one early application record and drops the rest, and
// a client may send several in that window. So once pion's
// ChangeCipherSpec has gone out, datagrams wait here until the handshake
// is complete; pion needs none of them to get there.
//
// Once an association with a Connection ID is established, each call
// returns one record of a datagram (pion reads records, not datagrams, so
// this changes nothing for it), and records where pion's read loop is, for
// assoc.settle.
func (p *peerConn) ReadFrom(b []byte) (int, net.Addr, error) {
	a := (*assoc)(p)
	a.rxMu.Lock()
	a.pionBusy = false // pion finished whatever it read before
	a.pionGen++
	a.rxMu.Unlock()
	select {
	case a.pionSig <- struct{}{}:
	default:
	}
	for {
		hold := a.finSent.Load() && !a.up.Load()
		a.rxMu.Lock()
		if len(a.rxq) > 0 && !hold {
			d := a.rxq[0]
			n := len(d.b)
			if a.up.Load() && a.cidUsed.Load() {
				n = firstRecordLen(d.b, a.l.cfg.cidLen)
			}
			if n < len(d.b) {
				a.rxq[0].b = d.b[n:]
				d.b = d.b[:n]
			} else {
				a.rxq[0] = datagram{}
				a.rxq = a.rxq[1:]
				if len(a.rxq) == 0 {
					a.rxq = nil
				}
			}
			a.pionBusy, a.busyFrom = true, d.from
			a.rxMu.Unlock()
			if d.from != a.lastFrom {
				a.lastFrom, a.lastUDP = d.from, net.UDPAddrFromAddrPort(d.from)
			}
			return copy(b, d.b), a.lastUDP, nil
		}
		a.rxMu.Unlock()
		select {
		case <-a.rxSig:
		case <-a.done:
			return 0, nil, net.ErrClosed
		case <-a.rdl.Done():
			return 0, nil, os.ErrDeadlineExceeded
		}
	}
}

// WriteTo sends a datagram from the listener's socket. pion moves the
// destination when an authenticated CID record arrives from a new address
// (RFC 9146, section 6); the listener follows.
func (p *peerConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a := (*assoc)(p)
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("dtls: unexpected address type %T", addr)
	}
	ap := ua.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	a.l.noteWrite(a, b, ap)
	return a.l.pc.WriteToUDPAddrPort(b, ap)
}

// Close is called by pion when the association ends for any reason.
func (p *peerConn) Close() error {
	a := (*assoc)(p)
	a.l.release(a)
	return nil
}

// LocalAddr returns the listener's address.
func (p *peerConn) LocalAddr() net.Addr { return p.l.pc.LocalAddr() }

// SetDeadline sets the read deadline; writes never block for long.
func (p *peerConn) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

// SetReadDeadline is how pion interrupts a read when it stops a handshake.
func (p *peerConn) SetReadDeadline(t time.Time) error {
	p.rdl.Set(t)
	return nil
}

// SetWriteDeadline is a no-op: writes go straight to a UDP socket.
func (p *peerConn) SetWriteDeadline(time.Time) error { return nil }
