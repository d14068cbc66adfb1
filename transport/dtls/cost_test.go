package dtls

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"

	"github.com/sngate/sngate/transport"
)

const (
	helperAddrEnv = "SNGATE_DTLS_COST_ADDR"
	helperNEnv    = "SNGATE_DTLS_COST_N"
	helperCertEnv = "SNGATE_DTLS_COST_CA"
)

// TestIdleAssociationCost measures what an idle association costs the
// server: heap plus goroutine stacks, and goroutines. The clients live in
// a child process (this test binary, TestCostHelperClients) so their own
// goroutines and memory are not counted.
func TestIdleAssociationCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement; skipped with -short")
	}
	p := newPKI(t)
	for _, kind := range []string{"psk", "certificate"} {
		t.Run(kind, func(t *testing.T) {
			cfg := pskConfig()
			env := []string{}
			if kind == "certificate" {
				cfg = Config{CertFile: p.serverCert, KeyFile: p.serverKey}
				env = append(env, helperCertEnv+"="+p.ca)
			}
			measureIdle(t, cfg, 200, env)
		})
	}
}

func measureIdle(t *testing.T, cfg Config, n int, env []string) {
	// SNGATE_DTLS_HEAPPROFILE=file writes an exact heap profile of the
	// idle associations, to see where their memory goes.
	if os.Getenv("SNGATE_DTLS_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	ctx := testCtx(t)
	l, _ := startListener(t, cfg)
	frames := pump(t, l)

	before, hb, sb := memNow()
	g0 := runtime.NumGoroutine()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCostHelperClients$", "-test.v")
	cmd.Env = append(append(os.Environ(), helperAddrEnv+"="+l.LocalAddr().String(),
		helperNEnv+"="+strconv.Itoa(n)), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	seen := make(map[transport.Addr]bool, n)
	for len(seen) < n {
		seen[recvFrame(ctx, t, frames).from] = true
	}
	if st := l.Stats(); st.Associations != n || st.Pending != 0 || st.Unverified != 0 {
		t.Fatalf("stats %+v", st)
	}
	after, ha, sa := memNow()
	g1 := runtime.NumGoroutine()
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) }
	t.Logf("%d idle associations: %.0f bytes each (heap %.0f + stacks %.0f), %.2f goroutines each",
		n, per(after, before), per(ha, hb), per(sa, sb), float64(g1-g0)/float64(n))
	if f := os.Getenv("SNGATE_DTLS_HEAPPROFILE"); f != "" {
		w, err := os.Create(f)
		if err == nil {
			_ = pprof.WriteHeapProfile(w)
			_ = w.Close()
		}
	}
}

// memNow returns live heap plus goroutine stacks, and each, after a full
// GC.
func memNow() (total, heap, stacks uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse, ms.HeapAlloc, ms.StackInuse
}

// TestCostHelperClients is the child process of TestIdleAssociationCost:
// it opens the associations, sends one frame on each, and holds them until
// its stdin closes.
func TestCostHelperClients(t *testing.T) {
	addr := os.Getenv(helperAddrEnv)
	if addr == "" {
		t.Skip("helper process for TestIdleAssociationCost")
	}
	n, err := strconv.Atoi(os.Getenv(helperNEnv))
	if err != nil {
		t.Fatal(err)
	}
	cc := pskClient()
	if ca := os.Getenv(helperCertEnv); ca != "" {
		cc = ClientConfig{CAFile: ca}
	}
	cc.ConnectionID = true
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		c, err := Dial(ctx, addr, cc)
		cancel()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(pingreq); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
}
