package main

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
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate whose CN is client, as PEM files in dir.
func testPKI(t *testing.T, dir, client string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sngate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caParsed, _ := x509.ParseCertificate(caDER)
	issue := func(name string, serial int64, server bool) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caParsed, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		c := writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der)
		k := writePEM(t, filepath.Join(dir, name+".key"), "EC PRIVATE KEY", keyDER)
		return c, k
	}
	ca = writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER)
	srvCert, srvKey = issue("sngate", 2, true)
	cliCert, cliKey = issue(client, 3, false)
	return ca, srvCert, srvKey, cliCert, cliKey
}

func writePEM(t *testing.T, path, kind string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A sensor with a client certificate publishes through 'sngate serve'
// with a certificate DTLS listener from config; its certificate subject
// binds it to its own client ID only.
func TestE2EDTLSCertificates(t *testing.T) {
	needMosquitto(t)
	dir := t.TempDir()
	ca, srvCert, srvKey, cliCert, cliKey := testPKI(t, dir, "meter-1")
	cfg := writeFile(t, "dtls-cert.yaml", `sn:
  dtls:
    - listen: "127.0.0.1:0"
      cert: `+srvCert+`
      key: `+srvKey+`
      ca: `+ca+`
      require_client_cert: true
      bindings:
        - identity: meter-1
          client_ids: ["{identity}"]
`)
	s := startServe(t, "--config", cfg)
	m := regexp.MustCompile(`"sn_dtls":\["127\.0\.0\.1:(\d+)"\]`).FindStringSubmatch(s.proc.output())
	if m == nil {
		t.Fatalf("no DTLS address in the ready line:\n%s", s.proc.output())
	}
	watcher := mqttSub(t, s.mqttPort, "-t", "meters/#", "-v")
	args := []string{"pub", "--dtls", "-p", m[1], "--cafile", ca, "--cert", cliCert, "--key", cliKey, "-q", "1"}
	if code, _, stderr := run(t, "", sngateBin, append(args, "-i", "meter-1", "-t", "meters/1", "-m", "42kWh")...); code != 0 {
		t.Fatalf("pub with a client certificate: exit %d %s", code, stderr)
	}
	watcher.waitLine(watcher.stdout, regexp.MustCompile(`^meters/1 42kWh$`))
	code, _, stderr := run(t, "", sngateBin, append(args, "-i", "meter-2", "-t", "meters/2", "-m", "no")...)
	if code != exitRuntime || !strings.Contains(stderr, "connect") {
		t.Fatalf("certificate meter-1 as client meter-2: exit %d %s", code, stderr)
	}
}
