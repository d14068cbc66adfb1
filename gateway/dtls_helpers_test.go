package gateway

// Helpers for the end-to-end tests over transport/dtls: a broker with an
// MQTT TCP listener and a gateway on DTLS listeners, a Paho application,
// a test PKI, a client socket whose port changes, a raw MQTT-SN peer over
// a DTLS conn, hand-made ClientHellos and a log recorder.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/listeners"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/dtls"
)

// dtlsEnv is a broker with an MQTT TCP listener, and a gateway serving
// DTLS listeners.
type dtlsEnv struct {
	t    *testing.T
	srv  *broker.Server
	gw   *Gateway
	mqtt string // host:port of the MQTT TCP listener
	logs *logRecorder
}

// dtlsTestConfig is the gateway config of the DTLS tests. The client
// library counts whole seconds, so the protocol's second is a real one.
// Gateway retransmissions are slow: nothing here depends on them.
func dtlsTestConfig() Config {
	cfg := testConfig()
	cfg.second = time.Second
	cfg.RetryInterval = 2 * time.Second
	cfg.MaxRetries = 4
	return cfg
}

// listenDTLS starts a DTLS listener on loopback.
func listenDTLS(t *testing.T, cfg dtls.Config) *dtls.Listener {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	l, err := dtls.Listen(cfg)
	if err != nil {
		t.Fatalf("dtls listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// newDTLSEnv starts a broker, its MQTT TCP listener and a gateway on
// links. mutate adjusts the gateway config (LinkPolicies ...).
func newDTLSEnv(t *testing.T, mutate func(*Config), links ...transport.Link) *dtlsEnv {
	t.Helper()
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, err := broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	lst, err := listeners.New(listeners.Config{Kind: "tcp", Addr: "127.0.0.1:0"}, srv, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := lst.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = lst.Serve() }()

	logs := newLogRecorder()
	cfg := dtlsTestConfig()
	cfg.Logger = slog.New(logs)
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := New(cfg, srv, links...)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve() }()
	t.Cleanup(func() {
		_ = gw.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
		_ = lst.Close()
		srv.Close()
	})
	return &dtlsEnv{t: t, srv: srv, gw: gw, mqtt: lst.Addr().String(), logs: logs}
}

// testCtx bounds one test; it is a safety net against hangs, not a
// timing assertion.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// pahoApp is an MQTT application on the broker's TCP listener.
type pahoApp struct {
	t   *testing.T
	c   mqtt.Client
	got chan mqtt.Message
}

func (e *dtlsEnv) paho(id string, filters ...string) *pahoApp {
	e.t.Helper()
	a := &pahoApp{t: e.t, got: make(chan mqtt.Message, 64)}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + e.mqtt).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false)
	a.c = mqtt.NewClient(opts)
	if tok := a.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		e.t.Fatalf("paho connect: %v", tok.Error())
	}
	e.t.Cleanup(func() { a.c.Disconnect(0) })
	for _, f := range filters {
		tok := a.c.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) { a.got <- m })
		if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			e.t.Fatalf("paho subscribe %s: %v", f, tok.Error())
		}
	}
	return a
}

// expect waits for the next message and checks it.
func (a *pahoApp) expect(ctx context.Context, topic, payload string) {
	a.t.Helper()
	select {
	case m := <-a.got:
		if m.Topic() != topic || string(m.Payload()) != payload {
			a.t.Fatalf("app got %s %q, want %s %q", m.Topic(), m.Payload(), topic, payload)
		}
	case <-ctx.Done():
		a.t.Fatalf("app: no message on %s: %v", topic, ctx.Err())
	}
}

// publish publishes at QoS 1 and waits for the broker's PUBACK, which the
// broker sends once the message is routed (queued for sleeping clients).
func (a *pahoApp) publish(topic, payload string) {
	a.t.Helper()
	if tok := a.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		a.t.Fatalf("paho publish %s: %v", topic, tok.Error())
	}
}

// testPKI holds PEM files: a CA, a server certificate for 127.0.0.1 and
// client certificates by Common Name, all ECDSA P-256.
type testPKI struct {
	t      *testing.T
	dir    string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	caFile string
	srvCrt string
	srvKey string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: t.TempDir(), caKey: p256Key(t)}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sngate gateway test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caFile = p.write("ca.pem", "CERTIFICATE", der)
	p.srvCrt, p.srvKey = p.leaf("server", "sngate", x509.ExtKeyUsageServerAuth)
	return p
}

