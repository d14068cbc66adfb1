package gateway

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/listeners"
	"github.com/sngate/sngate/sn"
	snclient "github.com/sngate/sngate/sn/client"
	"github.com/sngate/sngate/transport/udp"
)

// TestInteropPahoAndClient runs the sn/client library as the sensor and
// the Paho MQTT Go client as the application, over real sockets: uplink
// and downlink QoS 1, sleep with buffering and wake-up, and the will when
// the sensor goes silent.
func TestInteropPahoAndClient(t *testing.T) {
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	srv, err := broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	lst, err := listeners.New(listeners.Config{Kind: "tcp", Addr: "127.0.0.1:0"}, srv, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := lst.Listen(); err != nil {
		t.Fatal(err)
	}
	go lst.Serve()
	defer lst.Close()

	link, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.second = time.Second // the client library counts whole seconds
	gw, err := New(cfg, srv, link)
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve()
	defer gw.Close()

	// The MQTT application.
	got := make(chan mqtt.Message, 16)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + lst.Addr().String()).SetClientID("paho-app").
		SetCleanSession(true).SetAutoReconnect(false)
	app := mqtt.NewClient(opts)
	if tok := app.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("paho connect: %v", tok.Error())
	}
	defer app.Disconnect(0)
	if tok := app.Subscribe("sensors/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("paho subscribe: %v", tok.Error())
	}
	nextApp := func() mqtt.Message {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(waitFor):
			t.Fatal("nothing for the MQTT app")
			return nil
		}
	}

	// The sensor.
	inbox := make(chan snclient.Message, 16)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sc, err := snclient.Dial(ctx, "udp", link.LocalAddr().String(), snclient.Options{
		ClientID:      "sensor-01",
		KeepAlive:     time.Second,
		RetryInterval: 200 * time.Millisecond,
		Will:          &snclient.Will{Topic: "sensors/sensor-01/status", Message: []byte("offline"), QoS: sn.QoS1},
		OnPublish:     func(m snclient.Message) { inbox <- m },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.Subscribe(ctx, snclient.Topic("cmd/sensor-01"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := sc.Publish(ctx, snclient.Topic("sensors/sensor-01/temp"), sn.QoS1, false, []byte("21.5")); err != nil {
		t.Fatal(err)
	}
	if m := nextApp(); m.Topic() != "sensors/sensor-01/temp" || string(m.Payload()) != "21.5" {
		t.Fatalf("app got %s %q", m.Topic(), m.Payload())
	}
	if tok := app.Publish("cmd/sensor-01", 1, false, "on"); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-inbox:
		if m.Topic != "cmd/sensor-01" || string(m.Payload) != "on" {
			t.Fatalf("sensor got %+v", m)
		}
	case <-time.After(waitFor):
		t.Fatal("nothing for the sensor")
	}

	// Sleep: messages are buffered, then delivered on wake.
	if err := sc.Sleep(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b"} {
		if tok := app.Publish("cmd/sensor-01", 1, false, p); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	eventually(t, "buffered", func() bool { return srv.Stats().Queued >= 1 })
	n, err := sc.Wake(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Wake = %d, %v", n, err)
	}
	for _, want := range []string{"a", "b"} {
		if m := <-inbox; string(m.Payload) != want {
			t.Fatalf("buffered %q, want %q", m.Payload, want)
		}
	}

	// Connect again (asleep -> active), then go silent: lost, will out.
	if err := sc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	m := nextApp()
	if m.Topic() != "sensors/sensor-01/status" || string(m.Payload()) != "offline" {
		t.Fatalf("will %s %q", m.Topic(), m.Payload())
	}
}
