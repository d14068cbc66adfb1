package gateway

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/radios/simradio"
	"github.com/sngate/sngate/sn"
	snclient "github.com/sngate/sngate/sn/client"
	"github.com/sngate/sngate/transport"
)

// Helpers of the radio tests (sim_radio_test.go, radiolink_test.go,
// serial_e2e_test.go): a gateway on any links with an in-process broker,
// an MQTT-side application session, a net.Conn over a simulated radio
// node for sn/client, and a scriptable metered link.

// radioConfig is the gateway config of the radio tests.
func radioConfig() Config {
	cfg := DefaultConfig()
	cfg.Shards = 2
	cfg.RetryInterval = 20 * time.Millisecond
	cfg.MaxRetries = 50
	cfg.Logger = testLogger()
	return cfg
}

// startRadioGateway starts a broker and a gateway serving links; both
// stop at the end of the test.
func startRadioGateway(t *testing.T, cfg Config, links ...transport.Link) (*Gateway, *broker.Server) {
	t.Helper()
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, err := broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(cfg, srv, links...)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve() }()
	t.Cleanup(func() {
		_ = gw.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
		srv.Close()
	})
	return gw, srv
}

// mqttApp is an application session attached in-process to the broker.
// It acknowledges every delivery and keeps them in order.
type mqttApp struct {
	t    *testing.T
	sess *broker.Session
	ch   chan broker.Delivery
}

type mqttAppSink struct{ ch chan broker.Delivery }

func (s *mqttAppSink) Deliver(d broker.Delivery) bool {
	select {
	case s.ch <- d:
		return true
	default:
		return false
	}
}

func (s *mqttAppSink) Closed(error) {}

func newMQTTApp(t *testing.T, srv *broker.Server, id string, qos byte, filters ...string) *mqttApp {
	t.Helper()
	s := &mqttAppSink{ch: make(chan broker.Delivery, 4096)}
	sess, _, err := srv.Connect(broker.ConnectInfo{ClientID: id, CleanStart: true, Listener: "test"}, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range filters {
		if codes := sess.Subscribe([]broker.Subscription{{Filter: f, QoS: qos}}); codes[0] > 2 {
			t.Fatalf("subscribe %q: %#x", f, codes[0])
		}
	}
	sess.Resume()
	return &mqttApp{t: t, sess: sess, ch: s.ch}
}

// next returns the next message delivered to the app and acknowledges it.
func (a *mqttApp) next() (*broker.Message, broker.Delivery) {
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
		return d.Msg, d
	case <-time.After(waitFor):
		a.t.Fatal("no message for the MQTT application")
		return nil, broker.Delivery{}
	}
}

func (a *mqttApp) publish(topic string, payload []byte, qos byte) {
	a.t.Helper()
	if err := a.sess.Publish(&broker.Message{Topic: topic, Payload: payload, QoS: qos}); err != nil {
		a.t.Fatal(err)
	}
}

// simAddr is the net.Addr of a simulated radio node.
type simAddr uint16

func (a simAddr) Network() string { return "sim" }
func (a simAddr) String() string  { return fmt.Sprintf("node-%d", uint16(a)) }

// simConn is a sensor's datagram conn over one node of a simulated
// medium, for sn/client. Every uplink is sent at acknowledgement
// priority (the node's own budget, if any, is the test's business).
type simConn struct {
	ep   *radios.SimEndpoint
	done chan struct{}
	once sync.Once
}

func newSimConn(t *testing.T, m *radios.SimMedium, id uint16) *simConn {
	t.Helper()
	ep, err := m.Node(id)
	if err != nil {
		t.Fatal(err)
	}
	return &simConn{ep: ep, done: make(chan struct{})}
}

func (c *simConn) Read(p []byte) (int, error) {
	select {
	case f := <-c.ep.C():
		return copy(p, f.Data), nil
	case <-c.done:
		return 0, net.ErrClosed
	case <-c.ep.Done():
		return 0, net.ErrClosed
	}
}

func (c *simConn) Write(p []byte) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	if err := c.ep.Send(radios.SimGateway, p, radios.PriorityAck); err != nil {
		return 0, fmt.Errorf("sim node %d: %w", c.ep.ID(), err)
	}
	return len(p), nil
}

func (c *simConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *simConn) LocalAddr() net.Addr              { return simAddr(c.ep.ID()) }
func (c *simConn) RemoteAddr() net.Addr             { return simAddr(radios.SimGateway) }
func (c *simConn) SetDeadline(time.Time) error      { return nil }
func (c *simConn) SetReadDeadline(time.Time) error  { return nil }
func (c *simConn) SetWriteDeadline(time.Time) error { return nil }

// newSimSensor returns an sn/client Client on simulated node id. Received
// messages go to the returned channel.
func newSimSensor(t *testing.T, m *radios.SimMedium, id uint16, opts snclient.Options) (*snclient.Client, chan snclient.Message) {
	t.Helper()
	msgs := make(chan snclient.Message, 4096)
	if opts.ClientID == "" {
		opts.ClientID = fmt.Sprintf("node-%d", id)
	}
	opts.OnPublish = func(m snclient.Message) { msgs <- m }
	c := snclient.New(newSimConn(t, m, id), opts)
	t.Cleanup(func() { _ = c.Close() })
	return c, msgs
}

