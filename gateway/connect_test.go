package gateway

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport/udp"
)

// willConnect runs the full will dialogue.
func willConnect(t *testing.T, s *sensor, id, topic, msg string, keepAlive uint16) {
	t.Helper()
	s.send(&sn.Connect{Will: true, CleanSession: true, ProtocolID: sn.V12, Duration: keepAlive, ClientID: []byte(id)})
	s.expect(sn.TypeWillTopicReq)
	s.send(&sn.WillTopic{QoS: sn.QoS1, Topic: []byte(topic)})
	s.expect(sn.TypeWillMsgReq)
	s.send(&sn.WillMsg{Msg: []byte(msg)})
	if rc := s.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.Accepted {
		t.Fatalf("CONNACK %v", rc)
	}
}

// The will dialogue, then a clean DISCONNECT: the will is not sent.
func TestConnectWillDisconnectClean(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app", "will/#", "after")
	s := e.sensor()
	willConnect(t, s, "w1", "will/w1", "gone", 60)
	s.send(&sn.Disconnect{})
	s.expect(sn.TypeDisconnect)
	eventually(t, "client removed", func() bool { return e.gw.Stats().Clients == 0 })
	a.publish("after", "marker", 0)
	if m := a.next(); m.Topic != "after" {
		t.Fatalf("will published on a clean DISCONNECT: %+v", m)
	}
}

// Keep-alive supervision: silence past keep-alive x tolerance makes the
// client lost and publishes its will.
func TestConnectKeepAliveLost(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app", "will/#")
	s := e.sensor()
	willConnect(t, s, "ka", "will/ka", "ka went away", 5) // 5 x 10 ms x 1.5
	m := a.next()
	if m.Topic != "will/ka" || string(m.Payload) != "ka went away" || m.QoS != 1 {
		t.Fatalf("will %+v", m)
	}
	eventually(t, "client removed", func() bool { st := e.gw.Stats(); return st.Lost == 1 && st.Clients == 0 })
}

// A client that keeps pinging stays connected across many keep-alive
// periods.
func TestConnectKeepAlivePing(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	s.connect("pinger", true, 10) // 100 ms, tolerance 150 ms
	for i := 0; i < 5; i++ {
		time.Sleep(50 * time.Millisecond) // the client's own schedule
		s.send(&sn.Pingreq{})
		s.expect(sn.TypePingresp)
	}
	if st := e.gw.Stats(); st.Lost != 0 {
		t.Fatalf("pinging client lost: %+v", st)
	}
}

// WILLTOPICUPD / WILLMSGUPD change the will; an empty WILLTOPICUPD
// deletes it.
func TestConnectWillUpdate(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app", "will/#", "marker")
	s := e.sensor()
	willConnect(t, s, "u1", "will/old", "old", 60)
	s.send(&sn.WillTopicUpd{QoS: sn.QoS0, Topic: []byte("will/new")})
	if rc := s.expect(sn.TypeWillTopicResp).WillTopicResp.ReturnCode; rc != sn.Accepted {
		t.Fatalf("WILLTOPICRESP %v", rc)
	}
	s.send(&sn.WillMsgUpd{Msg: []byte("new")})
	if rc := s.expect(sn.TypeWillMsgResp).WillMsgResp.ReturnCode; rc != sn.Accepted {
		t.Fatalf("WILLMSGRESP %v", rc)
	}
	// Lose the client through its keep-alive by a second connection
	// with a short one? Simpler: the gateway's Close sends no will, so
	// check the will through a takeover-free path: retries exhausted.
	// Here: sleep with a short duration and let it expire.
	s.send(&sn.Disconnect{HasDuration: true, Duration: 5})
	s.expect(sn.TypeDisconnect)
	m := a.next()
	if m.Topic != "will/new" || string(m.Payload) != "new" {
		t.Fatalf("updated will %+v", m)
	}

	s2 := e.sensor()
	willConnect(t, s2, "u2", "will/u2", "x", 60)
	s2.send(&sn.WillTopicUpd{})
	if rc := s2.expect(sn.TypeWillTopicResp).WillTopicResp.ReturnCode; rc != sn.Accepted {
		t.Fatalf("delete will: %v", rc)
	}
	s2.send(&sn.WillMsgUpd{Msg: []byte("no topic")})
	if rc := s2.expect(sn.TypeWillMsgResp).WillMsgResp.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("WILLMSGUPD without a will: %v", rc)
	}
	s2.send(&sn.Disconnect{HasDuration: true, Duration: 5})
	s2.expect(sn.TypeDisconnect)
	eventually(t, "u2 lost", func() bool { return e.gw.Stats().Lost == 2 })
	a.publish("marker", "m", 0)
	if m := a.next(); m.Topic != "marker" {
		t.Fatalf("deleted will was published: %+v", m)
	}
}

