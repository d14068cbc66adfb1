package bench

import (
	"os"
	"os/signal"
	"testing"
	"time"
)

// TestServeLocal is the out-of-process benchmark harness: with
// SNGATE_BENCH_SERVE=SN_ADDR,MQTT_ADDR it serves an in-process broker and
// gateway on those addresses for SNGATE_BENCH_SERVE_FOR (default 60s) or
// until interrupted, so that 'sngate bench --pid' can measure it and
// 'go test -cpuprofile' can profile it. Otherwise it is skipped.
func TestServeLocal(t *testing.T) {
	spec := os.Getenv("SNGATE_BENCH_SERVE")
	if spec == "" {
		t.Skip("set SNGATE_BENCH_SERVE=SN_ADDR,MQTT_ADDR to run the benchmark harness")
	}
	sn, mq, ok := cut(spec, ',')
	if !ok {
		t.Fatalf("SNGATE_BENCH_SERVE=%q: want SN_ADDR,MQTT_ADDR", spec)
	}
	d := time.Minute
	if s := os.Getenv("SNGATE_BENCH_SERVE_FOR"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	l, err := StartLocal(LocalConfig{SNAddr: sn, MQTTAddr: mq})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Logf("pid %d serving MQTT-SN on %s, MQTT on %s for %v", os.Getpid(), l.SNAddr, l.MQTTAddr, d)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	select {
	case <-time.After(d):
	case <-sig:
	}
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
