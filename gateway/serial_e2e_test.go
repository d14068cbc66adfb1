package gateway

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/sn"
	snclient "github.com/sngate/sngate/sn/client"
	"github.com/sngate/sngate/transport/serial"
)

// End to end over real ptys: a sensor (sn/client) talks MQTT-SN through
// a modem played on the pty master (serial_modem_test.go); the gateway's
// serial.Link opens the slave with go.bug.st/serial; an MQTT application
// session on the in-process broker is the other end. Per link kind:
// CONNECT, SUBSCRIBE (a wildcard, so the gateway REGISTERs towards the
// sensor), REGISTER and PUBLISH QoS 1 up to the application, a QoS 1
// PUBLISH from the application down to the sensor, DISCONNECT. Payloads
// carry the bytes serial stacks eat or escape.

// binarySafety are the bytes that SLIP, COBS, XBee AP=2, LoRaLink and
// terminal line disciplines treat specially.
var binarySafety = []byte{0x0D, 0x11, 0x13, 0x7D, 0x7E, 0xC0, 0xDB, 0x0A, 0x00, 0xFF, 0x03}

type serialCase struct {
	kind serial.Kind
	node []byte // the sensor's address on the link
	cfg  serial.Config
}

var loraP2P = radios.LoRaParams{SF: 7, BandwidthHz: 125000}

var serialCases = []serialCase{
	{serial.KindXBee, []byte{0x00, 0x13, 0xA2, 0x00, 0x7D, 0x7E, 0x11, 0xC0}, serial.Config{APIMode: 2, Baud: 9600}},
	{serial.KindLoRaLink, []byte{0x7D}, serial.Config{}},
	{serial.KindSLIP, serial.BridgeAddr().Bytes(), serial.Config{}},
	{serial.KindCOBS, serial.BridgeAddr().Bytes(), serial.Config{}},
	{serial.KindRN2483, []byte{0x7E, 0x13}, serial.Config{LoRa: loraP2P, FrequencyHz: 869_525_000, NetworkID: 0x11}},
	{serial.KindRAK, []byte{0x11, 0xC0}, serial.Config{LoRa: loraP2P, FrequencyHz: 869_525_000, NetworkID: 0x7D}},
}

func TestSerialE2E(t *testing.T) {
	for _, tc := range serialCases {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			serialE2E(t, tc)
		})
	}
}

