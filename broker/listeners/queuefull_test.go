package listeners

import (
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// fullSubscriber leaves an offline persistent session subscribed to "t"
// at QoS 1 whose queue (bound 1) is full.
func fullSubscriber(t *testing.T, srv *broker.Server) {
	t.Helper()
	info := broker.ConnectInfo{ClientID: "offline", SessionExpiry: broker.NoExpiry, Listener: "test"}
	sess, _, err := srv.Connect(info, nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	sess.Subscribe([]broker.Subscription{{Filter: "t", QoS: 1}})
	sess.Disconnect(false)
	if err := srv.DeliverTo("offline", &broker.Message{Topic: "t", Payload: []byte("x"), QoS: 1}, 1); err != nil {
		t.Fatal(err)
	}
}

// A QoS 1 PUBLISH refused because a subscriber's queue is full: MQTT 5
// answers PUBACK 0x97 (Quota exceeded); MQTT 3.1.1, which has no reason
// codes, closes the connection without PUBACK so that the client sends it
// again after reconnecting (a PUBACK would acknowledge a dropped message).
func TestPublishRefusedForFullSubscriberQueue(t *testing.T) {
	srv := newBroker(t, func(c *broker.Config) { c.MaxQueuedMessages = 1 })
	_, addr := startListener(t, srv, Config{})
	fullSubscriber(t, srv)

	r5 := rawConnected(t, addr, packets.V5, "p5")
	r5.send(&packets.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("y")})
	if a := r5.expect(packets.PUBACK).(*packets.Ack); a.ReasonCode != packets.QuotaExceeded {
		t.Fatalf("MQTT 5 PUBACK reason 0x%02X, want 0x97", a.ReasonCode)
	}

	r3 := rawConnected(t, addr, packets.V311, "p3")
	r3.send(&packets.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("y")})
	if got := r3.expectClosed(); len(got) != 0 {
		t.Fatalf("MQTT 3.1.1: got %v before the close, want no PUBACK", got)
	}
	if st := srv.Stats(); st.PublishesRefusedQueueFull != 2 || st.DroppedQueueFull != 0 {
		t.Errorf("refused %d, dropped %d", st.PublishesRefusedQueueFull, st.DroppedQueueFull)
	}
}
