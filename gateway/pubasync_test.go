package gateway

import (
	"errors"
	"net"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/store"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport/udp"
)

// A QoS 1 PUBLISH that an offline persistent subscriber with a full queue
// would get is answered "rejected: congestion" (never acknowledged and
// dropped); once the subscriber has drained its queue, the same PUBLISH
// is accepted. The broker persists (PUBACK after the store commit).
func TestPublishCongestionWhileSubscriberQueueFull(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	bcfg.MaxQueuedMessages = 2
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
	served := make(chan error, 1)
	go func() { served <- gw.Serve() }()
	defer func() {
		gw.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
		srv.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	e := &env{t: t, srv: srv, link: link, gw: gw, addr: net.UDPAddrFromAddrPort(link.LocalAddr())}

	// An offline persistent subscriber.
	info := broker.ConnectInfo{ClientID: "app", SessionExpiry: broker.NoExpiry, Listener: "test"}
	sink := &appSink{ch: make(chan broker.Delivery, 100)}
	sess, _, err := srv.Connect(info, sink)
	if err != nil {
		t.Fatal(err)
	}
	if codes := sess.Subscribe([]broker.Subscription{{Filter: "t", QoS: 1}}); codes[0] != 1 {
		t.Fatalf("SUBACK %#x", codes[0])
	}
	sess.Disconnect(false)

	s := e.sensor()
	s.connect("s1", true, 60)
	id := s.register("t", 1)
	for i, want := range []sn.ReturnCode{sn.Accepted, sn.Accepted, sn.RejectedCongestion} {
		if rc := s.publishByID(id, uint16(10+i), "m"); rc != want {
			t.Fatalf("PUBLISH %d: PUBACK %v, want %v", i, rc, want)
		}
	}
	if n := srv.Stats().PublishesRefusedQueueFull; n != 1 {
		t.Errorf("refused %d", n)
	}

	// The subscriber comes back and drains its queue.
	info.CleanStart = false
	sess, _, err = srv.Connect(info, sink)
	if err != nil {
		t.Fatal(err)
	}
	sess.Resume()
	a := &app{t: t, sess: sess, ch: sink.ch}
	a.next()
	a.next()
	if rc := s.publishByID(id, 12, "m"); rc != sn.Accepted {
		t.Fatalf("after the drain: PUBACK %v", rc)
	}
	if m := a.next(); m.Topic != "t" {
		t.Fatalf("got %+v", m)
	}
	if st := srv.Stats(); st.DroppedQueueFull != 0 {
		t.Errorf("%d messages dropped", st.DroppedQueueFull)
	}
}
