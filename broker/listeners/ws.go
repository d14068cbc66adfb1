package listeners

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsBufferPool shares WebSocket write buffers between connections, so an
// idle WebSocket client holds none.
var wsBufferPool = &sync.Pool{}

// serveWS serves MQTT over WebSocket on ln (TLS-wrapped for "wss").
func (l *Listener) serveWS(ln net.Listener) error {
	up := &websocket.Upgrader{
		Subprotocols:     []string{"mqtt", "mqttv3.1"},
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		WriteBufferPool:  wsBufferPool,
		HandshakeTimeout: l.cfg.ConnectTimeout,
		// MQTT authenticates in CONNECT, not with cookies: any origin may
		// connect, as with the TCP listeners.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	mux := http.NewServeMux()
	mux.HandleFunc(l.cfg.Path, func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			l.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
			return
		}
		t := &wsTransport{ws: ws}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			t.cert = r.TLS.VerifiedChains[0][0].Subject.String()
		}
		l.handle(ws.NetConn(), t)
	})
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: l.cfg.ConnectTimeout,
		ErrorLog:          nil,
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrServerClosed
	}
	l.http = hs
	l.mu.Unlock()
	if l.cfg.Kind == KindWSS {
		hs.TLSConfig = l.tls
		ln = tls.NewListener(ln, l.tls)
	}
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) || l.isClosed() {
		return ErrServerClosed
	}
	return fmt.Errorf("listeners: %s: %w", l.cfg.Name, err)
}

// wsTransport carries the MQTT byte stream in binary WebSocket messages.
// A packet may span messages and a message may hold several packets.
type wsTransport struct {
	ws   *websocket.Conn
	r    io.Reader // current message
	cert string
}

// errTextFrame ends a connection that sent a text frame.
var errTextFrame = errors.New("websocket: text frame (MQTT needs binary frames)")

// Read implements io.Reader.
func (t *wsTransport) Read(p []byte) (int, error) {
	for {
		if t.r == nil {
			mt, r, err := t.ws.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return 0, io.EOF
				}
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			t.r = r
		}
		n, err := t.r.Read(p)
		if err == io.EOF {
			t.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends b as one binary message.
func (t *wsTransport) Write(b []byte) (int, error) {
	if err := t.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes the underlying connection.
func (t *wsTransport) Close() error { return t.ws.Close() }

// SetReadDeadline implements transport.
func (t *wsTransport) SetReadDeadline(d time.Time) error { return t.ws.SetReadDeadline(d) }

// SetWriteDeadline implements transport.
func (t *wsTransport) SetWriteDeadline(d time.Time) error { return t.ws.SetWriteDeadline(d) }
