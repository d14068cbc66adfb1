package gateway

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/store"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport/udp"
)

// publishByID sends a QoS 1 PUBLISH by topic ID and returns the PUBACK
// return code.
func (s *sensor) publishByID(id, msgID uint16, payload string) sn.ReturnCode {
	s.t.Helper()
	s.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: msgID, Data: []byte(payload)})
	pa := s.expect(sn.TypePuback).Puback
	if pa.MsgID != msgID {
		s.t.Fatalf("PUBACK %+v", pa)
	}
	return pa.ReturnCode
}

// The topic IDs a persistent client registered (REGISTER, SUBSCRIBE by
// name) are valid again when it reconnects after a DISCONNECT; a clean
// session starts without them.
func TestTopicIDsSurviveDisconnect(t *testing.T) {
	e := newEnv(t, nil)
	a := e.app("app", "#")
	s := e.sensor()
	s.connect("s1", false, 60)
	id := s.register("a/b", 1)
	sa := s.subscribe("c/d", sn.QoS1, 2)
	if sa.TopicID == 0 || sa.TopicID == id {
		t.Fatalf("SUBACK %+v", sa)
	}
	s.send(&sn.Disconnect{})
	s.expect(sn.TypeDisconnect)

	s.connect("s1", false, 60)
	if rc := s.publishByID(id, 3, "one"); rc != sn.Accepted {
		t.Fatalf("PUBACK %v for topic ID %d after reconnecting", rc, id)
	}
	if m := a.next(); m.Topic != "a/b" || string(m.Payload) != "one" {
		t.Fatalf("got %+v", m)
	}
	if rc := s.publishByID(sa.TopicID, 4, "two"); rc != sn.Accepted {
		t.Fatalf("PUBACK %v for the subscribed topic's ID", rc)
	}
	if m := a.next(); m.Topic != "c/d" {
		t.Fatalf("got %+v", m)
	}
	p := s.expect(sn.TypePublish).Publish // its own subscription
	if p.TopicID != sa.TopicID {
		t.Fatalf("delivered with topic ID %d, want %d", p.TopicID, sa.TopicID)
	}
	s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
	s.send(&sn.Disconnect{})
	s.expect(sn.TypeDisconnect)

	s.connect("s1", true, 60)
	if rc := s.publishByID(id, 5, "three"); rc != sn.RejectedInvalidTopicID {
		t.Fatalf("clean session: PUBACK %v", rc)
	}
}

// storeEnv is a gateway whose broker persists in dir; close stops it all,
// as a restart would.
type storeEnv struct {
	*env
	st     *store.Store
	served chan error
}

func newStoreEnv(t *testing.T, dir string) *storeEnv {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, err := broker.New(bcfg, broker.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	link, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(testConfig(), srv, link)
	if err != nil {
		t.Fatal(err)
	}
	se := &storeEnv{env: &env{t: t, srv: srv, link: link, gw: gw, addr: net.UDPAddrFromAddrPort(link.LocalAddr())},
		st: st, served: make(chan error, 1)}
	go func() { se.served <- gw.Serve() }()
	return se
}

func (se *storeEnv) close() {
	se.gw.Close()
	if err := <-se.served; !errors.Is(err, ErrClosed) {
		se.t.Errorf("Serve returned %v", err)
	}
	se.srv.Close()
	if err := se.st.Close(); err != nil {
		se.t.Error(err)
	}
}

// Topic IDs stay valid after a restart for persistent MQTT-SN sessions.
func TestTopicIDsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	e := newStoreEnv(t, dir)
	s := e.sensor()
	s.connect("s1", false, 60)
	ids := make([]uint16, 20) // beyond the registry's linear-search size
	for i := range ids {
		ids[i] = s.register(fmt.Sprintf("t/%d", i), uint16(i+1))
	}
	e.close()
	s.expect(sn.TypeDisconnect) // the gateway says goodbye

	e = newStoreEnv(t, dir)
	defer e.close()
	a := e.app("app", "#")
	s.gw = e.addr
	s.connect("s1", false, 60)
	for i, id := range ids {
		if rc := s.publishByID(id, uint16(100+i), "x"); rc != sn.Accepted {
			t.Fatalf("PUBACK %v for topic ID %d after the restart", rc, id)
		}
		if m := a.next(); m.Topic != fmt.Sprintf("t/%d", i) {
			t.Fatalf("topic ID %d: got %q", id, m.Topic)
		}
	}
	// New registrations do not reuse the restored IDs.
	if id := s.register("t/new", 200); id == 0 || func() bool {
		for _, old := range ids {
			if old == id {
				return true
			}
		}
		return false
	}() {
		t.Fatalf("new topic ID %d", id)
	}
}

func TestTopicIDsStateCodec(t *testing.T) {
	var r registry
	for i := range 20 {
		r.add(fmt.Sprintf("t/%d", i), false, false, 64)
	}
	r.add("gw/topic", true, false, 64)  // the gateway's own: not saved
	r.add("gw/pending", true, true, 64) // not confirmed: not saved
	b := encodeTopics(&r)
	got, err := decodeTopics(b, 64)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.e) != 20 || got.next != r.next {
		t.Fatalf("decoded %d entries, next %d", len(got.e), got.next)
	}
	for i := range 20 {
		name := fmt.Sprintf("t/%d", i)
		id, ready, ok := got.lookup(name)
		if wid, _, _ := r.lookup(name); !ok || !ready || id != wid {
			t.Fatalf("%s: %d %v %v", name, id, ready, ok)
		}
		if n, ok := got.name(id); !ok || n != name {
			t.Fatalf("id %d: %q", id, n)
		}
	}
	if _, _, ok := got.lookup("gw/topic"); ok {
		t.Fatal("gateway entry restored")
	}
	if got, err := decodeTopics(b, 5); err != nil || len(got.e) != 5 {
		t.Fatalf("bounded decode: %d %v", len(got.e), err)
	}
	// Truncations and corruptions are errors, never panics.
	for n := range len(b) {
		if _, err := decodeTopics(b[:n], 64); err == nil {
			t.Fatalf("truncated to %d decoded", n)
		}
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0xFF
		_, _ = decodeTopics(c, 64)
	}
}
