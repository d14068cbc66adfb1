package main

import (
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
)

// SIGHUP applies a new predefined topic to the running gateway: a publish
// by that ID works afterwards without a restart, and the per-link PUBLISH
// counters show it.
func TestE2EReloadPredefinedTopics(t *testing.T) {
	needMosquitto(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "sngate.yaml")
	write := func(text string) {
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("sn:\n  predefined_topics:\n    - {client_id: \"*\", topic: plant/a, id: 10}\n")
	s := startServe(t, "--config", cfgPath)
	watcher := mqttSub(t, s.mqttPort, "-t", "plant/#", "-v")

	pub := func(id, msg string) int {
		code, _, _ := run(t, "", sngateBin, "pub", "-p", s.snPort, "-T", id, "-m", msg, "-q", "1",
			"--retry", "200ms", "--retries", "2")
		return code
	}
	if code := pub("10", "before"); code != 0 {
		t.Fatalf("publish on predefined topic 10: exit %d", code)
	}
	watcher.waitLine(watcher.stdout, regexp.MustCompile(`^plant/a before$`))
	if code := pub("11", "too-early"); code == 0 {
		t.Fatal("predefined topic 11 accepted before it was configured")
	}

	write("sn:\n  predefined_topics:\n    - {client_id: \"*\", topic: plant/a, id: 10}\n    - {client_id: \"*\", topic: plant/b, id: 11}\n")
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	if rec := s.waitLog("gateway admission reloaded"); rec["predefined_topics"] != float64(2) {
		t.Fatalf("reload record: %v", rec)
	}
	if code := pub("11", "after"); code != 0 {
		t.Fatalf("publish on reloaded predefined topic 11: exit %d", code)
	}
	watcher.waitLine(watcher.stdout, regexp.MustCompile(`^plant/b after$`))

	text := scrape(t, s.metrics)
	if v := sample(t, text, `sngate_sn_link_publish_total{direction="in",link="udp",qos="1"}`); v < 2 {
		t.Errorf("per-link QoS 1 publishes in = %v, want at least 2", v)
	}
}
