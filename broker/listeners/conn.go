package listeners

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// transport is what a connection reads and writes: a net.Conn, or the
// WebSocket adapter.
type transport interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// conn is one MQTT client connection and the broker.Sink of its session.
type conn struct {
	l    *Listener
	nc   net.Conn
	tr   transport
	raw  syscall.RawConn // plain TCP: lets an idle connection wait without a buffer
	cert string          // verified client certificate subject

	// Owned by the reading goroutine.
	br          *bufio.Reader
	peeked      int // body bytes to discard from br after handling
	kick        bool
	keepAlive   time.Duration // 1.5 x the keep-alive interval; 0 for none
	inAlias     []string
	qos2in      map[uint16]struct{}
	expiry0     bool // connected with session expiry 0
	problemInfo bool
	sendWill    bool // will is published when the connection ends
	connectedAt time.Time
	readBy      time.Time // the read deadline in force (zero for none)
	kaTimer     *time.Timer
	parkID      uint64

	mu sync.Mutex
	// Guarded by mu (set once before the session starts, read freely by
	// the reading goroutine).
	version  byte
	clientID string
	sess     *broker.Session
	// Guarded by mu.
	out, spare      *buffer
	flushing        bool
	lastWrite       int64 // monoNow at the end of the last write
	urgent          bool  // a control packet is pending: no WriteDelay
	closing         bool
	netClosed       bool
	connacked       bool
	detached        bool // the broker ended the attachment (Closed)
	refused         bool // Deliver returned false; Resume when drained
	closeCode       byte
	drained         chan struct{}
	autoAcks        []autoAck
	aliasOut        map[string]uint16
	aliasNext       uint16
	clientAliasMax  uint16
	clientMaxPacket uint32
	parked          bool // no goroutine: the parker or a timer wakes it
	stopping        bool // closed by Listener.Close: no will
}

func newConn(l *Listener, nc net.Conn, ws *wsTransport) *conn {
	c := &conn{l: l, nc: nc, tr: nc, sendWill: true, problemInfo: true}
	if ws != nil {
		c.tr = ws
		c.cert = ws.cert
	} else if tc, ok := nc.(*net.TCPConn); ok && idleWaitSupported {
		if rc, err := tc.SyscallConn(); err == nil {
			c.raw = rc
		}
	}
	return c
}

// remoteAddr returns the client's address, for logs.
func (c *conn) remoteAddr() string { return c.nc.RemoteAddr().String() }

// errClientDisconnect ends the read loop after a DISCONNECT.
var errClientDisconnect = errors.New("client disconnected")

// errShutdown ends the read loop of a connection closed by Close.
var errShutdown = errors.New("listener shutting down")

