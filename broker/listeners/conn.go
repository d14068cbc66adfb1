package listeners

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
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
	l      *Listener
	nc     net.Conn
	tr     transport
	raw    syscall.RawConn // plain TCP: lets an idle connection wait without a buffer
	remote string
	cert   string // verified client certificate subject

	// Owned by the reading goroutine.
	br          *bufio.Reader
	peeked      int // body bytes to discard from br after handling
	kick        bool
	keepAlive   time.Duration // 1.5 x the keep-alive interval; 0 for none
	deadlineSet time.Time
	inAlias     []string
	qos2in      map[uint16]struct{}
	expiry0     bool // connected with session expiry 0
	problemInfo bool
	sendWill    bool // will is published when the connection ends
	connectedAt time.Time

	mu sync.Mutex
	// Guarded by mu (set once before the session starts, read freely by
	// the reading goroutine).
	version  byte
	clientID string
	sess     *broker.Session
	// Guarded by mu.
	out, spare      *buffer
	flushing        bool
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
}

func newConn(l *Listener, nc net.Conn, ws *wsTransport) *conn {
	c := &conn{l: l, nc: nc, tr: nc, remote: nc.RemoteAddr().String(), sendWill: true, problemInfo: true}
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

// errClientDisconnect ends the read loop after a DISCONNECT.
var errClientDisconnect = errors.New("client disconnected")

// errShutdown ends the read loop of a connection closed by Close.
var errShutdown = errors.New("listener shutting down")

func protoErr(code byte, format string, args ...any) error {
	return &packets.Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	defer c.l.forget(c)
	c.connectedAt = time.Now()
	err := c.handshake()
	if err == nil {
		err = c.readLoop()
	}
	c.end(err)
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

func (c *conn) readLoop() error {
	h, body, err := c.readPacket()
	if err != nil {
		return err
	}
	if h.Type != packets.CONNECT {
		return fmt.Errorf("first packet is %s, not CONNECT", packets.TypeName(h.Type))
	}
	if err := c.handleConnect(body); err != nil {
		return err
	}
	c.donePacket()
	for {
		c.refreshDeadline()
		h, body, err := c.readPacket()
		if err != nil {
			return err
		}
		if c.l.debug {
			c.l.log.Debug("recv "+packets.TypeName(h.Type), "client", c.clientID, "len", h.Remaining)
		}
		if err := c.dispatch(h, body); err != nil {
			return err
		}
		c.donePacket()
	}
}

// readPacket reads one packet. The body aliases the read buffer until
// donePacket.
func (c *conn) readPacket() (packets.FixedHeader, []byte, error) {
	if c.br == nil || c.br.Buffered() == 0 {
		if c.kick {
			c.kick = false
			c.mu.Lock()
			c.kickLocked()
			c.mu.Unlock()
		}
		if err := c.waitInput(); err != nil {
			return packets.FixedHeader{}, nil, err
		}
	}
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
// alive after the last packet. It moves the deadline at most once a
// second, adding that second of slack, so that busy connections do not pay
// for a timer update per packet.
func (c *conn) refreshDeadline() {
	if c.keepAlive == 0 {
		return
	}
	now := time.Now()
	if now.Sub(c.deadlineSet) < time.Second {
		return
	}
	c.deadlineSet = now
	_ = c.tr.SetReadDeadline(now.Add(c.keepAlive + time.Second))
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
	connacked, shutdown := c.connacked, c.closing
	sess, detached := c.sess, c.detached
	c.mu.Unlock()
	switch {
	case errors.Is(err, errClientDisconnect):
	case errors.As(err, &pe):
		code, reason = pe.Code, pe.Reason
	case errors.As(err, &ne) && ne.Timeout() && connacked && !shutdown:
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
		attrs := []any{"client", c.clientID, "remote", c.remote, "duration", time.Since(c.connectedAt).Round(time.Millisecond)}
		if code != 0 {
			attrs = append(attrs, "reason_code", fmt.Sprintf("0x%02X", code))
		}
		if err != nil && !errors.Is(err, errClientDisconnect) && !isClosedErr(err) {
			attrs = append(attrs, "err", err)
		}
		c.l.log.Info("client disconnected", attrs...)
	} else if err != nil && !isClosedErr(err) {
		c.l.log.Debug("connection ended before CONNACK", "remote", c.remote, "err", err)
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, errShutdown)
}

// shutdown closes the connection for Listener.Close.
func (c *conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		if !c.flushing {
			c.closeNetLocked()
		}
		return
	}
	c.beginCloseLocked(packets.ServerShuttingDown, "server shutting down")
}
