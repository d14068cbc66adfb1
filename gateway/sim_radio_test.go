package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/radios/simradio"
	"github.com/sngate/sngate/sn"
	snclient "github.com/sngate/sngate/sn/client"
)

// The gateway over a simulated radio (radios.SimMedium through
// simradio): lossy, with a seeded loss RNG and a short constant latency.
// Sensors are sn/client Clients on simulated nodes; the MQTT side is an
// in-process broker session. The numbers are logged (go test -v -run
// TestSimRadio) and the invariants asserted: nothing lost, order kept,
// QoS 2 exactly once, the duty-cycle budget never overdrawn.

const simNodes = 5

// seqPayload is message seq of node, with binary-safety bytes around it.
func seqPayload(node, seq int) []byte {
	b := []byte{0x7E, 0x7D, byte(node), 0, 0, 0xC0, 0xDB}
	binary.BigEndian.PutUint16(b[3:], uint16(seq))
	return b
}

func parseSeq(t *testing.T, p []byte) (node, seq int) {
	t.Helper()
	if len(p) != 7 || p[0] != 0x7E || p[1] != 0x7D || p[5] != 0xC0 || p[6] != 0xDB {
		t.Fatalf("payload % X mangled", p)
	}
	return int(p[2]), int(binary.BigEndian.Uint16(p[3:]))
}

// orderCheck follows one stream of numbered messages: each must be the
// next one, or (where duplicates are allowed) the last one again.
type orderCheck struct {
	next   []int // next expected seq per node
	dups   int
	dupsOK bool
}

func newOrderCheck(nodes int, dupsOK bool) *orderCheck {
	return &orderCheck{next: make([]int, nodes+1), dupsOK: dupsOK}
}

func (o *orderCheck) see(t *testing.T, what string, node, seq int) {
	t.Helper()
	if node < 1 || node >= len(o.next) {
		t.Fatalf("%s: message from node %d", what, node)
	}
	switch {
	case seq == o.next[node]:
		o.next[node]++
	case seq == o.next[node]-1 && o.dupsOK:
		o.dups++
	default:
		t.Fatalf("%s: node %d: got message %d, want %d (duplicates allowed: %v)", what, node, seq, o.next[node], o.dupsOK)
	}
}

func (o *orderCheck) done(n int) bool {
	for _, v := range o.next[1:] {
		if v < n {
			return false
		}
	}
	return true
}

func simClientOpts() snclient.Options {
	return snclient.Options{
		CleanSession:  true,
		KeepAlive:     10 * time.Minute,
		RetryInterval: 20 * time.Millisecond,
		MaxRetries:    100,
	}
}

