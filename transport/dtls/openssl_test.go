package dtls

import (
	"bytes"
	"context"
	"encoding/hex"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// watchedBuffer collects a process's output and signals when it contains
// a wanted byte string.
type watchedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want []byte
	hit  chan struct{}
	once sync.Once
}

func newWatchedBuffer(want []byte) *watchedBuffer {
	return &watchedBuffer{want: want, hit: make(chan struct{})}
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), w.want) {
		w.once.Do(func() { close(w.hit) })
	}
	return len(p), nil
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// sClient runs `openssl s_client` against the listener: it writes PINGREQ
// through s_client's stdin, checks that ReadFrom returns it with the
// expected identity and suite, answers PINGRESP with WriteTo and waits for
// it on s_client's stdout.
func sClient(ctx context.Context, t *testing.T, l *Listener, wantIdentity, wantSuite string, args ...string) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed: no foreign DTLS peer to test against")
	}
	frames := pump(t, l)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args = append([]string{"s_client", "-dtls1_2", "-connect", l.LocalAddr().String()}, args...)
	cmd := exec.CommandContext(ctx, openssl, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := newWatchedBuffer(pingresp)
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	defer func() {
		_ = stdin.Close()
		cancel()
		<-done
	}()

	if _, err := stdin.Write(pingreq); err != nil {
		t.Fatal(err)
	}
	var f rxFrame
	select {
	case f = <-frames:
	case <-done:
		t.Fatalf("s_client exited: %v\nstdout:\n%s\nstderr:\n%s", waitErr, out, &errOut)
	case <-ctx.Done():
		t.Fatalf("no frame from s_client: %v\nstdout:\n%s\nstderr:\n%s", ctx.Err(), out, &errOut)
	}
	if !bytes.Equal(f.b, pingreq) {
		t.Fatalf("frame %x, want %x", f.b, pingreq)
	}
	info, _ := l.Peer(f.from)
	if id, ok := l.PeerIdentity(f.from); !ok || id != wantIdentity || info.CipherSuite != wantSuite {
		t.Fatalf("identity %q (%v), suite %s; want %q, %s", id, ok, info.CipherSuite, wantIdentity, wantSuite)
	}
	if err := l.WriteTo(pingresp, f.from); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.hit:
	case <-ctx.Done():
		t.Fatalf("PINGRESP not on s_client stdout: %v\nstdout:\n%s", ctx.Err(), out)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		line = strings.TrimSpace(line)
		for _, p := range []string{"CONNECTED", "Protocol", "Cipher is", "Cipher    :", "Verify return", "Peer signature", "subject="} {
			if strings.HasPrefix(line, p) {
				t.Logf("s_client: %s", line)
				break
			}
		}
	}
	_ = stdin.Close() // s_client sends close_notify and exits
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("s_client did not exit: %v", ctx.Err())
	}
}

func TestOpenSSLPSK(t *testing.T) {
	ctx := testCtx(t)
	key := []byte{0x5a, 0x9c, 0x31, 0x07, 0xe2, 0x44, 0x8b, 0x10, 0xd3, 0x6f, 0x21, 0x95, 0xaa, 0x0c, 0x77, 0x3e}
	l, _ := startListener(t, Config{PSKs: []PSK{{Identity: "sensor-7", Key: key}}})
	sClient(ctx, t, l, "sensor-7", "TLS_PSK_WITH_AES_128_CCM_8",
		"-psk", hex.EncodeToString(key), "-psk_identity", "sensor-7", "-cipher", "PSK-AES128-CCM8")
}

func TestOpenSSLPSKGCM(t *testing.T) {
	ctx := testCtx(t)
	l, _ := startListener(t, Config{PSKs: []PSK{{Identity: "sensor-8", Key: testKey}}})
	sClient(ctx, t, l, "sensor-8", "TLS_PSK_WITH_AES_128_GCM_SHA256",
		"-psk", hex.EncodeToString(testKey), "-psk_identity", "sensor-8", "-cipher", "PSK-AES128-GCM-SHA256")
}

func TestOpenSSLCertificate(t *testing.T) {
	ctx := testCtx(t)
	p := newPKI(t)
	l, _ := startListener(t, Config{CertFile: p.serverCert, KeyFile: p.serverKey, CAFile: p.ca, RequireClientCert: true})
	sClient(ctx, t, l, "sensor-42", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
		"-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-CAfile", p.ca, "-verify_return_error",
		"-cert", p.clientCert, "-key", p.clientKey)
}

func TestOpenSSLCertificateCCM8(t *testing.T) {
	ctx := testCtx(t)
	p := newPKI(t)
	l, _ := startListener(t, Config{CertFile: p.serverCert, KeyFile: p.serverKey, CAFile: p.ca, RequireClientCert: true})
	sClient(ctx, t, l, "sensor-42", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
		"-cipher", "ECDHE-ECDSA-AES128-CCM8", "-CAfile", p.ca, "-verify_return_error",
		"-cert", p.clientCert, "-key", p.clientKey)
}
