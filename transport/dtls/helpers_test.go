package dtls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pdtls "github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/alert"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"

	"github.com/sngate/sngate/transport"
)

var (
	pingreq  = []byte{0x02, 0x16} // MQTT-SN PINGREQ
	pingresp = []byte{0x02, 0x17} // MQTT-SN PINGRESP
	testKey  = []byte("0123456789abcdef")
)

// testTimeout bounds a test; reaching it fails whatever waits.
const testTimeout = 60 * time.Second

// testCtx bounds a test; expiring it fails whatever waits on it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// events collects a listener's trace events.
type events struct{ ch chan string }

func newEvents() *events { return &events{ch: make(chan string, 1<<14)} }

func (e *events) trace(ev string) {
	select {
	case e.ch <- ev:
	default:
	}
}

// wait consumes events until ev arrives.
func (e *events) wait(ctx context.Context, t *testing.T, ev string) {
	t.Helper()
	for {
		select {
		case got := <-e.ch:
			if got == ev {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %q event: %v", ev, ctx.Err())
		}
	}
}

func startListener(t *testing.T, cfg Config) (*Listener, *events) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	ev := newEvents()
	l, err := listen(cfg, ev.trace)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, ev
}

func pskConfig() Config {
	return Config{PSKs: []PSK{{Identity: "sensor-1", Key: testKey}}}
}

func pskClient() ClientConfig {
	return ClientConfig{PSKIdentity: "sensor-1", PSK: testKey}
}

func udpAddr(l *Listener) *net.UDPAddr { return net.UDPAddrFromAddrPort(l.LocalAddr()) }

// rxFrame is one frame returned by ReadFrom.
type rxFrame struct {
	b    []byte
	from transport.Addr
}

// pump runs ReadFrom until the listener closes.
func pump(t *testing.T, l *Listener) <-chan rxFrame {
	ch := make(chan rxFrame, 1024)
	go func() {
		defer close(ch)
		buf := make([]byte, 2048)
		for {
			n, from, err := l.ReadFrom(buf)
			if err != nil {
				return
			}
			ch <- rxFrame{b: bytes.Clone(buf[:n]), from: from}
		}
	}()
	return ch
}

func recvFrame(ctx context.Context, t *testing.T, ch <-chan rxFrame) rxFrame {
	t.Helper()
	select {
	case f, ok := <-ch:
		if !ok {
			t.Fatal("listener closed")
		}
		return f
	case <-ctx.Done():
		t.Fatalf("no frame: %v", ctx.Err())
	}
	return rxFrame{}
}

// readConn reads one datagram from a client conn, bounded by ctx.
func readConn(ctx context.Context, t *testing.T, c net.Conn) []byte {
	t.Helper()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetReadDeadline(dl)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	return buf[:n]
}