func protoErr(code byte, format string, args ...any) error {
	return &packets.Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// serve runs a new connection.
func (c *conn) serve() {
	c.connectedAt = time.Now()
	if err := c.handshake(); err != nil {
		c.end(err)
		c.l.forget(c)
		return
	}
	c.run(false)
}

// run reads and handles packets until the connection ends or parks. A
// connected plain-TCP client that has had nothing to send for parkAfter
// parks: the goroutine exits, and wake starts a new one (run(true)) when
// there is something to do. Others wait for input here, at the bottom of
// the stack, so that an idle connection's stack is as small as the
// runtime allows.
func (c *conn) run(woken bool) {
	var err error
	for {
		if c.br == nil || c.br.Buffered() == 0 {
			if c.kick {
				c.flushNow()
			}
			ready := false
			if !woken && c.canPark() {
				var idle bool
				if idle, ready = c.linger(); idle && c.park() {
					return
				}
			}
			woken = false
			if ready {
				c.br = c.l.pools.getReader(c.tr)
			} else if err = c.waitInput(); err != nil {
				break
			}
		}
		if err = c.readBurst(); err != nil {
			break
		}
	}
	c.end(err)
	c.l.forget(c)
}

// canPark reports whether the connection may give up its goroutine when
// idle: a connected plain-TCP client, where the platform has a parker.
func (c *conn) canPark() bool {
	return c.raw != nil && c.sess != nil && c.l.parkIdle
}

// linger waits up to parkAfter for input with the goroutine, so that busy
// clients do not pay for parking and waking between packets. idle is true
// when nothing came in that time (the connection should park), ready when
// there is input to read.
func (c *conn) linger() (idle, ready bool) {
	if c.br != nil {
		c.l.pools.putReader(c.br)
		c.br = nil
	}
	d := c.l.parkAfter
	if d <= 0 {
		return true, false
	}
	until := time.Now().Add(d)
	if !c.readBy.IsZero() && c.readBy.Before(until) {
		return false, false // the keep alive ends first: just wait for it
	}
	_ = c.tr.SetReadDeadline(until)
	err := waitReadable(c.raw)
	_ = c.tr.SetReadDeadline(c.readBy)
	return errors.Is(err, os.ErrDeadlineExceeded), err == nil
}

// park hands an idle connection to the parker. It reports false when the
// connection cannot park (not plain TCP, not connected, closing, or no
// epoll), and the caller waits for input itself.
func (c *conn) park() bool {
	if c.raw == nil || c.sess == nil || !c.l.parkIdle {
		return false
	}
	p := getParker()
	if p == nil {
		return false
	}
	if c.br != nil {
		c.l.pools.putReader(c.br)
		c.br = nil
	}
	if c.keepAlive > 0 && c.kaTimer == nil {
		c.kaTimer = time.AfterFunc(time.Hour, c.wake)
		c.kaTimer.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.netClosed {
		return false
	}
	c.parked = true
	if !p.arm(c) {
		c.parked = false
		return false
	}
	if c.kaTimer != nil && !c.readBy.IsZero() {
		c.kaTimer.Reset(time.Until(c.readBy))
	}
	c.l.parked.Add(1)
	return true
}

// wake resumes a parked connection in a new goroutine.
func (c *conn) wake() {
	c.mu.Lock()
	c.wakeLocked()
	c.mu.Unlock()
}

func (c *conn) wakeLocked() {
	if !c.parked {
		return
	}
	c.parked = false
	c.l.parked.Add(-1)
	if c.kaTimer != nil {
		c.kaTimer.Stop()
	}
	if p := getParker(); p != nil {
		p.forget(c.parkID)
	}
	go c.run(true)
}

// flushNow starts writing the control packets queued while reading.
func (c *conn) flushNow() {
	c.kick = false
	c.mu.Lock()
	c.kickLocked()
	c.mu.Unlock()
}

// handshake completes TLS, bounded by ConnectTimeout, and records the
// verified client certificate subject.
func (c *conn) handshake() error {
	_ = c.tr.SetReadDeadline(time.Now().Add(c.l.cfg.ConnectTimeout))
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	_ = tc.SetDeadline(time.Now().Add(c.l.cfg.ConnectTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	_ = tc.SetWriteDeadline(time.Time{})
	if st := tc.ConnectionState(); len(st.VerifiedChains) > 0 && len(st.VerifiedChains[0]) > 0 {
		c.cert = st.VerifiedChains[0][0].Subject.String()
	}
	return nil
}

// readBurst handles packets until the read buffer is empty.
func (c *conn) readBurst() error {
	for {
		c.refreshDeadline()
		h, body, err := c.readPacket()
		if err != nil {
			return err
		}
		if c.l.debug {
			c.l.log.Debug("recv "+packets.TypeName(h.Type), "client", c.clientID, "len", h.Remaining)
		}
		switch {
		case c.sess != nil:
			err = c.dispatch(h, body)
		case h.Type != packets.CONNECT:
			err = fmt.Errorf("first packet is %s, not CONNECT", packets.TypeName(h.Type))
		default:
			err = c.handleConnect(body)
		}
		if err != nil {
			return err
		}
		c.donePacket()
		if c.br.Buffered() == 0 {
			return nil
		}
	}
}

// readPacket reads one packet. The body aliases the read buffer until
// donePacket.
func (c *conn) readPacket() (packets.FixedHeader, []byte, error) {
	h, err := packets.ReadFixedHeader(c.br, c.l.cfg.MaxPacketSize)
	if err != nil {
		return h, nil, err
	}
	if h.Remaining <= c.br.Size() {
		body, err := c.br.Peek(h.Remaining)
		if err != nil {
			return h, nil, fmt.Errorf("read %s body: %w", packets.TypeName(h.Type), eofUnexpected(err))
		}
		c.peeked = h.Remaining
		return h, body, nil
	}
	body := make([]byte, h.Remaining)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return h, nil, fmt.Errorf("read %s body: %w", packets.TypeName(h.Type), eofUnexpected(err))
	}
	return h, body, nil
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// donePacket releases the body of the packet just handled.
func (c *conn) donePacket() {
	if c.peeked > 0 {
		_, _ = c.br.Discard(c.peeked)
		c.peeked = 0
	}
}

// waitInput makes sure a read buffer is there. A plain TCP connection
// gives its buffer back to the pool and waits for the socket to become
// readable without one.
func (c *conn) waitInput() error {
	if c.raw == nil {
		if c.br == nil {
			c.br = c.l.pools.getReader(c.tr)
		}
		return nil
	}
	if c.br != nil {
		c.l.pools.putReader(c.br)
		c.br = nil
	}
	if err := waitReadable(c.raw); err != nil {
		return err
	}
	c.br = c.l.pools.getReader(c.tr)
	return nil
}

// refreshDeadline keeps the read deadline at least 1.5 times the keep
// alive after the last packet. It moves the deadline at most every
// quarter of that (or second), adding as much slack, so that busy
// connections do not pay for a timer update per packet.
func (c *conn) refreshDeadline() {
	if c.keepAlive == 0 {
		return
	}
	now := time.Now()
	slack := min(time.Second, c.keepAlive/4)
	if !c.readBy.IsZero() && now.Sub(c.readBy.Add(-c.keepAlive-slack)) < slack {
		return
	}
	c.readBy = now.Add(c.keepAlive + slack)
	_ = c.tr.SetReadDeadline(c.readBy)
}

// sendAckFast queues a PUBACK, PUBREC, PUBREL or PUBCOMP without
// properties, encoding it straight into the write buffer.
func (c *conn) sendAckFast(kind byte, id uint16, code byte) {
	var b [5]byte
	c.send(packets.AppendAck(b[:0], kind, id, code, c.version))
}

// send appends a control packet for the client; the write happens when
// the reader runs out of buffered input. A client that sends faster than
// it reads is throttled here.
func (c *conn) send(b []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if c.out == nil {
		c.out = c.l.pools.getBuffer()
	}
	c.out.b = append(c.out.b, b...)
	c.kick = true
	c.urgent = true
	for c.out != nil && len(c.out.b) > 4*c.l.cfg.OutboundBufferSize && !c.netClosed {
		c.kickLocked()
		ch := c.drained
		if ch == nil {
			ch = make(chan struct{})
			c.drained = ch
		}
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
	c.mu.Unlock()
}

// end tears the connection down after the read loop stopped with err.
func (c *conn) end(err error) {
	code, reason := byte(0), ""
	var pe *packets.Error
	var ne net.Error
	c.mu.Lock()
	connacked, shutdown, closing := c.connacked, c.stopping, c.closing
	sess, detached := c.sess, c.detached
	c.mu.Unlock()
	switch {
	case errors.Is(err, errClientDisconnect):
	case errors.As(err, &pe):
		code, reason = pe.Code, pe.Reason
	case errors.As(err, &ne) && ne.Timeout() && connacked && !closing:
		code, reason = packets.KeepAliveTimeout, "keep alive timeout"
		err = errors.New("keep alive timeout")
	}
	if sess != nil && !detached {
		sess.Disconnect(c.sendWill && !shutdown)
	}
	c.mu.Lock()
	if !c.closing {
		c.beginCloseLocked(code, reason)
	} else if !c.flushing {
		c.closeNetLocked()
	}
	c.mu.Unlock()
	if c.br != nil {
		c.l.pools.putReader(c.br)
		c.br = nil
	}
	if connacked {
		attrs := []any{"client", c.clientID, "remote", c.remoteAddr(), "duration", time.Since(c.connectedAt).Round(time.Millisecond)}
		if code != 0 {
			attrs = append(attrs, "reason_code", fmt.Sprintf("0x%02X", code))
		}
		if err != nil && !errors.Is(err, errClientDisconnect) && !isClosedErr(err) {
			attrs = append(attrs, "err", err)
		}
		c.l.log.Info("client disconnected", attrs...)
	} else if err != nil && !isClosedErr(err) {
		c.l.log.Debug("connection ended before CONNACK", "remote", c.remoteAddr(), "err", err)
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, errShutdown)
}

// shutdown closes the connection for Listener.Close.
func (c *conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	if c.closing {
		if !c.flushing {
			c.closeNetLocked()
		}
		return
	}
	c.beginCloseLocked(packets.ServerShuttingDown, "server shutting down")
}
