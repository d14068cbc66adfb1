package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/sn/client"
)

// sensor is an MQTT-SN client of one stack's gateway.
type sensor struct {
	t    *testing.T
	c    *client.Client
	msgs chan client.Message
}

func (s *stack) sensor(id string, clean bool) *sensor {
	s.t.Helper()
	se := &sensor{t: s.t, msgs: make(chan client.Message, 256)}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, "udp", s.udp.LocalAddr().String(), client.Options{
		ClientID:      id,
		CleanSession:  clean,
		RetryInterval: 500 * time.Millisecond,
		OnPublish:     func(m client.Message) { se.msgs <- m },
	})
	if err != nil {
		s.t.Fatal(err)
	}
	se.c = c
	s.t.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		s.t.Fatalf("sensor %s connect: %v", id, err)
	}
	return se
}

func (se *sensor) subscribe(topic string) {
	se.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, _, err := se.c.Subscribe(ctx, client.Topic(topic), sn.QoS1); err != nil {
		se.t.Fatalf("subscribe %s: %v", topic, err)
	}
}

func (se *sensor) publish(topic string, payload string) {
	se.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := se.c.Publish(ctx, client.Topic(topic), sn.QoS1, false, []byte(payload)); err != nil {
		se.t.Fatalf("publish %s: %v", topic, err)
	}
}

func (se *sensor) next() client.Message {
	se.t.Helper()
	select {
	case m := <-se.msgs:
		return m
	case <-time.After(waitFor):
		se.t.Fatal("sensor: no message")
		return client.Message{}
	}
}

func transparentConfig(id, url string) Config {
	cfg := testBridgeConfig(id, url)
	cfg.Transparent.Enabled = true
	return cfg
}

// TestTransparentSubscribe: an MQTT-SN sensor's subscription and
// publishes go to its own upstream session, which Mosquitto keeps under
// the sensor's client ID; what the cluster sends that session reaches the
// sensor once.
func TestTransparentSubscribe(t *testing.T) {
	m := startMosquitto(t)
	cloud := dialProbe(t, m.addr, "cloud", true, 0)
	cloud.sub("data/#", 1)
	s := newStack(t, transparentConfig("gw1", m.url()), true)
	se := s.sensor("s1", false)
	se.subscribe("cmd/s1")
	s.await("t-idle", "s1", s.synced("s1"))

	cloud.pub("cmd/s1", 1, "blink")
	if got := se.next(); got.Topic != "cmd/s1" || string(got.Payload) != "blink" || got.QoS != sn.QoS1 {
		t.Fatalf("sensor got %q %q QoS %d", got.Topic, got.Payload, got.QoS)
	}

	se.publish("data/s1", "42")
	p := cloud.next()
	if p.Topic != "data/s1" || string(p.Payload) != "42" || userProp(p, OriginProperty) != "gw1" {
		t.Fatalf("cloud got %s %q origin %q", p.Topic, p.Payload, userProp(p, OriginProperty))
	}

	// A local publish reaches the sensor through the local broker only:
	// the copy the cluster sends its upstream session is dropped.
	s.publishLocal("cmd/s1", 1, "local")
	if got := se.next(); string(got.Payload) != "local" {
		t.Fatalf("sensor got %q", got.Payload)
	}
	cloud.pub("cmd/s1", 1, "marker")
	if got := se.next(); string(got.Payload) != "marker" {
		t.Fatalf("sensor got %q, want the marker (a duplicate?)", got.Payload)
	}
	st := s.br.Stats()
	if st.TransparentClients != 1 || st.TransparentConnected != 1 {
		t.Fatalf("stats %+v", st)
	}

	// The session is in Mosquitto under the sensor's client ID.
	owner := dialProbe(t, m.addr, "s1", false, 60)
	if !owner.ca.SessionPresent {
		t.Fatalf("no upstream session for s1 in mosquitto: %+v; %s", s.br.Stats(), m.out)
	}
}

// TestTransparentMove: a sensor moves between two gateways bridged to the
// same Mosquitto and keeps its subscriptions: a message published at
// Mosquitto after the move reaches it through the new gateway.
func TestTransparentMove(t *testing.T) {
	m := startMosquitto(t)
	cloud := dialProbe(t, m.addr, "cloud", true, 0)
	a := newStack(t, transparentConfig("gwA", m.url()), true)
	b := newStack(t, transparentConfig("gwB", m.url()), true)

	se := a.sensor("s2", false)
	se.subscribe("cmd/s2")
	a.await("t-idle", "s2", a.synced("s2"))
	cloud.pub("cmd/s2", 1, "at A")
	if got := se.next(); string(got.Payload) != "at A" {
		t.Fatalf("sensor got %q", got.Payload)
	}

	// The sensor goes silent at A (no DISCONNECT) and wakes up at B.
	se.c.Close()
	moved := b.sensor("s2", false)
	b.await("t-idle", "s2", b.synced("s2"))
	a.await("t-moved", "s2", nil)

	cloud.pub("cmd/s2", 1, "at B")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mosquitto: %s", m.out)
		}
	})
	got := moved.next()
	if string(got.Payload) == "at A" {
		// At least once: A's acknowledgement may not have reached
		// Mosquitto before the session moved.
		got = moved.next()
	}
	if got.Topic != "cmd/s2" || string(got.Payload) != "at B" {
		t.Fatalf("moved sensor got %q %q", got.Topic, got.Payload)
	}
	if st := a.br.Stats(); st.TransparentConnected != 0 {
		t.Fatalf("gateway A still connected upstream for the moved sensor: %+v", st)
	}
}

// TestTransparentLeave: a sensor that disconnects closes its upstream
// link; its persistent session stays in Mosquitto, and it gets it back
// on reconnecting through another gateway.
func TestTransparentLeave(t *testing.T) {
	m := startMosquitto(t)
	cloud := dialProbe(t, m.addr, "cloud", true, 0)
	a := newStack(t, transparentConfig("gwA", m.url()), true)
	se := a.sensor("s3", false)
	se.subscribe("cmd/s3")
	a.await("t-idle", "s3", a.synced("s3"))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := se.c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	a.await("t-removed", "s3", nil)

	cloud.pub("cmd/s3", 1, "while away") // queued in the cluster
	b := newStack(t, transparentConfig("gwB", m.url()), true)
	back := b.sensor("s3", false)
	if got := back.next(); string(got.Payload) != "while away" {
		t.Fatalf("sensor got %q", got.Payload)
	}
}