// startSim starts a medium, its gateway link and a gateway with a broker.
func startSim(t *testing.T, sc radios.SimConfig, lo simradio.Options, cfg Config) (*radios.SimMedium, *simradio.Link, *Gateway, *broker.Server) {
	t.Helper()
	m := radios.NewSimMedium(sc)
	t.Cleanup(m.Close) // after the gateway's cleanup, registered below
	link := simradio.NewWithOptions(m, lo)
	gw, srv := startRadioGateway(t, cfg, link)
	return m, link, gw, srv
}

// fakeFrame is one frame on a fakeRadio, with its downlink priority.
type fakeFrame struct {
	addr transport.Addr
	data []byte
	prio transport.Priority
}

// fakeRadio is a scriptable metered link: it records every downlink
// with its priority, refuses writes from a priority on with
// ErrCongested, gives a settable retry advice and reports the failures
// the test pushes.
type fakeRadio struct {
	in       chan fakeFrame
	out      chan fakeFrame
	failures chan transport.TxFailure
	refuseAt atomic.Int32 // writes at this priority or lower refused; -1 none
	refuseTo atomic.Value // a transport.Addr: only writes to it are refused
	advice   atomic.Int64 // RetryInterval answer
	asked    atomic.Int64 // frame length of the last RetryInterval call
	perPeer  bool         // congestion concerns one peer (SharedAirtime false)
	done     chan struct{}
	once     sync.Once
}

var (
	_ transport.PriorityWriter   = (*fakeRadio)(nil)
	_ transport.RetryAdvisor     = (*fakeRadio)(nil)
	_ transport.DeliveryNotifier = (*fakeRadio)(nil)
)

func newFakeRadio() *fakeRadio {
	f := &fakeRadio{in: make(chan fakeFrame, 64), out: make(chan fakeFrame, 1024),
		failures: make(chan transport.TxFailure, 16), done: make(chan struct{})}
	f.refuseAt.Store(-1)
	return f
}

func (f *fakeRadio) ReadFrom(p []byte) (int, transport.Addr, error) {
	select {
	case fr := <-f.in:
		return copy(p, fr.data), fr.addr, nil
	case <-f.done:
		return 0, transport.Addr{}, transport.ErrClosed
	}
}

func (f *fakeRadio) WriteTo(p []byte, to transport.Addr) error {
	return f.WriteToPriority(p, to, transport.PriorityDelivery)
}

func (f *fakeRadio) WriteToPriority(p []byte, to transport.Addr, prio transport.Priority) error {
	if r := f.refuseAt.Load(); r >= 0 && int32(prio) >= r {
		if only, _ := f.refuseTo.Load().(transport.Addr); only.IsZero() || only == to {
			return fmt.Errorf("fake radio: %w", transport.ErrCongested)
		}
	}
	select {
	case f.out <- fakeFrame{addr: to, data: append([]byte(nil), p...), prio: prio}:
		return nil
	default:
		return errors.New("fake radio: test not reading")
	}
}

func (f *fakeRadio) Broadcast(p []byte) error { return transport.ErrNoBroadcast }
func (f *fakeRadio) MTU() int                 { return 255 }
func (f *fakeRadio) Name() string             { return "fake-radio" }
func (f *fakeRadio) Close() error {
	f.once.Do(func() { close(f.done) })
	return nil
}

func (f *fakeRadio) RetryInterval(n int) time.Duration {
	f.asked.Store(int64(n))
	return time.Duration(f.advice.Load())
}

func (f *fakeRadio) TxFailures() <-chan transport.TxFailure { return f.failures }

func (f *fakeRadio) SharedAirtime() bool { return !f.perPeer }

// fakeNode is a raw MQTT-SN sensor at one address of a fakeRadio.
type fakeNode struct {
	t    *testing.T
	r    *fakeRadio
	addr transport.Addr
	p    sn.Packet
	last fakeFrame
}

func (f *fakeRadio) node(t *testing.T, b ...byte) *fakeNode {
	a, _ := transport.AddrFromBytes(b)
	return &fakeNode{t: t, r: f, addr: a}
}

func (n *fakeNode) send(m sn.Message) {
	n.t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		n.t.Fatal(err)
	}
	n.r.in <- fakeFrame{addr: n.addr, data: b}
}

// expect returns the next downlink, which must be of type want.
func (n *fakeNode) expect(want sn.MsgType) *sn.Packet {
	n.t.Helper()
	select {
	case fr := <-n.r.out:
		if fr.addr != n.addr {
			n.t.Fatalf("downlink to %s, want %s", fr.addr, n.addr)
		}
		if err := sn.Decode(fr.data, &n.p); err != nil {
			n.t.Fatalf("decode % x: %v", fr.data, err)
		}
		if n.p.Type != want {
			n.t.Fatalf("got %v, want %v", &n.p, want)
		}
		n.last = fr
		return &n.p
	case <-time.After(waitFor):
		n.t.Fatalf("no %v from the gateway", want)
		return nil
	}
}