func p256Key(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// client issues a client certificate whose Common Name is cn.
func (p *testPKI) client(cn string) (certFile, keyFile string) {
	return p.leaf("client-"+cn, cn, x509.ExtKeyUsageClientAuth)
}

func (p *testPKI) leaf(name, cn string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	p.t.Helper()
	key := p256Key(p.t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		p.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(name+".pem", "CERTIFICATE", der), p.write(name+".key", "PRIVATE KEY", kder)
}

func (p *testPKI) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// movingConn is a client net.PacketConn whose local port can be changed
// under a running DTLS session, as a NAT rebinding changes the source
// port a sensor appears from.
type movingConn struct {
	mu     sync.Mutex
	cur    *net.UDPConn
	rdl    time.Time
	closed bool
}

func newMovingConn(t *testing.T) *movingConn {
	t.Helper()
	return &movingConn{cur: loopbackUDP(t)}
}

func loopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (m *movingConn) sock() *net.UDPConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// move switches to a new socket and closes the old one, as a NAT drops
// an old mapping; a read blocked on the old socket goes on with the new.
func (m *movingConn) move(t *testing.T) {
	t.Helper()
	next := loopbackUDP(t)
	m.mu.Lock()
	prev := m.cur
	m.cur = next
	_ = next.SetReadDeadline(m.rdl)
	m.mu.Unlock()
	_ = prev.Close()
}

func (m *movingConn) port() int { return m.sock().LocalAddr().(*net.UDPAddr).Port }

// ReadFrom reads from the current socket.
func (m *movingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c := m.sock()
		n, a, err := c.ReadFrom(b)
		if err != nil {
			m.mu.Lock()
			moved := m.cur != c && !m.closed
			m.mu.Unlock()
			if moved {
				continue
			}
		}
		return n, a, err
	}
}

// WriteTo writes from the current socket.
func (m *movingConn) WriteTo(b []byte, a net.Addr) (int, error) { return m.sock().WriteTo(b, a) }

// Close closes the current socket.
func (m *movingConn) Close() error {
	m.mu.Lock()
	m.closed = true
	c := m.cur
	m.mu.Unlock()
	return c.Close()
}

// LocalAddr returns the current socket's address.
func (m *movingConn) LocalAddr() net.Addr { return m.sock().LocalAddr() }

// SetDeadline sets the read deadline.
func (m *movingConn) SetDeadline(t time.Time) error { return m.SetReadDeadline(t) }

// SetWriteDeadline sets the current socket's write deadline.
func (m *movingConn) SetWriteDeadline(t time.Time) error { return m.sock().SetWriteDeadline(t) }

// SetReadDeadline sets the read deadline, kept across moves.
func (m *movingConn) SetReadDeadline(t time.Time) error {
	m.mu.Lock()
	m.rdl = t
	c := m.cur
	m.mu.Unlock()
	return c.SetReadDeadline(t)
}

// snPeer speaks raw MQTT-SN over a DTLS conn, for exchanges the client
// library does not make (two CONNECTs with different IDs on one
// association, a PINGREQ for someone else's client ID).
type snPeer struct {
	t    *testing.T
	conn net.Conn
	p    sn.Packet
	buf  []byte
}

func dialPSK(ctx context.Context, t *testing.T, l *dtls.Listener, identity string, key []byte) net.Conn {
	t.Helper()
	c, err := dtls.Dial(ctx, l.LocalAddr().String(), dtls.ClientConfig{PSKIdentity: identity, PSK: key})
	if err != nil {
		t.Fatalf("dtls dial as %s: %v", identity, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newSNPeer(t *testing.T, c net.Conn) *snPeer {
	return &snPeer{t: t, conn: c, buf: make([]byte, 2048)}
}

func (s *snPeer) send(m sn.Message) {
	s.t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.conn.Write(b); err != nil {
		s.t.Fatalf("dtls write: %v", err)
	}
}

// expect reads the next frame, which must be of type typ.
func (s *snPeer) expect(ctx context.Context, typ sn.MsgType) *sn.Packet {
	s.t.Helper()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.conn.SetReadDeadline(dl)
	}
	n, err := s.conn.Read(s.buf)
	if err != nil {
		s.t.Fatalf("waiting for %v: %v", typ, err)
	}
	if err := sn.Decode(s.buf[:n], &s.p); err != nil {
		s.t.Fatalf("decode % x: %v", s.buf[:n], err)
	}
	if s.p.Type != typ {
		s.t.Fatalf("got %v, want %v", s.p.String(), typ)
	}
	return &s.p
}

// connect sends CONNECT for id and returns the CONNACK code.
func (s *snPeer) connect(ctx context.Context, id string) sn.ReturnCode {
	s.t.Helper()
	s.send(&sn.Connect{ClientID: []byte(id), CleanSession: true, ProtocolID: sn.V12, Duration: 60})
	return s.expect(ctx, sn.TypeConnack).Connack.ReturnCode
}

// silentHello sends one hand-made DTLS 1.2 ClientHello (PSK, no
// extensions) from a fresh socket, waits for the HelloVerifyRequest and
// returns the socket and the cookie. With echo set, it sends the second
// ClientHello with the cookie and waits for the ServerHello, so the
// listener holds a verified, pending handshake. Then it goes silent.
func silentHello(ctx context.Context, t *testing.T, l *dtls.Listener, echo bool) {
	t.Helper()
	c := loopbackUDP(t)
	t.Cleanup(func() { _ = c.Close() })
	dst := net.UDPAddrFromAddrPort(l.LocalAddr())
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetReadDeadline(dl)
	}
	var random [32]byte
	_, _ = rand.Read(random[:])
	if _, err := c.WriteToUDP(clientHello(random, nil, 0), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no HelloVerifyRequest: %v", err)
	}
	cookie, ok := helloVerifyCookie(buf[:n])
	if !ok {
		t.Fatalf("not a HelloVerifyRequest: % x", buf[:n])
	}
	if !echo {
		return
	}
	if _, err := c.WriteToUDP(clientHello(random, cookie, 1), dst); err != nil {
		t.Fatal(err)
	}
	if n, err = c.Read(buf); err != nil {
		t.Fatalf("no ServerHello: %v", err)
	}
	if n < 26 || buf[0] != 22 || buf[13] != 2 { // handshake record, ServerHello
		t.Fatalf("not a ServerHello: % x", buf[:min(n, 32)])
	}
}

// clientHello builds a DTLS 1.2 record holding a whole ClientHello (RFC
// 6347, sections 4.1 and 4.2.2) offering TLS_PSK_WITH_AES_128_CCM_8.
func clientHello(random [32]byte, cookie []byte, seq uint16) []byte {
	body := []byte{0xfe, 0xfd} // client_version: DTLS 1.2
	body = append(body, random[:]...)
	body = append(body, 0) // session_id: empty
	body = append(body, byte(len(cookie)))
	body = append(body, cookie...)
	body = append(body, 0, 2, 0xc0, 0xa8) // cipher_suites: PSK-AES128-CCM8
	body = append(body, 1, 0)             // compression_methods: null
	body = append(body, 0, 0)             // extensions: none
	n := len(body)
	// Handshake header: type, length, message_seq, fragment offset and
	// length (one fragment: the whole message).
	hs := []byte{1, byte(n >> 16), byte(n >> 8), byte(n), byte(seq >> 8), byte(seq),
		0, 0, 0, byte(n >> 16), byte(n >> 8), byte(n)}
	hs = append(hs, body...)
	// Record header: handshake, DTLS 1.2, epoch 0, sequence, length.
	rec := []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, byte(seq), byte(len(hs) >> 8), byte(len(hs))}
	return append(rec, hs...)
}

// helloVerifyCookie returns the cookie of a HelloVerifyRequest record.
func helloVerifyCookie(d []byte) ([]byte, bool) {
	const body = 13 + 12 // record header, handshake header
	if len(d) < body+3 || d[0] != 22 || d[13] != 3 {
		return nil, false
	}
	n := int(d[body+2])
	if n == 0 || len(d) < body+3+n {
		return nil, false
	}
	return d[body+3 : body+3+n], true
}

// logRecorder is a slog.Handler that keeps every record of level Info
// and above for the test to look at, and passes everything to the test
// logger (shown with SNGATE_TEST_LOG set).
type logRecorder struct {
	mu    sync.Mutex
	recs  []logRecord
	added chan struct{} // capacity 1: "a record was added"
	next  slog.Handler
}

// logRecord is one recorded log line with its attributes as strings.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newLogRecorder() *logRecorder {
	return &logRecorder{added: make(chan struct{}, 1), next: testLogger().Handler()}
}