// pki holds PEM files generated for a test: a CA, a server certificate
// for 127.0.0.1, a client certificate (CN sensor-42) and a client
// certificate from another CA.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey, rogueCert, rogueKey string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{}
	caKey, caCert := makeCA(t, "sngate test CA")
	p.ca = writePEM(t, dir, "ca.pem", "CERTIFICATE", caCert.Raw)
	p.serverCert, p.serverKey = makeLeaf(t, dir, "server", pkix.Name{CommonName: "sngate"}, caCert, caKey, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = makeLeaf(t, dir, "client", pkix.Name{CommonName: "sensor-42", Organization: []string{"Acme"}}, caCert, caKey, x509.ExtKeyUsageClientAuth)
	rogueKey, rogueCA := makeCA(t, "rogue CA")
	p.rogueCert, p.rogueKey = makeLeaf(t, dir, "rogue", pkix.Name{CommonName: "sensor-42"}, rogueCA, rogueKey, x509.ExtKeyUsageClientAuth)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func makeCA(t *testing.T, cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func makeLeaf(t *testing.T, dir, name string, subj pkix.Name, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      subj,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+".key", "PRIVATE KEY", kder)
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawPeer speaks just enough DTLS by hand to stop at any point of the
// cookie exchange, as a silent or spoofing peer does.
type rawPeer struct {
	t      *testing.T
	c      *net.UDPConn
	srv    *net.UDPAddr
	random handshake.Random
	seq    uint64
	cookie []byte
}

func newRawPeer(t *testing.T, l *Listener) *rawPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	p := &rawPeer{t: t, c: c, srv: udpAddr(l)}
	if err := p.random.Populate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// helloBytes is a PSK ClientHello with the given cookie and message_seq.
func (p *rawPeer) helloBytes(cookie []byte, msgSeq uint16) []byte {
	rec := &recordlayer.RecordLayer{
		Header: recordlayer.Header{Version: protocol.Version1_2, SequenceNumber: p.seq},
		Content: &handshake.Handshake{
			Header: handshake.Header{MessageSequence: msgSeq},
			Message: &handshake.MessageClientHello{
				Version:            protocol.Version1_2,
				Random:             p.random,
				Cookie:             cookie,
				CipherSuiteIDs:     []uint16{uint16(pdtls.TLS_PSK_WITH_AES_128_CCM_8)},
				CompressionMethods: []*protocol.CompressionMethod{{}},
			},
		},
	}
	p.seq++
	b, err := rec.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func (p *rawPeer) send(b []byte) {
	if _, err := p.c.WriteToUDP(b, p.srv); err != nil {
		p.t.Fatal(err)
	}
}

// recv reads one datagram from the server, bounded by ctx.
func (p *rawPeer) recv(ctx context.Context) []byte {
	p.t.Helper()
	if dl, ok := ctx.Deadline(); ok {
		_ = p.c.SetReadDeadline(dl)
	}
	buf := make([]byte, 4096)
	n, err := p.c.Read(buf)
	if err != nil {
		p.t.Fatalf("raw peer read: %v", err)
	}
	return buf[:n]
}

// hello sends a first ClientHello and returns the cookie of the
// HelloVerifyRequest that answers it.
func (p *rawPeer) hello(ctx context.Context) []byte {
	p.t.Helper()
	p.send(p.helloBytes(nil, 0))
	cookie, ok := parseHelloVerifyRequest(p.recv(ctx))
	if !ok {
		p.t.Fatal("no HelloVerifyRequest")
	}
	p.cookie = bytes.Clone(cookie)
	return p.cookie
}

// echo sends the second ClientHello with the given cookie.
func (p *rawPeer) echo(cookie []byte) { p.send(p.helloBytes(cookie, 1)) }

// verified completes the cookie exchange and waits for the ServerHello
// flight, then stays silent: a verified, pending handshake.
func (p *rawPeer) verified(ctx context.Context) {
	p.t.Helper()
	p.echo(p.hello(ctx))
	typ, _, _, ok := plainHandshake(p.recv(ctx))
	if !ok || typ != 2 {
		p.t.Fatalf("want ServerHello, got handshake type %d (ok %v)", typ, ok)
	}
}

// abort sends a plaintext fatal alert, ending the handshake at once.
func (p *rawPeer) abort() {
	rec := &recordlayer.RecordLayer{
		Header:  recordlayer.Header{Version: protocol.Version1_2, SequenceNumber: p.seq},
		Content: &alert.Alert{Level: alert.Fatal, Description: alert.HandshakeFailure},
	}
	p.seq++
	b, err := rec.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(b)
}

// rebindConn is a client net.PacketConn whose local port can change under
// a running DTLS session, as a NAT rebinding does.
type rebindConn struct {
	mu     sync.Mutex
	cur    *net.UDPConn
	rdl    time.Time
	closed bool
	muted  bool
}

func newRebindConn(t *testing.T) *rebindConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return &rebindConn{cur: c}
}

func (r *rebindConn) conn() *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *rebindConn) port() uint16 { return r.conn().LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// rebind moves to a new local port; a read blocked on the old socket
// continues on the new one.
func (r *rebindConn) rebind(t *testing.T) {
	nc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	old := r.cur
	r.cur = nc
	_ = nc.SetReadDeadline(r.rdl)
	r.mu.Unlock()
	_ = old.Close()
}

// mute drops every later write, so Close sends no close_notify: the peer
// vanishes, as a rebooting sensor does.
func (r *rebindConn) mute() {
	r.mu.Lock()
	r.muted = true
	r.mu.Unlock()
}

func (r *rebindConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c := r.conn()
		n, a, err := c.ReadFrom(b)
		if err != nil {
			r.mu.Lock()
			swapped := r.cur != c && !r.closed
			r.mu.Unlock()
			if swapped {
				continue
			}
		}
		return n, a, err
	}
}

func (r *rebindConn) WriteTo(b []byte, a net.Addr) (int, error) {
	r.mu.Lock()
	c, muted := r.cur, r.muted
	r.mu.Unlock()
	if muted {
		return len(b), nil
	}
	return c.WriteTo(b, a)
}

func (r *rebindConn) Close() error {
	r.mu.Lock()
	r.closed = true
	c := r.cur
	r.mu.Unlock()
	return c.Close()
}

func (r *rebindConn) LocalAddr() net.Addr                { return r.conn().LocalAddr() }
func (r *rebindConn) SetDeadline(t time.Time) error      { return r.SetReadDeadline(t) }
func (r *rebindConn) SetWriteDeadline(t time.Time) error { return r.conn().SetWriteDeadline(t) }

func (r *rebindConn) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	r.rdl = t
	c := r.cur
	r.mu.Unlock()
	return c.SetReadDeadline(t)
}
