package bridge

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"
)

func userProp(p *paho.Publish, key string) string {
	if p.Properties == nil {
		return ""
	}
	return p.Properties.User.Get(key)
}

// TestAggregateUpDown: local topics go up with their prefix remapped and
// QoS 1 kept; remote ones come down remapped; the origin mark is set.
func TestAggregateUpDown(t *testing.T) {
	m := startMosquitto(t)
	cloud := dialProbe(t, m.addr, "cloud", true, 0)
	cloud.sub("site1/#", 1)

	cfg := testBridgeConfig("gw1", m.url())
	cfg.Up = []Rule{{Topic: "sensors/#", RemotePrefix: "site1/", QoS: 1}}
	cfg.Down = []Rule{{Topic: "#", RemotePrefix: "cmd/gw1/", LocalPrefix: "cmd/", QoS: 1}}
	s := newStack(t, cfg, false)
	s.await("connected", "", nil)
	local := newLocalSub(t, s.srv, "app", "cmd/#")

	s.publishLocal("sensors/t1", 1, "21.5")
	s.publishLocal("other/x", 1, "not bridged")
	got := cloud.next()
	if got.Topic != "site1/sensors/t1" || string(got.Payload) != "21.5" || got.QoS != 1 {
		t.Fatalf("upstream got %s %q QoS %d", got.Topic, got.Payload, got.QoS)
	}
	if o := userProp(got, OriginProperty); o != "gw1" {
		t.Fatalf("origin property %q, want gw1", o)
	}

	cloud.pub("cmd/gw1/led", 1, "on")
	d := local.next()
	if d.Msg.Topic != "cmd/led" || string(d.Msg.Payload) != "on" || d.QoS != 1 {
		t.Fatalf("local got %s %q QoS %d", d.Msg.Topic, d.Msg.Payload, d.QoS)
	}
	if st := s.br.Stats(); st.Upstream != StateConnected || st.ProtocolVersion != 5 || st.Sent > 1 || st.Received > 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAggregateNoLoop: with Up and Down rules over the same topics, a
// message goes around once: No Local on both sides and the origin mark.
func TestAggregateNoLoop(t *testing.T) {
	m := startMosquitto(t)
	cloud := dialProbe(t, m.addr, "cloud", true, 0)
	cloud.sub("#", 1)
	cfg := testBridgeConfig("gw1", m.url())
	cfg.Up = []Rule{{Topic: "#", QoS: 1}}
	cfg.Down = []Rule{{Topic: "#", QoS: 1}}
	s := newStack(t, cfg, false)
	s.await("connected", "", nil)
	local := newLocalSub(t, s.srv, "app", "#")
	checkNoLoop(t, s, cloud, local, "")
}

// checkNoLoop publishes locally and upstream and checks each message
// arrives once on each side, using markers that travel behind it. Local
// topics go up under upPrefix; remote ones come down unchanged.
func checkNoLoop(t *testing.T, s *stack, cloud *probe, local *localSub, upPrefix string) {
	t.Helper()
	s.publishLocal("a/local", 1, "1")
	if d := local.next(); d.Msg.Topic != "a/local" {
		t.Fatalf("local got %s", d.Msg.Topic)
	}
	if p := cloud.next(); p.Topic != upPrefix+"a/local" {
		t.Fatalf("cloud got %s", p.Topic)
	}
	// The cloud probe publishes a marker after it saw a/local: an echo
	// of a/local to the bridge would have been queued before it.
	cloud.pub("b/marker", 1, "m")
	if p := cloud.next(); p.Topic != "b/marker" {
		t.Fatalf("cloud got %s, want its own marker", p.Topic)
	}
	if d := local.next(); d.Msg.Topic != "b/marker" {
		t.Fatalf("local got %s, want the marker (a loop?)", d.Msg.Topic)
	}
	// And the marker was not sent up again: a second local marker shows
	// up at the cloud right after the first one's single copy.
	s.publishLocal("c/marker2", 1, "m2")
	if d := local.next(); d.Msg.Topic != "c/marker2" {
		t.Fatalf("local got %s", d.Msg.Topic)
	}
	if p := cloud.next(); p.Topic != upPrefix+"c/marker2" {
		t.Fatalf("cloud got %s, want marker2 (b/marker sent back up?)", p.Topic)
	}
	// Acknowledgements may still be on their way: upper bounds only.
	if st := s.br.Stats(); st.Sent > 2 || st.Received > 1 {
		t.Fatalf("sent %d received %d, want at most 2 and 1: %+v", st.Sent, st.Received, st)
	}
}

// TestAggregateRestart: Mosquitto stops in the middle of QoS 1 traffic;
// the bridge queues while it is down and drains in order when it is
// back. Nothing the local broker accepted is lost.
func TestAggregateRestart(t *testing.T) {
	m := startMosquitto(t)
	const expiry = 600
	cloud := dialProbe(t, m.addr, "cloud", false, expiry)
	cloud.sub("up/#", 1)
	cfg := testBridgeConfig("gw1", m.url())
	cfg.Up = []Rule{{Topic: "#", LocalPrefix: "data/", RemotePrefix: "up/", QoS: 1}}
	s := newStack(t, cfg, false)
	s.await("connected", "", nil)

	const n = 300
	seen := make(map[int]bool)
	last := 0
	take := func(p *paho.Publish) {
		t.Helper()
		i, err := strconv.Atoi(strings.TrimPrefix(p.Topic, "up/m/"))
		if err != nil || p.QoS != 1 {
			t.Fatalf("cloud got %s QoS %d", p.Topic, p.QoS)
		}
		if !seen[i] {
			// First copies arrive in order; resent ones may repeat.
			if i != last+1 {
				t.Fatalf("message %d after %d", i, last)
			}
			seen[i], last = true, i
		}
	}
	for i := 1; i <= n/3; i++ {
		s.publishLocal(fmt.Sprintf("data/m/%d", i), 1, "x")
	}
	for last < 10 {
		take(cloud.next())
	}
	m.stop()
	s.await("down", "", nil)
	// What the probe received before the stop is in its inbox for good
	// once its client has shut down.
	<-cloud.c.Done()
	for len(cloud.msgs) > 0 {
		take(<-cloud.msgs)
	}
	for i := n/3 + 1; i <= n; i++ {
		s.publishLocal(fmt.Sprintf("data/m/%d", i), 1, "x")
	}
	if q := s.br.Stats().Queued; q == 0 {
		t.Fatal("nothing queued while upstream is down")
	}
	m.start()
	cloud = dialProbe(t, m.addr, "cloud", false, expiry)
	if !cloud.ca.SessionPresent {
		t.Fatal("the cloud probe's session did not survive the restart")
	}
	for last < n {
		take(cloud.next())
	}
	st := s.br.Stats()
	if st.Reconnects == 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAggregateQueueBeforeFirstConnect: on a fresh local broker, what is
// published locally before upstream has ever been reached is queued and
// goes up, in order, once it is.
func TestAggregateQueueBeforeFirstConnect(t *testing.T) {
	m := newMosquitto(t, func(string) string { return "allow_anonymous true\n" })
	// The cloud probe's persistent subscription must be in place before
	// the bridge's first connection: make it, and stop Mosquitto before
	// the bridge starts.
	m.start()
	const expiry = 600
	cloud := dialProbe(t, m.addr, "cloud", false, expiry)
	cloud.sub("up/#", 1)
	m.stop()
	<-cloud.c.Done()

	cfg := testBridgeConfig("gw1", m.url())
	cfg.Up = []Rule{{Topic: "#", LocalPrefix: "data/", RemotePrefix: "up/", QoS: 1}}
	s := newStack(t, cfg, false)
	const n = 100
	for i := 1; i <= n; i++ {
		s.publishLocal(fmt.Sprintf("data/m/%d", i), 1, "x")
	}
	if st := s.br.Stats(); st.Queued != n || st.Connects != 0 {
		t.Fatalf("before upstream was reached: queued %d, connects %d; want %d, 0", st.Queued, st.Connects, n)
	}

	m.start()
	cloud = dialProbe(t, m.addr, "cloud", false, expiry)
	if !cloud.ca.SessionPresent {
		t.Fatal("the cloud probe's session did not survive the restart")
	}
	for last := 0; last < n; {
		p := cloud.next()
		i, err := strconv.Atoi(strings.TrimPrefix(p.Topic, "up/m/"))
		if err != nil || p.QoS != 1 {
			t.Fatalf("cloud got %s QoS %d", p.Topic, p.QoS)
		}
		if i != last+1 {
			t.Fatalf("message %d after %d", i, last)
		}
		last = i
	}
	if st := s.br.Stats(); st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}