func serialE2E(t *testing.T, tc serialCase) {
	dev := newPtyDev(t, string(tc.kind))
	modem := startModem(t, dev, tc.kind, tc.cfg.NetworkID, false)
	scfg := tc.cfg
	scfg.Kind, scfg.Device = tc.kind, dev.path
	scfg.ReopenMin, scfg.ReopenMax = 5*time.Millisecond, 50*time.Millisecond
	scfg.Logger = testLogger()
	link, err := serial.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := radioConfig()
	// The ptys lose nothing: a retransmission would mean a bug, and with
	// T_RETRY at a minute it would also fail the test by its timeout.
	cfg.RetryInterval = time.Minute
	cfg.MaxRetries = 2
	gw, srv := startRadioGateway(t, cfg, link)

	kind := string(tc.kind)
	app := newMQTTApp(t, srv, "app-"+kind, 1, "radio/"+kind+"/up")
	inbox := make(chan snclient.Message, 16)
	sensor := snclient.New(modem.conn(tc.node), snclient.Options{
		ClientID: "sensor-" + kind, CleanSession: true, KeepAlive: 10 * time.Minute,
		RetryInterval: 5 * time.Second, MaxRetries: 2,
		OnPublish: func(m snclient.Message) { inbox <- m },
	})
	t.Cleanup(func() { _ = sensor.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	if err := sensor.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sensor.Subscribe(ctx, snclient.Topic("radio/"+kind+"/down/#"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	up := append([]byte("up:"), binarySafety...)
	if err := sensor.Publish(ctx, snclient.Topic("radio/"+kind+"/up"), sn.QoS1, false, up); err != nil {
		t.Fatal(err)
	}
	msg, d := app.next()
	if msg.Topic != "radio/"+kind+"/up" || !bytes.Equal(msg.Payload, up) || d.QoS != 1 {
		t.Fatalf("application got %q % X at QoS %d", msg.Topic, msg.Payload, d.QoS)
	}

	if tc.kind == serial.KindXBee {
		// The radio fails the first transmission (Transmit Status "route
		// not found"): the gateway resends at once, not after T_RETRY.
		modem.failPublish.Store(1)
	}
	down := append([]byte("down:"), binarySafety...)
	app.publish("radio/"+kind+"/down/cmd", down, 1)
	var got snclient.Message
	select {
	case got = <-inbox:
	case <-ctx.Done():
		t.Fatal("nothing delivered to the sensor")
	}
	if got.Topic != "radio/"+kind+"/down/cmd" || !bytes.Equal(got.Payload, down) || got.QoS != sn.QoS1 {
		t.Fatalf("sensor got %q % X at QoS %d", got.Topic, got.Payload, got.QoS)
	}
	if err := sensor.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}

	st, ls := gw.Stats(), link.Stats()
	if tc.kind == serial.KindXBee {
		if !got.Dup || modem.failed.Load() != 1 || st.TxFailures != 1 || st.TxFailureResends != 1 {
			t.Errorf("early retransmission: dup %v, failed %d, stats %+v", got.Dup, modem.failed.Load(), st)
		}
	} else if st.Retransmits != 0 {
		t.Errorf("retransmissions over a lossless pty: %+v", st)
	}
	dec := ls.Decoder
	if ls.RxRejected != 0 || ls.RxDropped != 0 || dec.BadChecksum+dec.BadEscape+dec.Truncated+dec.Oversize+dec.Garbage != 0 {
		t.Errorf("link stats %+v", ls)
	}
	if st.Connects != 1 || st.PublishIn != 1 || st.PublishOut < 1 || st.Registers != 1 || st.Disconnects != 1 {
		t.Errorf("gateway stats %+v", st)
	}
	extra := ""
	if b := link.Budget(); b != nil {
		extra = ", airtime used " + b.Used(time.Now()).String() + " of " + b.Limit().String() +
			", retry interval advised for a 20-byte request " + link.RetryInterval(20).Round(time.Millisecond).String()
	}
	t.Logf("%s: frames link in/out %d/%d, modem carried %d downlinks, gateway retransmissions %d (early %d)%s",
		kind, ls.RxFrames, ls.TxFrames, modem.carried.Load(), st.Retransmits, st.TxFailureResends, extra)
}

// A SLIP bridge MCU that forwards for several sensors (MQTT-SN forwarder
// encapsulation on the wire), with the Forwarders list of
// configs/slip.yaml: the list names IP forwarders and must not refuse
// the bridge, whose frames come from a wire, not an IP address.
func TestSerialE2ESLIPForwarder(t *testing.T) {
	dev := newPtyDev(t, "slip")
	modem := startModem(t, dev, serial.KindSLIP, 0, true)
	link, err := serial.Open(serial.Config{Kind: serial.KindSLIP, Device: dev.path, Logger: testLogger(),
		ReopenMin: 5 * time.Millisecond, ReopenMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := radioConfig()
	cfg.RetryInterval = time.Minute
	cfg.Forwarders = []string{"127.0.0.1"}
	gw, srv := startRadioGateway(t, cfg, link)
	app := newMQTTApp(t, srv, "app", 1, "bridge/+/up")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	nodes := [][]byte{{0x7E, 0xC0}, {0xDB, 0x0D, 0x11}}
	inboxes := make([]chan snclient.Message, len(nodes))
	sensors := make([]*snclient.Client, len(nodes))
	for i, node := range nodes {
		inboxes[i] = make(chan snclient.Message, 4)
		ch := inboxes[i]
		sensors[i] = snclient.New(modem.conn(node), snclient.Options{
			ClientID: fmt.Sprintf("behind-bridge-%d", i), CleanSession: true, KeepAlive: 10 * time.Minute,
			RetryInterval: 5 * time.Second, MaxRetries: 2, OnPublish: func(m snclient.Message) { ch <- m },
		})
		t.Cleanup(func() { _ = sensors[i].Close() })
		if err := sensors[i].Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sensors[i].Subscribe(ctx, snclient.Topic(fmt.Sprintf("bridge/%d/down", i)), sn.QoS1); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range sensors {
		up := append([]byte{byte(i)}, binarySafety...)
		if err := s.Publish(ctx, snclient.Topic(fmt.Sprintf("bridge/%d/up", i)), sn.QoS1, false, up); err != nil {
			t.Fatal(err)
		}
		if msg, _ := app.next(); msg.Topic != fmt.Sprintf("bridge/%d/up", i) || !bytes.Equal(msg.Payload, up) {
			t.Fatalf("application got %q % X", msg.Topic, msg.Payload)
		}
	}
	for i := range sensors {
		app.publish(fmt.Sprintf("bridge/%d/down", i), binarySafety, 1)
	}
	for i := range sensors {
		select {
		case m := <-inboxes[i]:
			if m.Topic != fmt.Sprintf("bridge/%d/down", i) || !bytes.Equal(m.Payload, binarySafety) {
				t.Fatalf("sensor %d got %q % X", i, m.Topic, m.Payload)
			}
		case <-ctx.Done():
			t.Fatalf("sensor %d: nothing delivered", i)
		}
	}
	if st := gw.Stats(); st.EncapsulatedIn == 0 || st.EncapsulatedOut == 0 || st.RejectForwarder != 0 || st.Connects != 2 {
		t.Errorf("stats %+v", st)
	}
}
