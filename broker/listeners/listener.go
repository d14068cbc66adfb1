// Package listeners is sngate's MQTT 3.1.1 and 5 front end: it accepts
// connections on TCP, TLS and WebSocket listeners, speaks MQTT on them with
// the codec in broker/packets, and attaches each client to the broker core
// as a session whose Sink is the connection.
//
// A connection reads with one goroutine; a writing goroutine exists only
// while there is something to write, and deliveries are encoded straight
// into a bounded write buffer (Deliver never blocks: when the buffer is
// full it refuses, the broker queues, and the connection resumes the
// session once the buffer drains). Read and write buffers come from pools
// and go back to them when a connection is idle. On Linux, a plain-TCP
// client that has been idle for a second also gives up its goroutine: the
// connection parks in a shared epoll set and a new goroutine picks it up
// when data arrives, its keep alive runs out, or it is closed.
//
// Several listeners run side by side, each from its own Config:
//
//	g, err := listeners.Start(srv, logger,
//		listeners.Config{Kind: "tcp", Addr: ":1883"},
//		listeners.Config{Kind: "tls", Addr: ":8883", CertFile: "srv.pem", KeyFile: "srv.key",
//			CAFile: "clients-ca.pem", RequireClientCert: true},
//		listeners.Config{Kind: "ws", Addr: ":8080"}, // path /mqtt
//		listeners.Config{Kind: "wss", Addr: ":8443", CertFile: "srv.pem", KeyFile: "srv.key"})
//	...
//	g.Close() // stop accepting, DISCONNECT 0x8B to MQTT 5 clients, close all
package listeners

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker"
)

// defaultParkAfter is how long a plain-TCP connection waits for input
// with its goroutine before it parks.
const defaultParkAfter = time.Second

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("listeners: listener closed")

// Listener accepts MQTT connections on one address. Create it with New,
// then call ListenAndServe (or Listen and Serve); Close stops it.
type Listener struct {
	cfg   Config
	srv   *broker.Server
	log   *slog.Logger
	debug bool
	tls   *tls.Config
	pools *pools

	mu      sync.Mutex
	ln      net.Listener
	http    *http.Server
	conns   map[*conn]struct{}
	closed  bool
	serving bool
	wg      sync.WaitGroup

	// parkIdle lets idle plain-TCP connections give up their goroutine
	// (tests turn it off to cover the other path).
	parkIdle bool
	// parkAfter is how long a connection stays idle before it parks.
	parkAfter time.Duration
	// now is the clock of message expiry; it must agree with the
	// broker's clock (tests replace both).
	now func() time.Time

	open     atomic.Int64
	parked   atomic.Int64
	accepted atomic.Uint64
	rejected atomic.Uint64
	dropped  atomic.Uint64
	deferred atomic.Uint64
}

// Stats are a listener's counters.
type Stats struct {
	Name string
	Kind string
	Addr string
	// Connections is the number of connections open now, and Parked
	// how many of them are idle without a goroutine.
	Connections, Parked int64
	// Accepted counts connections accepted since start, Rejected those
	// closed at once because MaxConnections was reached.
	Accepted, Rejected uint64
	// DroppedTooLarge counts deliveries not sent because they exceeded
	// the client's Maximum Packet Size.
	DroppedTooLarge uint64
	// Deferred counts deliveries refused because a client's write buffer
	// was full; the broker keeps them queued and offers them again.
	Deferred uint64
}

// New checks cfg and prepares a listener for srv. logger may be nil
// (logs are discarded).
func New(cfg Config, srv *broker.Server, logger *slog.Logger) (*Listener, error) {
	if srv == nil {
		return nil, errors.New("listeners: nil broker server")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &Listener{
		cfg:   cfg,
		srv:   srv,
		log:   logger.With("listener", cfg.Name),
		conns: make(map[*conn]struct{}),
		pools: newPools(cfg.ReadBufferSize),
		now:   time.Now,
	}
	l.parkIdle = idleWaitSupported && getParker() != nil
	l.parkAfter = defaultParkAfter
	l.debug = l.log.Enabled(context.Background(), slog.LevelDebug)
	if cfg.secure() {
		if l.tls, err = cfg.tlsConfig(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Config returns the listener's configuration with defaults filled in.
func (l *Listener) Config() Config { return l.cfg }

// Listen binds the listener's address. Serve calls it if needed; calling
// it first reports address errors before serving, and makes Addr valid.
func (l *Listener) Listen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrServerClosed
	}
	if l.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", l.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listeners: %s: listen: %w", l.cfg.Name, err)
	}
	l.ln = ln
	return nil
}

