package listeners

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// testParkAfter makes idle connections park quickly, so that the tests
// go through lingering, parking and waking all the time.
const testParkAfter = 5 * time.Millisecond

// wait bounds every blocking step of a test, so that a bug fails the test
// instead of hanging it. It is not a performance threshold.
const wait = 10 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SNGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// newBroker starts a broker core with the default config, changed by
// mutate, without $SYS unless asked.
func newBroker(t testing.TB, mutate func(*broker.Config)) *broker.Server {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.SysInterval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// startListener serves cfg (Addr defaults to a free loopback port) and
// returns the listener and its address.
func startListener(t testing.TB, srv *broker.Server, cfg Config) (*Listener, string) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	l, err := New(cfg, srv, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.parkAfter = testParkAfter
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Serve() }()
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return l, l.Addr().String()
}

// setup is the common case: a default broker and one TCP listener.
func setup(t testing.TB, cfg Config) (*broker.Server, string) {
	srv := newBroker(t, nil)
	_, addr := startListener(t, srv, cfg)
	return srv, addr
}

// raw is a hand-driven MQTT client on a plain socket, built on the codec.
type raw struct {
	t       testing.TB
	c       net.Conn
	br      *bufio.Reader
	version byte
}

func dialRaw(t testing.TB, addr string, version byte) *raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, br: bufio.NewReader(c), version: version}
}

func (r *raw) write(b []byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *raw) send(p packets.Packet) {
	r.t.Helper()
	b, err := p.Append(nil, r.version)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(b)
}

// next reads the next packet.
func (r *raw) next() (packets.Packet, error) {
	r.c.SetReadDeadline(time.Now().Add(wait))
	return packets.ReadPacket(r.br, r.version, 0)
}

// expect reads the next packet and requires its type.
func (r *raw) expect(typ byte) packets.Packet {
	r.t.Helper()
	p, err := r.next()
	if err != nil {
		r.t.Fatalf("want %s, got error %v", packets.TypeName(typ), err)
	}
	if p.Type() != typ {
		r.t.Fatalf("want %s, got %s %+v", packets.TypeName(typ), packets.TypeName(p.Type()), p)
	}
	return p
}

// expectClosed requires the server to close the connection, after at
// most the packets it returns.
func (r *raw) expectClosed() []packets.Packet {
	r.t.Helper()
	var got []packets.Packet
	for {
		p, err := r.next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatalf("connection not closed; got %v", got)
			}
			return got
		}
		got = append(got, p)
	}
}

// connect sends CONNECT and requires a successful CONNACK.
func (r *raw) connect(c *packets.Connect) *packets.Connack {
	r.t.Helper()
	c.Version = r.version
	r.send(c)
	ack := r.expect(packets.CONNACK).(*packets.Connack)
	if ack.ReasonCode != 0 {
		r.t.Fatalf("CONNACK reason 0x%02X %+v", ack.ReasonCode, ack.Props)
	}
	return ack
}

func (r *raw) subscribe(id uint16, opts ...packets.SubOption) *packets.Suback {
	r.t.Helper()
	r.send(&packets.Subscribe{PacketID: id, Filters: opts})
	return r.expect(packets.SUBACK).(*packets.Suback)
}

// rawConnected dials and connects a client with a clean session.
func rawConnected(t testing.TB, addr string, version byte, id string) *raw {
	r := dialRaw(t, addr, version)
	r.connect(&packets.Connect{ClientID: id, CleanStart: true, KeepAlive: 60})
	return r
}

// v5 is a paho.golang MQTT 5 client with its received messages.
type v5 struct {
	*paho.Client
	msgs  chan *paho.Publish
	disc  chan *paho.Disconnect
	ack   *paho.Connack
	close func()
}

// dialV5 connects an MQTT 5 client. cp may be nil (clean start, no
// extras); its ClientID defaults to id.
func dialV5(t testing.TB, addr, id string, cp *paho.Connect) *v5 {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	c := &v5{msgs: make(chan *paho.Publish, 1000), disc: make(chan *paho.Disconnect, 1)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.msgs <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disc <- d },
	})
	if cp == nil {
		cp = &paho.Connect{CleanStart: true}
	}
	if cp.ClientID == "" {
		cp.ClientID = id
	}
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 60
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		nc.Close()
		t.Fatalf("connect %s: %v (connack %+v)", id, err, ack)
	}
	c.ack = ack
	c.close = func() { nc.Close() }
	t.Cleanup(func() {
		_ = c.Disconnect(&paho.Disconnect{})
		nc.Close()
	})
	return c
}

func (c *v5) sub(t testing.TB, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	return c.subProps(t, nil, opts...)
}

func (c *v5) subProps(t testing.TB, props *paho.SubscribeProperties, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts, Properties: props})
	if err != nil && sa == nil {
		t.Fatalf("subscribe: %v", err)
	}
	return sa
}

func (c *v5) pub(t testing.TB, p *paho.Publish) *paho.PublishResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := c.Publish(ctx, p)
	if err != nil && r == nil {
		t.Fatalf("publish: %v", err)
	}
	return r
}

// recv waits for the next message.
func (c *v5) recv(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message received")
		return nil
	}
}

// none checks that no message is waiting after a round trip to the
// server (a PINGREQ-free barrier: a QoS 1 publish to an unrelated topic).
func (c *v5) none(t testing.TB) {
	t.Helper()
	c.pub(t, &paho.Publish{Topic: "barrier/" + c.ClientID(), QoS: 1})
	select {
	case m := <-c.msgs:
		t.Fatalf("unexpected message %q %q", m.Topic, m.Payload)
	default:
	}
}

// dialV3 connects a paho.mqtt.golang MQTT 3.1.1 client.
func dialV3(t testing.TB, url, id string, mutate func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(60 * time.Second).
		SetConnectTimeout(wait).SetWriteTimeout(wait)
	if mutate != nil {
		mutate(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("v3 connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func waitTok(t testing.TB, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(wait) {
		t.Fatal("token timed out")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

// v3sub subscribes and forwards messages to a channel.
func v3sub(t testing.TB, c mqtt.Client, filter string, qos byte) chan mqtt.Message {
	t.Helper()
	ch := make(chan mqtt.Message, 1000)
	waitTok(t, c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) { ch <- m }))
	return ch
}

func recvV3(t testing.TB, ch chan mqtt.Message) mqtt.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatal("no message received")
		return nil
	}
}

var _ = io.EOF

// until reads packets until one of type typ arrives, after sending a
// PINGREQ when typ is PINGRESP, and returns the packets before it.
func (r *raw) until(typ byte) []packets.Packet {
	r.t.Helper()
	if typ == packets.PINGRESP {
		r.send(&packets.Pingreq{})
	}
	var got []packets.Packet
	for {
		p, err := r.next()
		if err != nil {
			r.t.Fatalf("waiting for %s: %v (got %v)", packets.TypeName(typ), err, got)
		}
		if p.Type() == typ {
			return got
		}
		got = append(got, p)
	}
}

// waitFor polls cond, for state that has no event to wait on (a
// connection the broker has not yet seen close).
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// fastHash is a password file hash at bcrypt's lowest cost, to keep the
// tests quick under the race detector.
func fastHash(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	return string(h), err
}

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