// Enabled accepts everything the test logger does, and Info and above.
func (r *logRecorder) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || r.next.Enabled(ctx, l)
}

// Handle records the line and passes it on.
func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelInfo {
		lr := logRecord{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
		rec.Attrs(func(a slog.Attr) bool {
			lr.attrs[a.Key] = a.Value.String()
			return true
		})
		r.mu.Lock()
		r.recs = append(r.recs, lr)
		r.mu.Unlock()
		select {
		case r.added <- struct{}{}:
		default:
		}
	}
	if r.next.Enabled(ctx, rec.Level) {
		return r.next.Handle(ctx, rec)
	}
	return nil
}

// WithAttrs is not used by the gateway; it keeps the recorder.
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }

// WithGroup is not used by the gateway; it keeps the recorder.
func (r *logRecorder) WithGroup(string) slog.Handler { return r }

// find returns the recorded lines with message msg.
func (r *logRecorder) find(msg string) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, l := range r.recs {
		if l.msg == msg {
			out = append(out, l)
		}
	}
	return out
}

// wait blocks until a line with message msg has been recorded and
// returns the first one.
func (r *logRecorder) wait(ctx context.Context, t *testing.T, msg string) logRecord {
	t.Helper()
	for {
		if recs := r.find(msg); len(recs) > 0 {
			return recs[0]
		}
		select {
		case <-r.added:
		case <-ctx.Done():
			t.Fatalf("no %q log line: %v", msg, ctx.Err())
		}
	}
}
