package bridge

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/sngate/sngate/broker"
)

// v5Refuser is a TCP proxy in front of Mosquitto that plays a 3.1.1-only
// broker: it answers an MQTT 5 CONNECT with the 3.1.1 CONNACK "unacceptable
// protocol version" and forwards every other connection.
type v5Refuser struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	refused  int
	wg       sync.WaitGroup
}

func startV5Refuser(t *testing.T, upstream string) *v5Refuser {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &v5Refuser{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *v5Refuser) url() string { return "mqtt://" + p.ln.Addr().String() }

func (p *v5Refuser) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *v5Refuser) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve reads the CONNECT header up to the protocol level byte.
func (p *v5Refuser) serve(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	r := bufio.NewReader(c)
	var head []byte
	b, err := r.ReadByte() // fixed header
	if err != nil || b != 0x10 {
		return
	}
	head = append(head, b)
	for i := 0; i < 4; i++ { // remaining length
		b, err = r.ReadByte()
		if err != nil {
			return
		}
		head = append(head, b)
		if b&0x80 == 0 {
			break
		}
	}
	var proto [7]byte // 00 04 'M' 'Q' 'T' 'T' level
	if _, err := io.ReadFull(r, proto[:]); err != nil {
		return
	}
	head = append(head, proto[:]...)
	if proto[6] == 5 {
		p.mu.Lock()
		p.refused++
		p.mu.Unlock()
		_, _ = c.Write([]byte{0x20, 0x02, 0x00, 0x01})
		return
	}
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	if _, err := up.Write(head); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, up)
		c.Close()
		close(done)
	}()
	_, err = io.Copy(up, r)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		_ = err
	}
	up.Close()
	<-done
}

// TestFallback311: a broker that refuses MQTT 5 gets MQTT 3.1.1; both
// directions work, and the 3.1.1 echo rule stops the loop that No Local
// would have stopped.
func TestFallback311(t *testing.T) {
	m := startMosquitto(t)
	proxy := startV5Refuser(t, m.addr)
	cloud := dialProbe(t, m.addr, "cloud", true, 0)
	cloud.sub("#", 1)
	cfg := testBridgeConfig("gw1", proxy.url())
	// 3.1.1 needs distinct remote spaces: up under gw1/, down everything.
	cfg.Up = []Rule{{Topic: "#", RemotePrefix: "gw1/", QoS: 1}}
	cfg.Down = []Rule{{Topic: "#", QoS: 1}}
	s := newStack(t, cfg, false)
	s.await("connected", "", nil)
	if st := s.br.Stats(); st.ProtocolVersion != 4 || proxy.refusals() == 0 {
		t.Fatalf("protocol %d after %d refusals, want 3.1.1 after one", st.ProtocolVersion, proxy.refusals())
	}
	local := newLocalSub(t, s.srv, "app", "#")
	checkNoLoop(t, s, cloud, local, "gw1/")
	if st := s.br.Stats(); st.LoopDrops == 0 {
		t.Fatalf("the 3.1.1 echo was not dropped: %+v", st)
	}
}

// TestV5Only: with ProtocolVersion 5 the bridge does not fall back.
func TestV5Only(t *testing.T) {
	m := startMosquitto(t)
	proxy := startV5Refuser(t, m.addr)
	cfg := testBridgeConfig("gw1", proxy.url())
	cfg.ProtocolVersion = 5
	cfg.Up = []Rule{{Topic: "#", QoS: 1}}
	srv, err := broker.New(broker.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b, err := New(cfg, srv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.dial.connect(t.Context(), linkOptions{clientID: "v5only", onMessage: func(*inMsg) bool { return true }})
	if !errors.Is(err, errUnsupportedVersion) {
		t.Fatalf("connect: %v, want unsupported version", err)
	}
}
