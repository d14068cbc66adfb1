package listeners

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// testPKI is a CA with a server and a client certificate, as files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
	stranger                  tls.Certificate // signed by another CA
	clientSubject             string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	caKey, caCert, caDER := makeCA(t, "sngate test CA")
	p.pool = x509.NewCertPool()
	p.pool.AddCert(caCert)
	p.caFile = writePEM(t, p.dir, "ca.pem", "CERTIFICATE", caDER)

	srvKey, srvDER := makeLeaf(t, caKey, caCert, pkix.Name{CommonName: "localhost"}, true)
	p.certFile = writePEM(t, p.dir, "server.pem", "CERTIFICATE", srvDER)
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	p.keyFile = writePEM(t, p.dir, "server.key", "EC PRIVATE KEY", kb)

	name := pkix.Name{CommonName: "device-1", Organization: []string{"sngate"}}
	cliKey, cliDER := makeLeaf(t, caKey, caCert, name, false)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	leaf, _ := x509.ParseCertificate(cliDER)
	p.clientSubject = leaf.Subject.String()

	otherKey, otherCert, _ := makeCA(t, "other CA")
	sk, sDER := makeLeaf(t, otherKey, otherCert, pkix.Name{CommonName: "intruder"}, false)
	p.stranger = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sk}
	return p
}

func makeCA(t *testing.T, cn string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert, der
}

func makeLeaf(t *testing.T, caKey *ecdsa.PrivateKey, ca *x509.Certificate, name pkix.Name, server bool) (*ecdsa.PrivateKey, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: name,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *testPKI) clientTLS(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: p.pool, ServerName: "localhost"}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// certBroker refuses anonymous clients but takes a verified certificate
// subject as the user name: a client gets in only if the listener passed
// its subject on.
func certBroker(t *testing.T) *broker.Server {
	return newBroker(t, func(c *broker.Config) { c.AllowAnonymous = false; c.CertAsUsername = true })
}

func TestTLSClientCertificates(t *testing.T) {
	pki := newPKI(t)
	srv := certBroker(t)
	_, reqAddr := startListener(t, srv, Config{Kind: KindTLS, CertFile: pki.certFile, KeyFile: pki.keyFile,
		CAFile: pki.caFile, RequireClientCert: true})
	_, optAddr := startListener(t, srv, Config{Name: "tls-optional", Kind: KindTLS, CertFile: pki.certFile,
		KeyFile: pki.keyFile, CAFile: pki.caFile})

	// A client that opens TCP and never says hello stalls nobody.
	silent, err := net.Dial("tcp", reqAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// paho over TLS with a client certificate: accepted as its subject.
	c := dialV3(t, "ssl://"+reqAddr, "tls-1", func(o *mqtt.ClientOptions) { o.SetTLSConfig(pki.clientTLS(&pki.client)) })
	ch := v3sub(t, c, "tls/#", 1)
	waitTok(t, c.Publish("tls/x", 1, false, "secure"))
	if m := recvV3(t, ch); string(m.Payload()) != "secure" {
		t.Fatalf("got %q", m.Payload())
	}

	dialTLS := func(addr string, cert *tls.Certificate) (*raw, error) {
		tc, err := tls.Dial("tcp", addr, pki.clientTLS(cert))
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { tc.Close() })
		return &raw{t: t, c: tc, br: newReader(tc), version: packets.V5}, nil
	}
	// Required: no certificate, or one from another CA, fails the
	// handshake (TLS 1.3 reports it on the first read).
	for _, cert := range []*tls.Certificate{nil, &pki.stranger} {
		r, err := dialTLS(reqAddr, cert)
		if err == nil {
			r.send(&packets.Connect{Version: packets.V5, ClientID: "x", CleanStart: true})
			if _, err = r.next(); err == nil {
				t.Fatal("connected without a valid client certificate")
			}
		}
	}
	// Optional: a client without a certificate gets in over TLS but is
	// anonymous, which this broker refuses (0x87); with one it is fine.
	r, err := dialTLS(optAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.send(&packets.Connect{Version: packets.V5, ClientID: "anon", CleanStart: true})
	if ack := r.expect(packets.CONNACK).(*packets.Connack); ack.ReasonCode != packets.NotAuthorized {
		t.Fatalf("anonymous over optional TLS: 0x%02X", ack.ReasonCode)
	}
	r, err = dialTLS(optAddr, &pki.client)
	if err != nil {
		t.Fatal(err)
	}
	r.connect(&packets.Connect{ClientID: "cert", CleanStart: true})
}

func TestTLSConfigErrors(t *testing.T) {
	srv := newBroker(t, nil)
	for _, cfg := range []Config{
		{Kind: KindTLS, Addr: ":0"},
		{Kind: KindTLS, Addr: ":0", CertFile: "/nonexistent", KeyFile: "/nonexistent"},
		{Kind: KindTCP},
		{Kind: "quic", Addr: ":0"},
	} {
		if _, err := New(cfg, srv, nil); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	pki := newPKI(t)
	if _, err := New(Config{Kind: KindWSS, Addr: ":0", CertFile: pki.certFile, KeyFile: pki.keyFile,
		RequireClientCert: true}, srv, nil); err == nil {
		t.Error("RequireClientCert without a CA accepted")
	}
}
