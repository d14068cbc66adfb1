package main

// End-to-end tests of persistence (restart on the same data dir, a
// corrupt or locked store) and of the bridge against a real Mosquitto.

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Retained and QoS 1 messages for an offline persistent MQTT session
// survive a graceful stop and a restart on the same data dir.
func TestE2EPersistenceAcrossRestart(t *testing.T) {
	needMosquitto(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, "--data-dir", dataDir)
	snArgs := []string{"-h", "127.0.0.1", "-p", s.snPort}

	// A persistent MQTT session subscribes at QoS 1, then goes offline.
	if code, _, stderr := run(t, "", "mosquitto_sub", "-h", "127.0.0.1", "-p", s.mqttPort, "-c", "-i", "keeper",
		"-q", "1", "-t", "persist/queue/#", "-E"); code != 0 {
		t.Fatalf("mosquitto_sub -E: exit %d: %s", code, stderr)
	}
	pubs := [][]string{
		{"-t", "persist/retained", "-m", "kept", "-r", "-q", "1"},
		{"-t", "persist/queue/one", "-m", "queued", "-q", "1"},
	}
	for _, a := range pubs {
		if code, _, stderr := run(t, "", sngateBin, append(append([]string{"pub"}, snArgs...), a...)...); code != 0 {
			t.Fatalf("sngate pub %v: exit %d: %s", a, code, stderr)
		}
	}
	if v := sample(t, scrape(t, s.metrics), "sngate_broker_queued_messages"); v != 1 {
		t.Fatalf("queued for the offline session = %v, want 1", v)
	}
	if v := sample(t, scrape(t, s.metrics), "sngate_store_commits_total"); v < 1 {
		t.Fatalf("store commits = %v", v)
	}

	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.waitLog("stopped")
	if code := s.wait(); code != 0 {
		t.Fatalf("serve exit %d after SIGTERM", code)
	}

	s2 := startServe(t, "--data-dir", dataDir)
	loaded := logRecord(t, s2, "store loaded")
	// Retained: persist/retained, and the broker's $SYS values.
	sessions, _ := loaded["sessions"].(float64)
	if retained, _ := loaded["retained"].(float64); loaded["messages"] != float64(1) || retained < 1 || sessions < 1 {
		t.Fatalf("store loaded: %v", loaded)
	}
	if want := filepath.Join(dataDir, "sngate.db"); !strings.Contains(s2.output(), `"store":"`+want+`"`) {
		t.Fatalf("ready line lacks the store file %s:\n%s", want, s2.output())
	}
	code, out, stderr := run(t, "", "mosquitto_sub", "-h", "127.0.0.1", "-p", s2.mqttPort, "-c", "-i", "keeper",
		"-q", "1", "-t", "persist/queue/#", "-C", "1", "-v")
	if code != 0 || out != "persist/queue/one queued\n" {
		t.Fatalf("queued message after restart: exit %d %q %s", code, out, stderr)
	}
	code, out, stderr = run(t, "", "mosquitto_sub", "-h", "127.0.0.1", "-p", s2.mqttPort, "-t", "persist/retained", "-C", "1")
	if code != 0 || out != "kept\n" {
		t.Fatalf("retained message after restart: exit %d %q %s", code, out, stderr)
	}
}