// simRun connects simNodes sensors, subscribes each to down/node-i at
// qos, then lets every sensor publish perNode messages at qos to up/node-i
// while the application publishes perNode messages at qos to each
// down/node-i. It checks every stream (order, and exactly once at QoS 2)
// and returns the duplicates seen up and down.
func simRun(t *testing.T, m *radios.SimMedium, gw *Gateway, app *mqttApp, qos sn.QoS, perNode int) (upDups, downDups int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	exactlyOnce := qos == sn.QoS2
	sensors := make([]*snclient.Client, simNodes+1)
	inbox := make([]chan snclient.Message, simNodes+1)
	var wg sync.WaitGroup
	for i := 1; i <= simNodes; i++ {
		sensors[i], inbox[i] = newSimSensor(t, m, uint16(i), simClientOpts())
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := sensors[i]
			if err := c.Connect(ctx); err != nil {
				t.Errorf("node %d: %v", i, err)
				return
			}
			if _, _, err := c.Subscribe(ctx, snclient.Topic(fmt.Sprintf("down/node-%d", i)), qos); err != nil {
				t.Errorf("node %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := 1; i <= simNodes; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for seq := range perNode {
				if err := sensors[i].Publish(ctx, snclient.Topic(fmt.Sprintf("up/node-%d", i)), qos, false, seqPayload(i, seq)); err != nil {
					t.Errorf("node %d message %d: %v", i, seq, err)
					return
				}
			}
		}(i)
	}
	for seq := range perNode {
		for i := 1; i <= simNodes; i++ {
			app.publish(fmt.Sprintf("down/node-%d", i), seqPayload(i, seq), byte(qos))
		}
	}
	// Down: each sensor's OnPublish stream.
	down := newOrderCheck(simNodes, !exactlyOnce)
	for i := 1; i <= simNodes; i++ {
		for down.next[i] < perNode {
			select {
			case msg := <-inbox[i]:
				n, seq := parseSeq(t, msg.Payload)
				if n != i || msg.Topic != fmt.Sprintf("down/node-%d", i) {
					t.Fatalf("node %d got %q from node %d", i, msg.Topic, n)
				}
				down.see(t, "down", n, seq)
			case <-ctx.Done():
				t.Fatalf("node %d: %d of %d messages down", i, down.next[i], perNode)
			}
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Up: every sensor's Publish returned, so the broker has routed all.
	up := newOrderCheck(simNodes, !exactlyOnce)
	for !up.done(perNode) {
		msg, _ := app.next()
		n, seq := parseSeq(t, msg.Payload)
		if !strings.HasSuffix(msg.Topic, fmt.Sprintf("/node-%d", n)) {
			t.Fatalf("message of node %d on %q", n, msg.Topic)
		}
		up.see(t, "up", n, seq)
	}
	// Late duplicates still in flight are drained before the totals.
	for i := 1; i <= simNodes; i++ {
		for len(inbox[i]) > 0 {
			msg := <-inbox[i]
			n, seq := parseSeq(t, msg.Payload)
			down.see(t, "down", n, seq)
		}
	}
	for len(app.ch) > 0 {
		msg, _ := app.next()
		n, seq := parseSeq(t, msg.Payload)
		up.see(t, "up", n, seq)
	}
	return up.dups, down.dups
}

func simLossConfig(seed uint64) radios.SimConfig {
	return radios.SimConfig{Seed: seed, LossRate: 0.2, Latency: 200 * time.Microsecond, MTU: 64, QueueLen: 1024}
}

// QoS 1 at 20 % loss: every message arrives, in order per client, both
// ways; with the link's loss reports (an XBee's Transmit Status) the
// gateway retransmits at once instead of after T_RETRY.
func TestSimRadioQoS1Loss20(t *testing.T) {
	const perNode = 50
	for _, report := range []bool{false, true} {
		name := "retry-timer"
		if report {
			name = "tx-failure-reports"
		}
		t.Run(name, func(t *testing.T) {
			m, _, gw, srv := startSim(t, simLossConfig(1), simradio.Options{ReportLoss: report}, radioConfig())
			app := newMQTTApp(t, srv, "collector", 1, "up/#")
			start := time.Now()
			upDups, downDups := simRun(t, m, gw, app, sn.QoS1, perNode)
			ms, st := m.Stats(), gw.Stats()
			t.Logf("QoS 1, 20%% loss, %d nodes x %d messages each way: delivered %d/%d up and %d/%d down, in order; "+
				"duplicates %d up, %d down; medium: %d frames sent, %d lost (%.1f%%); gateway: %d retransmissions "+
				"(%d early on %d loss reports), clients lost %d; %v",
				simNodes, perNode, simNodes*perNode, simNodes*perNode, simNodes*perNode, simNodes*perNode,
				upDups, downDups, ms.Sent, ms.Lost, 100*float64(ms.Lost)/float64(ms.Sent),
				st.Retransmits, st.TxFailureResends, st.TxFailures, st.Lost, time.Since(start).Round(time.Millisecond))
			if st.Lost != 0 || ms.Lost == 0 {
				t.Errorf("gateway stats %+v, medium %+v", st, ms)
			}
			if report && st.TxFailureResends == 0 {
				t.Error("no early retransmission on loss reports")
			}
		})
	}
}

// QoS 2 at 20 % loss: exactly once, in order, both ways.
func TestSimRadioQoS2ExactlyOnce(t *testing.T) {
	const perNode = 30
	m, _, gw, srv := startSim(t, simLossConfig(2), simradio.Options{ReportLoss: true}, radioConfig())
	app := newMQTTApp(t, srv, "collector", 2, "up/#")
	start := time.Now()
	upDups, downDups := simRun(t, m, gw, app, sn.QoS2, perNode)
	ms, st := m.Stats(), gw.Stats()
	t.Logf("QoS 2, 20%% loss, %d nodes x %d messages each way: each delivered exactly once, in order (duplicates %d up, %d down); "+
		"medium: %d frames sent, %d lost; gateway: %d retransmissions (%d early), %d QoS 2 PUBLISHes accepted; %v",
		simNodes, perNode, upDups, downDups, ms.Sent, ms.Lost, st.Retransmits, st.TxFailureResends, st.PublishIn,
		time.Since(start).Round(time.Millisecond))
	if upDups != 0 || downDups != 0 || st.Lost != 0 || ms.Lost == 0 {
		t.Errorf("gateway stats %+v, medium %+v", st, ms)
	}
}

// A sleeping node wakes and drains its queue over a duty-cycled link:
// the gateway's airtime budget is never overdrawn (it is sized for about
// four deliveries per window), the deliveries wait for budget instead of
// being lost, and a busy neighbour's QoS 1 PUBLISH is answered "rejected:
// congestion" while the budget is spent.
func TestSimRadioSleepDrainDutyCycle(t *testing.T) {
	const queued = 12
	sc := radios.SimConfig{
		Seed: 3, Latency: 200 * time.Microsecond, MTU: 64,
		LoRa:          radios.LoRaParams{SF: 7, BandwidthHz: 500000}, // about 10 ms per frame
		DutyCycle:     0.1,                                           // 50 ms of airtime per 500 ms window
		NodeDutyCycle: -1,                                            // only the gateway is metered
		Budget:        radios.BudgetConfig{Window: 500 * time.Millisecond, Buckets: 10, MinRetry: 10 * time.Millisecond},
	}
	cfg := radioConfig()
	cfg.RetryInterval = 50 * time.Millisecond
	m, link, gw, srv := startSim(t, sc, simradio.Options{}, cfg)
	budget := link.Budget()
	app := newMQTTApp(t, srv, "app", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()

	opts := simClientOpts()
	opts.CleanSession = false
	opts.RetryInterval = 300 * time.Millisecond // the drain pauses for budget
	sleeper, inbox := newSimSensor(t, m, 1, opts)
	if err := sleeper.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sleeper.Subscribe(ctx, snclient.Topic("sleep/q"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Sleep(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "asleep", func() bool { return gw.Stats().Sleeping == 1 })
	for seq := range queued {
		app.publish("sleep/q", seqPayload(1, seq), 1)
	}
	busy, _ := newSimSensor(t, m, 2, opts)
	if err := busy.Connect(ctx); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	woke := make(chan error, 1)
	go func() {
		_, err := sleeper.Wake(ctx)
		woke <- err
	}()
	// The neighbour publishes until it is told "congestion" (then it
	// would wait T_WAIT before trying again).
	var congestion, accepted int
	for congestion == 0 {
		err := busy.Publish(ctx, snclient.Topic("busy/n2"), sn.QoS1, false, []byte{0x0D, 0x11, 0x13})
		var rc *snclient.ReturnCodeError
		switch {
		case err == nil:
			accepted++
		case errors.As(err, &rc) && rc.Code == sn.RejectedCongestion:
			congestion++
		default:
			t.Fatalf("neighbour: %v", err)
		}
	}
	order := newOrderCheck(1, true)
	for order.next[1] < queued {
		select {
		case msg := <-inbox:
			n, seq := parseSeq(t, msg.Payload)
			order.see(t, "drain", n, seq)
			if used := budget.Used(time.Now()); used > budget.Limit() {
				t.Fatalf("airtime used %v of %v", used, budget.Limit())
			}
		case <-ctx.Done():
			t.Fatalf("drained %d of %d", order.next[1], queued)
		}
	}
	if err := <-woke; err != nil {
		t.Fatal(err)
	}
	st := gw.Stats()
	t.Logf("sleep drain over a 10%% duty cycle (budget %v per %v): %d/%d queued messages delivered in order after wake-up "+
		"(%d duplicates) in %v; %d writes refused by the budget, %d deliveries deferred, %d requests answered congestion "+
		"(neighbour: %d accepted before it); budget now %v used of %v, refusals ack/delivery/register %d/%d/%d; clients lost %d",
		budget.Limit(), sc.Budget.Window, queued, queued, order.dups, time.Since(start).Round(time.Millisecond),
		st.LinkCongested, st.CongestionDeferred, st.RejectCongestion, accepted,
		budget.Used(time.Now()), budget.Limit(), budget.Rejected(radios.PriorityAck),
		budget.Rejected(radios.PriorityDelivery), budget.Rejected(radios.PriorityRegister), st.Lost)
	if st.LinkCongested == 0 || st.CongestionDeferred == 0 || st.RejectCongestion == 0 || st.Lost != 0 {
		t.Errorf("stats %+v", st)
	}
	if r := budget.Remaining(time.Now()); r < 0 {
		t.Errorf("budget remaining %v", r)
	}
}