// A 200-byte ClientId is refused cleanly; a longer limit accepts it.
func TestConnectLongClientID(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	id := strings.Repeat("x", 200)
	s.send(&sn.Connect{ClientID: []byte(id), CleanSession: true, ProtocolID: sn.V12, Duration: 60})
	if rc := s.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("CONNACK %v", rc)
	}
	e2 := newEnv(t, func(c *Config) { c.MaxClientIDLength = 256 })
	s2 := e2.sensor()
	s2.connect(id, true, 60)
	if st := e.gw.Stats(); st.RejectClientID != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Truncated and otherwise malformed frames are dropped and counted; the
// gateway keeps serving.
func TestConnectMalformedFrames(t *testing.T) {
	e := newEnv(t, nil)
	s := e.sensor()
	for _, b := range [][]byte{
		{0x10, 0x04, 0x04, 0x01},       // Length 16 in 4 bytes
		{0x07},                         // one byte
		{0x01, 0x00},                   // 3-byte length form cut short
		{0x05, 0x55, 0, 0, 0},          // unknown type
		{0x03, 0x0c, 0x00},             // PUBLISH too short
		{0x05, 0xFE, 0x00, 0x01, 0x02}, // encapsulation with no message
	} {
		s.raw(b)
	}
	s.connect("ok", true, 60)
	if st := e.gw.Stats(); st.Malformed != 6 {
		t.Fatalf("Malformed = %d", st.Malformed)
	}
}

// The allow-list refuses unknown client IDs (case-sensitive).
func TestConnectAllowList(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RestrictClients = true
		c.Clients = []ClientConfig{{ID: "Known"}}
	})
	s := e.sensor()
	s.send(&sn.Connect{ClientID: []byte("known"), ProtocolID: sn.V12, CleanSession: true})
	if rc := s.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedNotSupported {
		t.Fatalf("CONNACK %v", rc)
	}
	s.connect("Known", true, 60)
}

// MaxClients bounds clients: beyond it CONNACK "congestion".
func TestConnectMaxClients(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxClients = 2 })
	e.sensor().connect("a", true, 60)
	e.sensor().connect("b", true, 60)
	s := e.sensor()
	s.send(&sn.Connect{ClientID: []byte("c"), ProtocolID: sn.V12, CleanSession: true})
	if rc := s.expect(sn.TypeConnack).Connack.ReturnCode; rc != sn.RejectedCongestion {
		t.Fatalf("CONNACK %v", rc)
	}
	if st := e.gw.Stats(); st.RejectMaxClients != 1 || st.Clients != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// A flood of CONNECTs from 10k source ports stays within the bounds, gets
// clear rejections, and a legitimate client still connects.
func TestConnectFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood")
	}
	const maxClients = 1000
	e := newEnv(t, func(c *Config) {
		c.MaxClients = maxClients
		c.NewClientBurst = 500
		c.NewClientRate = 1
		c.InboxSize = 1024
	}, udp.Config{Addr: "127.0.0.1:0", ReadBuffer: 4 << 20})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const n = 10000
	socks := make([]*net.UDPConn, 0, n)
	defer func() {
		for _, c := range socks {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Skipf("cannot open socket %d: %v", i, err)
		}
		socks = append(socks, c)
		b, _ := (&sn.Connect{ClientID: []byte(fmt.Sprintf("flood-%05d", i)), ProtocolID: sn.V12,
			CleanSession: true, Duration: 100, Will: i%2 == 0}).Append(nil)
		c.WriteToUDP(b, e.addr)
	}
	eventually(t, "flood handled", func() bool {
		st := e.gw.Stats()
		return st.FramesIn+st.InboxFull >= n-200 // a few may be lost in the socket buffer
	})
	st := e.gw.Stats()
	if st.Clients > maxClients {
		t.Fatalf("clients %d > %d", st.Clients, maxClients)
	}
	if st.RejectRate+st.RejectMaxClients+st.InboxFull == 0 {
		t.Fatalf("no rejection counted: %+v", st)
	}
	t.Logf("flood: clients=%d connects=%d rate=%d max=%d inboxfull=%d", st.Clients, st.Connects, st.RejectRate,
		st.RejectMaxClients, st.InboxFull)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapAlloc) - int64(before.HeapAlloc); grow > 64<<20 {
		t.Fatalf("heap grew by %d bytes", grow)
	}
	// A client from another host (127.0.0.2: a fresh per-source budget)
	// still connects: at once if there is room, else after "congestion"
	// once flood clients are lost by keep-alive and free their slots.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	defer c.Close()
	s := &sensor{t: t, conn: c, gw: e.addr, buf: make([]byte, 2048)}
	s.send(&sn.Connect{ClientID: []byte("legit"), ProtocolID: sn.V12, CleanSession: true, Duration: 60})
	rc := s.expect(sn.TypeConnack).Connack.ReturnCode
	if rc == sn.Accepted {
		return
	}
	if rc != sn.RejectedCongestion {
		t.Fatalf("CONNACK %v", rc)
	}
	eventually(t, "flood clients expire", func() bool { return e.gw.Stats().Clients < maxClients })
	s.connect("legit", true, 60)
}