// A store that cannot be used stops serve with exit status 1 and one
// line naming the file, the cause and the way out; --no-persistence
// starts anyway.
func TestE2EStoreCorruptLockedOrOff(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(dir, "sngate.db")
	if err := os.WriteFile(dbFile, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	serveArgs := func(dataDir string) []string {
		return []string{"serve", "--data-dir", dataDir, "--sn-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
			"--metrics-listen", "127.0.0.1:0"}
	}
	code, stdout, stderr := run(t, "", sngateBin, serveArgs(dir)...)
	line := strings.TrimSpace(stderr)
	if code != exitRuntime || stdout != "" || strings.Count(line, "\n") != 0 {
		t.Fatalf("corrupt store: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{dbFile, "corrupt", "--data-dir", "move the file aside"} {
		if !strings.Contains(line, want) {
			t.Errorf("corrupt store message lacks %q: %s", want, line)
		}
	}

	// Persistence off: the file is not even opened.
	s := startServe(t, "--data-dir", dir, "--no-persistence")
	if !strings.Contains(s.output(), `"store":""`) {
		t.Fatalf("--no-persistence: ready line names a store:\n%s", s.output())
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(); code != 0 {
		t.Fatalf("serve --no-persistence exit %d", code)
	}

	// A data dir in use by another sngate.
	locked := filepath.Join(t.TempDir(), "data")
	startServe(t, "--data-dir", locked)
	code, _, stderr = run(t, "", sngateBin, serveArgs(locked)...)
	line = strings.TrimSpace(stderr)
	if code != exitRuntime || strings.Count(line, "\n") != 0 || !strings.Contains(line, filepath.Join(locked, "sngate.db")) ||
		!strings.Contains(line, "locked") || !strings.Contains(line, "--data-dir") {
		t.Fatalf("locked data dir: exit %d: %s", code, stderr)
	}
}

// sngate pub at QoS 1 on a local topic reaches a subscriber of the
// upstream Mosquitto under the remote prefix, and a command published
// upstream comes down.
func TestE2EBridgeToMosquitto(t *testing.T) {
	needMosquitto(t)
	upPort := startMosquitto(t)
	upstream := mqttSub(t, upPort, "-t", "site-1/#", "-v")
	cfg := writeFile(t, "bridge.yaml", `bridge:
  id: e2e-gw
  url: mqtt://127.0.0.1:`+upPort+`
  min_backoff: 50ms
  max_backoff: 1s
  up:
    - topic: "#"
      local_prefix: sensors/
      remote_prefix: site-1/gw/sensors/
      qos: 1
  down:
    - topic: "#"
      local_prefix: commands/
      remote_prefix: site-1/commands/gw/
      qos: 1
`)
	s := startServe(t, "--config", cfg)
	if rec := logRecord(t, s, "bridge: upstream connected"); rec["client"] != "e2e-gw" {
		t.Fatalf("bridge connected record: %v", rec)
	}

	if code, _, stderr := run(t, "", sngateBin, "pub", "-p", s.snPort, "-t", "sensors/t1", "-m", "21.5", "-q", "1"); code != 0 {
		t.Fatalf("sngate pub: exit %d: %s", code, stderr)
	}
	upstream.waitLine(upstream.stdout, regexp.MustCompile(`^site-1/gw/sensors/t1 21\.5$`))

	local := mqttSub(t, s.mqttPort, "-t", "commands/#", "-v")
	if code, _, stderr := run(t, "", "mosquitto_pub", "-h", "127.0.0.1", "-p", upPort, "-q", "1",
		"-t", "site-1/commands/gw/valve", "-m", "open"); code != 0 {
		t.Fatalf("mosquitto_pub upstream: %s", stderr)
	}
	local.waitLine(local.stdout, regexp.MustCompile(`^commands/valve open$`))

	text := scrape(t, s.metrics)
	if v := sample(t, text, `sngate_bridge_upstream_state{state="connected"}`); v != 1 {
		t.Errorf("bridge state connected = %v", v)
	}
	if v := sample(t, text, "sngate_bridge_connects_total"); v < 1 {
		t.Errorf("bridge connects = %v", v)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.waitLog("bridge closed")
	if code := s.wait(); code != 0 {
		t.Fatalf("serve exit %d after SIGTERM", code)
	}
}

// startMosquitto runs a Mosquitto broker on a free loopback port and
// returns the port; the test is skipped without the mosquitto binary.
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Skip("mosquitto not installed (bash .ci/run installs it)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	conf := writeFile(t, "mosquitto.conf", "listener "+port+" 127.0.0.1\nallow_anonymous true\npersistence false\n")
	p := startProc(t, "mosquitto", nil, bin, "-c", conf, "-v")
	p.waitLine(p.stderr, regexp.MustCompile(`mosquitto version \S+ running`))
	return port
}

// logRecord returns the JSON log record with msg that serve wrote, at
// or before the ready line or after it.
func logRecord(t *testing.T, s *serveInfo, msg string) map[string]any {
	t.Helper()
	// Lines up to the ready line are in the output already (startServe
	// read past them); later ones still come through s.logs.
	for _, line := range strings.Split(s.output(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return s.waitLog(msg)
}
