package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/transport/udp"
)

// waitFor bounds every wait on an event in these tests. It is a safety
// net against hangs, not a timing assertion.
const waitFor = 15 * time.Second

func testLogger() *slog.Logger {
	if os.Getenv("SNGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// mosquittoPath returns the mosquitto binary, or skips the test.
func mosquittoPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("mosquitto is not installed: the bridge tests run against a real Mosquitto " +
		"(apt-get install mosquitto mosquitto-clients)")
	return ""
}

// mosquitto is a Mosquitto broker of one test, on a free loopback port,
// with its persistence in a temporary directory.
type mosquitto struct {
	t      *testing.T
	bin    string
	conf   string
	addr   string
	out    *lockedBuffer
	cmd    *exec.Cmd
	exited chan struct{}
}

// lockedBuffer is mosquitto's output, written by the exec package.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	return startMosquittoWith(t, func(string) string { return "allow_anonymous true\n" })
}

// startMosquittoWith starts mosquitto with the listener settings extra
// returns, given the broker's directory.
func startMosquittoWith(t *testing.T, extra func(dir string) string) *mosquitto {
	t.Helper()
	m := newMosquitto(t, extra)
	m.start()
	return m
}

// newMosquitto configures mosquitto on a free port, with the listener
// settings extra returns, without starting it.
func newMosquitto(t *testing.T, extra func(dir string) string) *mosquitto {
	t.Helper()
	bin := mosquittoPath(t)
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\n%spersistence true\npersistence_location %s/\nlog_dest stderr\nlog_type all\n",
		port, extra(dir), dir)
	if u, err := user.Current(); err == nil {
		conf += "user " + u.Username + "\n" // as root, do not drop to "mosquitto"
	}
	m := &mosquitto{t: t, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), addr: "127.0.0.1:" + strconv.Itoa(port)}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
	return m
}

// start runs mosquitto and waits until it accepts connections.
func (m *mosquitto) start() {
	m.t.Helper()
	m.out = &lockedBuffer{}
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) {
		_ = cmd.Wait()
		close(ch)
	}(m.cmd, m.exited)
	// Mosquitto signals nothing when it is ready: try to connect.
	deadline := time.Now().Add(waitFor)
	for {
		c, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-m.exited:
			m.t.Fatalf("mosquitto exited: %s", m.out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto does not accept on %s: %v", m.addr, err)
		}
	}
}

// stop ends mosquitto gracefully (it saves its persistence file).
func (m *mosquitto) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(waitFor):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

func (m *mosquitto) url() string { return "mqtt://" + m.addr }

// probe is an MQTT 5 test client of the upstream broker.
type probe struct {
	t    *testing.T
	c    *paho.Client
	msgs chan *paho.Publish
	ca   *paho.Connack
}

func dialProbe(t *testing.T, addr, id string, clean bool, expiry uint32) *probe {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{t: t, msgs: make(chan *paho.Publish, 4096)}
	p.c = paho.NewClient(paho.ClientConfig{
		Conn:               conn,
		OnClientError:      func(error) {},
		OnServerDisconnect: func(*paho.Disconnect) {},
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case p.msgs <- pr.Packet:
			default:
				t.Errorf("probe %s: inbox full", id)
			}
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	p.ca, err = p.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}})
	if err != nil {
		t.Fatalf("probe connect: %v", err)
	}
	t.Cleanup(p.close)
	return p
}

func (p *probe) close() { _ = p.c.Disconnect(&paho.Disconnect{}) }

func (p *probe) sub(filter string, qos byte) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sa, err := p.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if err != nil || sa.Reasons[0] > 2 {
		p.t.Fatalf("probe subscribe %s: %v %v", filter, err, sa)
	}
}

func (p *probe) pub(topic string, qos byte, payload string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := p.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)}); err != nil {
		p.t.Fatalf("probe publish: %v", err)
	}
}

