package bridge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
)

// writePKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all PEM, in dir.
func writePKI(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ip bool) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if ip {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		write(name+".pem", "CERTIFICATE", der)
		write(name+".key", "EC PRIVATE KEY", kder)
	}
	leaf("server", 2, x509.ExtKeyUsageServerAuth, true)
	leaf("client", 3, x509.ExtKeyUsageClientAuth, false)
}

// TestTLS: the bridge verifies the broker's certificate against the
// configured CA and presents a client certificate.
func TestTLS(t *testing.T) {
	var pki string
	m := startMosquittoWith(t, func(dir string) string {
		pki = dir
		writePKI(t, dir)
		return "cafile " + dir + "/ca.pem\ncertfile " + dir + "/server.pem\nkeyfile " + dir + "/server.key\n" +
			"require_certificate true\nallow_anonymous true\n"
	})
	url := "mqtts://" + m.addr
	srv, err := broker.New(broker.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	try := func(tc TLSConfig) error {
		cfg := testBridgeConfig("gw1", url)
		cfg.TLS = tc
		cfg.Up = []Rule{{Topic: "#"}}
		b, err := New(cfg, srv)
		if err != nil {
			t.Fatal(err)
		}
		lk, err := b.dial.connect(t.Context(), linkOptions{clientID: "tls", onMessage: func(*inMsg) bool { return true }})
		if err == nil {
			lk.close(false)
		}
		return err
	}
	if err := try(TLSConfig{CertFile: pki + "/client.pem", KeyFile: pki + "/client.key"}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want a certificate verification error", err)
	}
	if err := try(TLSConfig{CAFile: pki + "/ca.pem"}); err == nil {
		t.Fatal("connected without a client certificate")
	}
	if err := try(TLSConfig{CAFile: pki + "/ca.pem", CertFile: pki + "/client.pem", KeyFile: pki + "/client.key"}); err != nil {
		t.Fatalf("with CA and client certificate: %v", err)
	}
}

// TestCredentials: the bridge sends the configured user name and
// password.
func TestCredentials(t *testing.T) {
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd is not installed (package mosquitto)")
	}
	m := startMosquittoWith(t, func(dir string) string {
		f := filepath.Join(dir, "passwd")
		if out, err := exec.Command(passwd, "-b", "-c", f, "bridge", "s3cret").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v %s", err, out)
		}
		return "allow_anonymous false\npassword_file " + f + "\n"
	})
	srv, err := broker.New(broker.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	try := func(user, pass string) error {
		cfg := testBridgeConfig("gw1", m.url())
		cfg.Username, cfg.Password = user, pass
		cfg.Up = []Rule{{Topic: "#"}}
		b, err := New(cfg, srv)
		if err != nil {
			t.Fatal(err)
		}
		lk, err := b.dial.connect(t.Context(), linkOptions{clientID: "cred", onMessage: func(*inMsg) bool { return true }})
		if err == nil {
			lk.close(false)
		}
		return err
	}
	if err := try("bridge", "wrong"); err == nil {
		t.Fatal("connected with a wrong password")
	}
	if err := try("bridge", "s3cret"); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
}
