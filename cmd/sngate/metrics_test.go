package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/transport/udp"
)

func TestMetricsServer(t *testing.T) {
	srv, err := broker.New(broker.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	link, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0", Name: "udp-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	comps := &components{broker: srv, udp: []*udp.Link{link}}
	ms, err := startMetrics("127.0.0.1:0", newRegistry(comps), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + ms.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"# TYPE sngate_broker_sessions gauge",
		"# TYPE sngate_broker_messages_received_total counter",
		`sngate_broker_dropped_messages_total{reason="queue_full"} 0`,
		`sngate_link_frames_total{direction="in",kind="udp",link="udp-test"} 0`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	ms.healthy.Store(false)
	if code, _ := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz while stopping: %d", code)
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + ms.Addr() + "/healthz"); err == nil {
		t.Fatal("metrics server still answers after Close")
	}
}

func TestMetricsListenError(t *testing.T) {
	if _, err := startMetrics("256.0.0.1:1", newRegistry(&components{}), discardLogger()); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Fatalf("bad address: %v", err)
	}
}