func (p *probe) next() *paho.Publish {
	p.t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case <-time.After(waitFor):
		p.t.Fatal("probe: no message")
		return nil
	}
}

// localSub is an in-process subscriber of the local broker.
type localSub struct {
	t    *testing.T
	sess *broker.Session
	ch   chan broker.Delivery
}

func (l *localSub) Deliver(d broker.Delivery) bool {
	select {
	case l.ch <- d:
		return true
	default:
		return false
	}
}

func (l *localSub) Closed(error) {}

func newLocalSub(t *testing.T, srv *broker.Server, id string, filters ...string) *localSub {
	t.Helper()
	l := &localSub{t: t, ch: make(chan broker.Delivery, 4096)}
	sess, _, err := srv.Connect(broker.ConnectInfo{ClientID: id, CleanStart: true, Listener: "test"}, l)
	if err != nil {
		t.Fatal(err)
	}
	subs := make([]broker.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = broker.Subscription{Filter: f, QoS: 1}
	}
	sess.Subscribe(subs)
	sess.Resume()
	l.sess = sess
	return l
}

func (l *localSub) next() broker.Delivery {
	l.t.Helper()
	select {
	case d := <-l.ch:
		if d.QoS == 1 {
			l.sess.Ack(d.PacketID)
		}
		return d
	case <-time.After(waitFor):
		l.t.Fatal("local subscriber: no message")
		return broker.Delivery{}
	}
}

// stack is one sngate: broker, optional MQTT-SN gateway on UDP, bridge.
type stack struct {
	t   *testing.T
	srv *broker.Server
	gw  *gateway.Gateway
	udp *udp.Link
	br  *Bridge
	ev  chan [2]string
}

func testBridgeConfig(id, url string) Config {
	return Config{
		ID:             id,
		URL:            url,
		MinBackoff:     20 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		ConnectTimeout: 5 * time.Second,
		Logger:         testLogger(),
	}
}

func newStack(t *testing.T, cfg Config, withGateway bool) *stack {
	t.Helper()
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, err := broker.New(bcfg, broker.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, srv: srv, ev: make(chan [2]string, 65536)}
	br, err := New(cfg, srv)
	if err != nil {
		t.Fatal(err)
	}
	br.onEvent = func(kind, client string) {
		select {
		case s.ev <- [2]string{kind, client}:
		default:
		}
	}
	s.br = br
	br.Start()
	if withGateway {
		link, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		gcfg := gateway.DefaultConfig()
		gcfg.Shards = 2
		gcfg.Logger = testLogger()
		gw, err := gateway.New(gcfg, srv, link)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- gw.Serve() }()
		s.gw, s.udp = gw, link
		t.Cleanup(func() {
			gw.Close()
			if err := <-served; err != nil && !errors.Is(err, gateway.ErrClosed) {
				t.Errorf("gateway Serve: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		br.Close()
		srv.Close()
	})
	return s
}

// await waits for an event of kind (and client, if not "") after which
// cond (nil: none) holds.
func (s *stack) await(kind, client string, cond func() bool) {
	s.t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case e := <-s.ev:
			if e[0] == kind && (client == "" || e[1] == client) && (cond == nil || cond()) {
				return
			}
		case <-timeout:
			s.t.Fatalf("no %q event for %q", kind, client)
		}
	}
}

// synced reports whether the bridge has applied everything the observer
// reported for transparent client id.
func (s *stack) synced(id string) func() bool {
	return func() bool {
		c := s.br.tr.get(id)
		if c == nil {
			return false
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.doneGen == c.wantGen
	}
}

// publishLocal publishes an internal message on the local broker.
func (s *stack) publishLocal(topic string, qos byte, payload string) {
	s.t.Helper()
	if err := s.srv.PublishAnonymous(&broker.Message{Topic: topic, QoS: qos, Payload: []byte(payload)}, ""); err != nil {
		s.t.Fatal(err)
	}
}
