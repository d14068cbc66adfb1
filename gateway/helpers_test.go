package gateway

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport/udp"
)

// waitFor bounds every wait on an event in these tests. It is a safety
// net against hangs, not a timing assertion.
const waitFor = 10 * time.Second

func testLogger() *slog.Logger {
	if os.Getenv("SNGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is a broker, a UDP link on loopback and a gateway serving it.
type env struct {
	t    *testing.T
	srv  *broker.Server
	link *udp.Link
	gw   *Gateway
	addr *net.UDPAddr
}

// testConfig is the gateway config of the tests: short timers, a
// millisecond "second" for the protocol's Duration fields.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Shards = 2
	cfg.RetryInterval = 100 * time.Millisecond
	cfg.MaxRetries = 2
	cfg.Logger = testLogger()
	cfg.second = 10 * time.Millisecond
	return cfg
}

func newEnv(t *testing.T, mutate func(*Config), links ...udp.Config) *env {
	t.Helper()
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, err := broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	lcfg := udp.Config{Addr: "127.0.0.1:0"}
	if len(links) > 0 {
		lcfg = links[0]
	}
	link, err := udp.Listen(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := New(cfg, srv, link)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve() }()
	e := &env{t: t, srv: srv, link: link, gw: gw, addr: net.UDPAddrFromAddrPort(link.LocalAddr())}
	t.Cleanup(func() {
		gw.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
		srv.Close()
	})
	return e
}

// sensor is a raw MQTT-SN client on a UDP socket.
type sensor struct {
	t    *testing.T
	conn *net.UDPConn
	gw   *net.UDPAddr
	p    sn.Packet
	buf  []byte
	node []byte // wireless node ID when behind a "forwarder"
}

func (e *env) sensor() *sensor {
	e.t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &sensor{t: e.t, conn: c, gw: e.addr, buf: make([]byte, 70000)}
}

// rebind moves the sensor to a new source port (NAT rebinding).
func (s *sensor) rebind() {
	s.t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		s.t.Fatal(err)
	}
	s.conn.Close()
	s.conn = c
	s.t.Cleanup(func() { c.Close() })
}

func (s *sensor) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (s *sensor) raw(b []byte) {
	s.t.Helper()
	if _, err := s.conn.WriteToUDP(b, s.gw); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sensor) send(m sn.Message) {
	s.t.Helper()
	var b []byte
	var err error
	if s.node != nil {
		b, err = sn.AppendEncapsulated(nil, 0, s.node, m)
	} else {
		b, err = m.Append(nil)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.raw(b)
}

// recv returns the next frame, or nil after d.
func (s *sensor) recvWithin(d time.Duration) *sn.Packet {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := s.conn.ReadFromUDP(s.buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		s.t.Fatal(err)
	}
	frame := s.buf[:n]
	if s.node != nil {
		enc, err := sn.Decapsulate(frame, &s.p)
		if err != nil {
			s.t.Fatalf("decapsulate % x: %v", frame, err)
		}
		if string(enc.NodeID) != string(s.node) {
			s.t.Fatalf("reply for node %q, want %q", enc.NodeID, s.node)
		}
		return &s.p
	}
	if err := sn.Decode(frame, &s.p); err != nil {
		s.t.Fatalf("decode % x: %v", frame, err)
	}
	return &s.p
}

func (s *sensor) recv() *sn.Packet {
	s.t.Helper()
	p := s.recvWithin(waitFor)
	if p == nil {
		s.t.Fatal("no frame from the gateway")
	}
	return p
}

// expect returns the next frame, which must be of type t.
func (s *sensor) expect(t sn.MsgType) *sn.Packet {
	s.t.Helper()
	p := s.recv()
	if p.Type != t {
		s.t.Fatalf("got %v, want %v", p, t)
	}
	return p
}

func (s *sensor) connect(id string, clean bool, keepAlive uint16) {
	s.t.Helper()
	s.send(&sn.Connect{ClientID: []byte(id), CleanSession: clean, ProtocolID: sn.V12, Duration: keepAlive})
	if rc := s.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.Accepted {
		s.t.Fatalf("CONNACK %v", rc)
	}
}

func (s *sensor) register(topic string, msgID uint16) uint16 {
	s.t.Helper()
	s.send(&sn.Register{MsgID: msgID, TopicName: []byte(topic)})
	ra := s.expect(sn.TypeRegack).Regack
	if ra.ReturnCode != sn.Accepted || ra.MsgID != msgID {
		s.t.Fatalf("REGACK %+v", ra)
	}
	return ra.TopicID
}

func (s *sensor) subscribe(filter string, qos sn.QoS, msgID uint16) sn.Suback {
	s.t.Helper()
	s.send(&sn.Subscribe{QoS: qos, MsgID: msgID, TopicName: []byte(filter)})
	sa := s.expect(sn.TypeSuback).Suback
	if sa.MsgID != msgID {
		s.t.Fatalf("SUBACK %+v", sa)
	}
	return sa
}

// app is an MQTT application attached in-process to the broker.
type app struct {
	t    *testing.T
	sess *broker.Session
	ch   chan broker.Delivery
}

type appSink struct{ ch chan broker.Delivery }

func (a *appSink) Deliver(d broker.Delivery) bool {
	select {
	case a.ch <- d:
		return true
	default:
		return false
	}
}
func (a *appSink) Closed(error) {}

func (e *env) app(id string, filters ...string) *app {
	e.t.Helper()
	s := &appSink{ch: make(chan broker.Delivery, 10000)}
	sess, _, err := e.srv.Connect(broker.ConnectInfo{ClientID: id, CleanStart: true, Listener: "test"}, s)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range filters {
		if codes := sess.Subscribe([]broker.Subscription{{Filter: f, QoS: 2}}); codes[0] > 2 {
			e.t.Fatalf("subscribe %q: %#x", f, codes[0])
		}
	}
	sess.Resume()
	return &app{t: e.t, sess: sess, ch: s.ch}
}

// next returns the next message delivered to the app, acknowledging it.
func (a *app) next() *broker.Message {
	a.t.Helper()
	select {
	case d := <-a.ch:
		switch d.QoS {
		case 1:
			a.sess.Ack(d.PacketID)
		case 2:
			a.sess.Received(d.PacketID)
			a.sess.Complete(d.PacketID)
		}
		return d.Msg
	case <-time.After(waitFor):
		a.t.Fatal("no message for the app")
		return nil
	}
}

func (a *app) publish(topic, payload string, qos byte) {
	a.t.Helper()
	if err := a.sess.Publish(&broker.Message{Topic: topic, Payload: []byte(payload), QoS: qos}); err != nil {
		a.t.Fatal(err)
	}
}

// eventually polls cond; used for gauges that have no event to wait on.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
