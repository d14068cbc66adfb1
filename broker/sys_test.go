package broker

import (
	"testing"
	"time"
)

func TestSysTopics(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.SysInterval = 10 * time.Second
	cfg.Version = "sngate-test"
	srv := newServer(t, cfg, WithClock(clk))
	if err := srv.RegisterSysGauge("sngate/clients/asleep", func() int64 { return 42 }); err != nil {
		t.Fatal(err)
	}
	if srv.RegisterSysGauge("bad/+", func() int64 { return 0 }) == nil {
		t.Error("wildcard gauge accepted")
	}
	s, sink := conn(t, srv, "c")
	sub(t, s, subQ("$SYS/#", 0))
	all, _ := conn(t, srv, "all")
	sub(t, all, subQ("#", 0))
	clk.Advance(0)
	got := map[string]string{}
	for len(sink.ch) > 0 {
		d := sink.next(t)
		got[d.Msg.Topic] = string(d.Msg.Payload)
	}
	want := map[string]string{
		"$SYS/broker/version":           "sngate-test",
		"$SYS/broker/clients/connected": "2",
		"$SYS/broker/uptime":            "0",
		"$SYS/sngate/clients/asleep":    "42",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) < 12 {
		t.Errorf("only %d $SYS topics: %v", len(got), got)
	}
	clk.Advance(10 * time.Second)
	if d := sink.next(t); d.Msg.Topic == "" {
		t.Fatal("no second publication")
	}
	// Retained: a late subscriber gets them.
	late, lateSink := conn(t, srv, "late")
	sub(t, late, subQ("$SYS/broker/uptime", 0))
	if d := lateSink.next(t); string(d.Msg.Payload) != "10" || !d.Retain {
		t.Errorf("uptime %q retain %v", d.Msg.Payload, d.Retain)
	}
	if st := srv.Stats(); st.MessagesReceived != 0 {
		t.Errorf("$SYS counted as received: %d", st.MessagesReceived)
	}
}