// Addr returns the bound address, or nil before Listen.
func (l *Listener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// ListenAndServe binds the address and serves until Close. It returns
// ErrServerClosed after Close.
func (l *Listener) ListenAndServe() error {
	if err := l.Listen(); err != nil {
		return err
	}
	return l.Serve()
}

// Serve accepts connections on the bound address (binding it first if
// needed) until Close, and returns ErrServerClosed then.
func (l *Listener) Serve() error {
	if err := l.Listen(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.serving {
		l.mu.Unlock()
		return fmt.Errorf("listeners: %s: already serving", l.cfg.Name)
	}
	l.serving = true
	ln := l.ln
	l.mu.Unlock()
	l.log.Info("listening", "kind", l.cfg.Kind, "addr", ln.Addr().String())
	if l.cfg.Kind == KindWS || l.cfg.Kind == KindWSS {
		return l.serveWS(ln)
	}
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if l.isClosed() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = backoff(delay)
				l.log.Warn("accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("listeners: %s: accept: %w", l.cfg.Name, err)
		}
		delay = 0
		if l.tls != nil {
			nc = tls.Server(nc, l.tls)
		}
		l.handle(nc, nil)
	}
}

func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	if d *= 2; d > time.Second {
		d = time.Second
	}
	return d
}

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// handle starts serving an accepted connection. For WebSocket, ws is the
// upgraded connection and nc its network connection, and handle serves it
// on the calling goroutine.
func (l *Listener) handle(nc net.Conn, ws *wsTransport) {
	l.accepted.Add(1)
	if max := l.cfg.MaxConnections; max > 0 && l.open.Load() >= int64(max) {
		l.rejected.Add(1)
		l.log.Warn("connection refused: listener full", "remote", nc.RemoteAddr().String(), "max", max)
		nc.Close()
		return
	}
	c := newConn(l, nc, ws)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		nc.Close()
		return
	}
	l.conns[c] = struct{}{}
	l.open.Add(1)
	l.wg.Add(1)
	l.mu.Unlock()
	if ws != nil {
		c.serve()
		return
	}
	go c.serve()
}

// forget removes a finished connection.
func (l *Listener) forget(c *conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.open.Add(-1)
	l.wg.Done()
}

// Close stops accepting, disconnects every client (MQTT 5 clients get
// DISCONNECT 0x8B, server shutting down) and waits until their
// connections have ended. Sessions stay in the broker (persistent ones
// survive until they expire).
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.wg.Wait()
		return nil
	}
	l.closed = true
	var err error
	if l.http != nil {
		err = l.http.Close()
	} else if l.ln != nil {
		err = l.ln.Close()
	}
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
	l.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("listeners: %s: close: %w", l.cfg.Name, err)
	}
	return nil
}

// Stats returns the listener's counters.
func (l *Listener) Stats() Stats {
	s := Stats{Name: l.cfg.Name, Kind: l.cfg.Kind, Connections: l.open.Load(), Parked: l.parked.Load(),
		Accepted: l.accepted.Load(), Rejected: l.rejected.Load(), DroppedTooLarge: l.dropped.Load(),
		Deferred: l.deferred.Load()}
	if a := l.Addr(); a != nil {
		s.Addr = a.String()
	}
	return s
}

// Group is a set of listeners started together.
type Group struct {
	list []*Listener
	errs chan error
}

// Start creates, binds and serves one listener per config. Binding
// happens before it returns, so address errors are reported here; on any
// error the listeners already started are closed.
func Start(srv *broker.Server, logger *slog.Logger, cfgs ...Config) (*Group, error) {
	g := &Group{errs: make(chan error, len(cfgs))}
	for _, c := range cfgs {
		l, err := New(c, srv, logger)
		if err == nil {
			err = l.Listen()
		}
		if err != nil {
			g.Close()
			return nil, err
		}
		g.list = append(g.list, l)
	}
	for _, l := range g.list {
		go func() {
			if err := l.Serve(); err != nil && !errors.Is(err, ErrServerClosed) {
				g.errs <- err
			}
		}()
	}
	return g, nil
}

// Listeners returns the group's listeners, in config order.
func (g *Group) Listeners() []*Listener { return g.list }

// Errors delivers errors that stopped a listener's Serve (not Close).
func (g *Group) Errors() <-chan error { return g.errs }

// Close closes every listener of the group and waits for their
// connections to end.
func (g *Group) Close() error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, l := range g.list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
