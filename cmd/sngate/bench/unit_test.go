package bench

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

func TestHistBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 127, 128, 129, 255, 256, 1000, 1e6, 1e9, 1 << 40, 1 << 63, ^uint64(0)} {
		i := bucketOf(v)
		if i < prev || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d (previous %d, buckets %d)", v, i, prev, histBuckets)
		}
		prev = i
		if lo, hi := bucketLow(i), bucketLow(i+1); v < lo || (hi > lo && v >= hi) {
			t.Fatalf("%d not in bucket %d [%d, %d)", v, i, lo, hi)
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	h := newHist()
	for i := int64(1); i <= 1000; i++ {
		h.add(i * 1000) // 1 µs .. 1 ms
	}
	h.add(-5) // a clock step counts as 0
	o := newHist()
	o.add(5e6)
	h.merge(o)
	s := h.summary()
	if s.Samples != 1002 || s.MaxMs != 5 {
		t.Fatalf("summary %+v", s)
	}
	for _, c := range []struct{ got, want float64 }{{s.P50Ms, 0.5}, {s.P90Ms, 0.9}, {s.P99Ms, 0.99}} {
		if c.got < c.want*0.98 || c.got > c.want*1.02 {
			t.Errorf("quantile %.4f ms, want %.2f ms within 2%%", c.got, c.want)
		}
	}
	if (&hist{counts: make([]uint64, histBuckets)}).summary() != (Latency{}) {
		t.Error("empty histogram has a summary")
	}
}

func TestStampAndSeqSet(t *testing.T) {
	p := make([]byte, MinSize)
	stamp(p, 123456789, 7, 42)
	at, c, seq, ok := unstamp(p)
	if !ok || at != 123456789 || c != 7 || seq != 42 {
		t.Fatalf("unstamp = %d %d %d %v", at, c, seq, ok)
	}
	if _, _, _, ok := unstamp(p[:MinSize-1]); ok {
		t.Error("short payload accepted")
	}
	var s seqSet
	for _, v := range []uint32{5, 1000, 5, maxSeq + 1} {
		s.add(v)
	}
	if s.n != 3 || s.add(1000) {
		t.Errorf("seqSet counted %d distinct, want 3, and 1000 again is a duplicate", s.n)
	}
}

func TestParsePublish(t *testing.T) {
	for q := byte(0); q <= 2; q++ {
		pk := packets.Publish{Topic: "a/b", QoS: q, PacketID: 9, Payload: []byte("hello")}
		b, err := pk.Append(nil, packets.V311)
		if err != nil {
			t.Fatal(err)
		}
		h, err := packets.ParseFixedHeader(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		qos, id, payload, ok := parsePublish(h, b[h.Size:])
		if !ok || qos != q || string(payload) != "hello" || (q > 0 && id != 9) {
			t.Errorf("QoS %d: parsed %d %d %q %v", q, qos, id, payload, ok)
		}
	}
	h := packets.FixedHeader{Type: packets.PUBLISH, Flags: 2}
	for _, body := range [][]byte{nil, {0}, {0, 9, 'a'}, {0, 1, 'a', 0}} {
		if _, _, _, ok := parsePublish(h, body); ok {
			t.Errorf("malformed body %v accepted", body)
		}
	}
}

func TestReadMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.Write([]byte("# nothing here\nfoo 1\n"))
			return
		}
		w.Write([]byte("# HELP x\nprocess_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 1.2345e+07\n"))
	}))
	defer srv.Close()
	s, err := readMetrics(t.Context(), srv.URL+"/metrics")
	if err != nil || s.CPU != 12.5 || s.RSS != 12345000 {
		t.Fatalf("readMetrics = %+v, %v", s, err)
	}
	if _, err := readMetrics(t.Context(), srv.URL+"/bad"); err == nil {
		t.Error("metrics without the process collector accepted")
	}
}

func TestReadProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	s, err := readProc(os.Getpid())
	if err != nil || s.RSS <= 0 || s.CPU < 0 {
		t.Fatalf("readProc = %+v, %v", s, err)
	}
	if _, err := readProc(1 << 30); err == nil {
		t.Error("a missing process was read")
	}
}

func TestConfigCheck(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Scenario = "nope" },
		func(c *Config) { c.Clients = 0 },
		func(c *Config) { c.QoS = 3 },
		func(c *Config) { c.QoS = -1; c.Scenario = ScenarioSubscribe },
		func(c *Config) { c.Size = 8 },
		func(c *Config) { c.Rate = -1 },
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.Gateway = "no-port" },
		func(c *Config) { c.Scenario = ScenarioSleep; c.MQTT = "" },
		func(c *Config) { c.Scenario = ScenarioSleep; c.Count = 5000 },
		func(c *Config) { c.NullSink, c.Local = true, true },
		func(c *Config) { c.NullSink = true; c.Scenario = ScenarioSleep },
		func(c *Config) { c.SubscriberQoS = 3 },
	}
	for i, mutate := range bad {
		c := DefaultConfig()
		mutate(&c)
		if Validate(c) == nil {
			t.Errorf("case %d: invalid config accepted", i)
		}
	}
	c, err := DefaultConfig().check()
	if err != nil || c.Workers < 1 || c.Drain < 5*time.Second || c.SubscriberQoS != 0 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

func TestReportJSONHeadline(t *testing.T) {
	rep := newReport(&Config{Scenario: ScenarioPublish, Clients: 1, Size: 16, Gateway: "x:1"})
	rep.Offered, rep.Delivered, rep.DurationS, rep.deliveryS = 100, 90, 1, 1
	rep.lat.add(2e6)
	rep.Errors["timeout: CONNECT"] = 2
	rep.finish()
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"delivered_per_sec", "offered_per_sec", "loss_pct", "p50_ms", "p99_ms", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report has no %q", k)
		}
	}
	if m["loss_pct"].(float64) != 10 || m["p99_ms"].(float64) != 2 {
		t.Errorf("loss %v, p99 %v", m["loss_pct"], m["p99_ms"])
	}
	buf.Reset()
	if err := rep.WriteTable(&buf); err != nil || !strings.Contains(buf.String(), "timeout: CONNECT") {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
	if num(1234567) != "1,234,567" || num(12) != "12" {
		t.Errorf("num: %s %s", num(1234567), num(12))
	}
}

func TestSourceAddrs(t *testing.T) {
	c := DefaultConfig()
	c.Clients = 1000
	loop, _ := resolveUDP("127.0.0.1:1884")
	srcs, err := sourceAddrs(&c, loop, 7)
	if err != nil || len(srcs) != 3 || !srcs[0].IsLoopback() || srcs[0] == srcs[1] {
		t.Fatalf("auto sources on loopback: %v, %v", srcs, err)
	}
	other, _ := resolveUDP("192.0.2.1:1884")
	if srcs, err := sourceAddrs(&c, other, 7); err != nil || srcs != nil {
		t.Fatalf("auto sources elsewhere: %v, %v", srcs, err)
	}
	c.Sources = 4
	if _, err := sourceAddrs(&c, other, 7); err == nil {
		t.Error("--sources accepted off loopback")
	}
}
