package listeners

import (
	"testing"

	"github.com/eclipse/paho.golang/paho"
	"github.com/sngate/sngate/broker/packets"
)

func TestDbgWill(t *testing.T) {
	_, addr := setup(t, Config{})
	w := rawConnected(t, addr, packets.V5, "w")
	w.subscribe(1, packets.SubOption{Filter: "will/#", QoS: 1})
	c := dialV5(t, addr, "w04", &paho.Connect{CleanStart: true,
		WillMessage:    &paho.WillMessage{Topic: "will/x", Payload: []byte("x"), QoS: 1},
		WillProperties: &paho.WillProperties{MessageExpiry: paho.Uint32(100), ContentType: "text/x"}})
	c.close()
	p := w.expect(packets.PUBLISH).(*packets.Publish)
	t.Logf("%+v", p.Props)
}
