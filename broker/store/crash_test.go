package store_test

// The crash test: sngate (the real 'sngate serve' once it opens the store,
// else testdata/crashserve, which wires the same parts) runs as a
// subprocess on one data dir; MQTT-SN and MQTT clients publish QoS 1 and 2
// messages to persistent subscribers, some of them asleep or offline; the
// process is killed with SIGKILL at random points, several times, and
// restarted. Every acknowledged message must be delivered in the end (QoS
// 1 duplicates allowed, QoS 2 ones not), and the topic IDs of persistent
// MQTT-SN sessions must stay valid across restarts.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sngate/sngate/broker/store"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/sn/client"
)

// Binaries built by TestMain.
var (
	binDir      string
	sngateBin   string // "" if cmd/sngate does not build
	crashBin    string
	buildErrors []string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sngate-crash-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := func(out, pkg string) string {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErrors = append(buildErrors, fmt.Sprintf("go build %s: %v\n%s", pkg, err, b))
			return ""
		}
		return filepath.Join(dir, out)
	}
	sngateBin = build("sngate", "github.com/sngate/sngate/cmd/sngate")
	crashBin = build("crashserve", "./testdata/crashserve")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	snTopicPrefix   = "crash/sn/"
	mqttTopicPrefix = "crash/mqtt/"
	retainedTopic   = "crash/retained"
	publishersEach  = 2 // MQTT-SN and MQTT publishers
)

func TestCrashRecovery(t *testing.T) {
	if crashBin == "" && sngateBin == "" {
		t.Fatalf("no server binary: %s", strings.Join(buildErrors, "\n"))
	}
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SNGATE_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	t.Logf("seed %d (rerun with SNGATE_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dataDir := filepath.Join(t.TempDir(), "data")
	bin, args := pickServer(t, dataDir)
	led := newLedger()
	ctx := context.Background()

	snsub := newSNClient(t, "snsub", func(m client.Message) {
		led.received("snsub", string(m.Payload), delivery{id: m.MsgID, dup: m.Dup})
	})
	snpubs := make([]*snClient, publishersEach)
	topicIDs := make([]uint16, publishersEach)
	for i := range snpubs {
		snpubs[i] = newSNClient(t, fmt.Sprintf("snpub%d", i), nil)
	}
	var topicIDErrors atomic.Int64
	var srv *server
	defer func() {
		if srv != nil {
			srv.kill()
			if t.Failed() {
				t.Logf("server log:\n%s", srv.stderr)
			}
		}
	}()
	startServer := func() {
		t.Helper()
		var err error
		if srv, err = start(bin, args, dataDir); err != nil {
			t.Fatal(err)
		}
		for _, c := range append([]*snClient{snsub}, snpubs...) {
			c.conn.target.Store(srv.sn)
		}
	}
	offline := 0 // rounds msub has been offline in a row
	startServer()
	for round := range rounds {
		// msub's queue holds what it missed: at most 3 rounds' worth, well
		// under the broker's queue bound (1000 messages).
		msubOnline := round == 0 || offline == 3 || rng.IntN(3) != 0
		if msubOnline {
			offline = 0
		} else {
			offline++
		}
		snsubSleeps := round > 0 && rng.IntN(2) == 0
		killAt := rng.IntN(120)
		if rng.IntN(4) == 0 {
			killAt = rng.IntN(5) // early: while clients (re)connect
		}
		kill := led.newRound(killAt)

		var msub mqtt.Client
		if msubOnline {
			msub = mqttSubscriber(t, srv.mqtt, led, round == 0)
		}
		if err := snsub.Connect(ctx); err != nil {
			t.Fatalf("round %d: snsub connect: %v", round, err)
		}
		if round == 0 {
			if _, q, err := snsub.Subscribe(ctx, client.Topic("crash/#"), sn.QoS2); err != nil || q != sn.QoS2 {
				t.Fatalf("snsub subscribe: %v (granted %d)", err, q)
			}
		}
		if snsubSleeps {
			if err := snsub.Sleep(ctx, time.Hour); err != nil {
				t.Fatalf("round %d: snsub sleep: %v", round, err)
			}
		}

		var wg sync.WaitGroup
		var stop atomic.Bool
		for i, c := range snpubs {
			wg.Go(func() {
				snPublisher(t, c, round, i, &topicIDs[i], led, &stop, &topicIDErrors)
			})
		}
		for i := range publishersEach {
			wg.Go(func() { mqttPublisher(srv.mqtt, round, i, led, &stop) })
		}
		allDone := make(chan struct{})
		go func() { wg.Wait(); close(allDone) }()
		select {
		case <-kill:
		case <-allDone: // every publisher failed: kill anyway
		}
		srv.kill()
		stop.Store(true)
		// Restart now: a request in flight is resent to the new gateway,
		// which does not know the client yet and answers DISCONNECT, so
		// the publishers stop at their next retry.
		startServer()
		<-allDone
		if msub != nil {
			msub.Disconnect(0)
		}
		led.mu.Lock()
		n := led.roundN
		led.mu.Unlock()
		t.Logf("round %d: killed after %d acks (target %d); msub online %v, snsub asleep %v",
			round, n, killAt, msubOnline, snsubSleeps)
	}

	// The last start: everything acknowledged must arrive.
	msub := mqttSubscriber(t, srv.mqtt, led, false)
	defer msub.Disconnect(0)
	if err := snsub.Connect(ctx); err != nil {
		t.Fatalf("final snsub connect: %v", err)
	}
	for i, c := range snpubs { // the topic IDs registered before the crashes still work
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("final snpub%d connect: %v", i, err)
		}
		if topicIDs[i] == 0 {
			continue
		}
		p := fmt.Sprintf("snpub%d/final", i)
		led.sent(p, 1)
		if err := c.Publish(ctx, client.TopicID(topicIDs[i]), sn.QoS1, false, []byte(p)); err != nil {
			t.Errorf("snpub%d: topic ID %d after restart: %v", i, topicIDs[i], err)
			continue
		}
		led.ack(p)
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for len(led.missing("msub")) > 0 || len(led.missing("snsub")) > 0 {
		select {
		case <-led.change:
		case <-deadline.C:
			for _, sub := range []string{"msub", "snsub"} {
				if m := led.missing(sub); len(m) > 0 {
					t.Errorf("%s: %d acknowledged messages lost: %.20q", sub, len(m), m)
				}
			}
			t.FailNow()
		}
	}
	checkRetained(t, srv.mqtt, led)
	dupM, q1M := led.qos2Dups("msub", false)
	dupS, q1S := led.qos2Dups("snsub", true)
	if len(dupM) > 0 || len(dupS) > 0 {
		t.Errorf("QoS 2 duplicates: msub %q, snsub %q", dupM, dupS)
	}
	if n := topicIDErrors.Load(); n > 0 {
		t.Errorf("%d PUBLISHes by a topic ID registered before a restart were rejected", n)
	}
	led.mu.Lock()
	acked, sent := len(led.acked), len(led.qos)
	led.mu.Unlock()
	t.Logf("%d rounds: %d messages sent, %d acknowledged, 0 lost; QoS 1 duplicates: msub %d, snsub %d; QoS 2 duplicates: 0",
		rounds, sent, acked, q1M, q1S)
}

// pickServer returns the binary and arguments to run: 'sngate serve' if
// it persists into the data dir, else crashserve.
func pickServer(t *testing.T, dataDir string) (string, []string) {
	if sngateBin != "" {
		probe := filepath.Join(filepath.Dir(dataDir), "probe")
		s, err := start(sngateBin, []string{"serve"}, probe)
		if err == nil {
			_, statErr := os.Stat(filepath.Join(probe, store.FileName))
			s.kill()
			if statErr == nil {
				t.Logf("server: sngate serve")
				return sngateBin, []string{"serve"}
			}
			t.Logf("sngate serve does not open the store yet: using testdata/crashserve")
		} else {
			t.Logf("sngate serve did not start (%v): using testdata/crashserve", err)
		}
	}
	if crashBin == "" {
		t.Fatalf("no server: %s", strings.Join(buildErrors, "\n"))
	}
	return crashBin, nil
}

// mqttSubscriber connects the persistent MQTT subscriber "msub".
func mqttSubscriber(t *testing.T, addr string, led *ledger, subscribe bool) mqtt.Client {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("msub").
		SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(time.Hour).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			led.received("msub", string(m.Payload()), delivery{id: m.MessageID(), dup: m.Duplicate()})
		})
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatalf("msub connect: %v", tok.Error())
	}
	if subscribe {
		if tok := c.Subscribe("crash/#", 2, nil); tok.Wait() && tok.Error() != nil {
			t.Fatalf("msub subscribe: %v", tok.Error())
		}
	}
	return c
}

// mqttPublisher publishes QoS 1 and 2 messages until one fails (the
// server was killed) or stop is set.
func mqttPublisher(addr string, round, i int, led *ledger, stop *atomic.Bool) {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("mpub%d", i)).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(time.Hour)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		return // killed before the publisher connected
	}
	defer c.Disconnect(0)
	if i == 0 { // a retained message per round: the last acknowledged one must survive
		p := fmt.Sprintf("retained/%d", round)
		led.sent(p, 1)
		if tok := c.Publish(retainedTopic, 1, true, p); tok.Wait() && tok.Error() != nil {
			return
		}
		led.ack(p)
		led.mu.Lock()
		led.retainedRound = round
		led.mu.Unlock()
	}
	topic := fmt.Sprintf("%s%d", mqttTopicPrefix, i)
	for n := 0; !stop.Load(); n++ {
		qos := byte(1 + n%2)
		p := fmt.Sprintf("mpub%d/%d/%d/q%d", i, round, n, qos)
		led.sent(p, qos)
		tok := c.Publish(topic, qos, false, p)
		if tok.Wait(); tok.Error() != nil {
			return
		}
		led.ack(p)
	}
}

// snPublisher connects an MQTT-SN publisher (persistent session) and
// publishes QoS 1 and 2 messages until one fails or stop is set. It
// registers its topic once; after restarts it publishes by the ID it got.
func snPublisher(t *testing.T, c *snClient, round, i int, topicID *uint16, led *ledger, stop *atomic.Bool, idErrors *atomic.Int64) {
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		return
	}
	if *topicID == 0 {
		id, err := c.Register(ctx, fmt.Sprintf("%s%d", snTopicPrefix, i))
		if err != nil {
			return
		}
		*topicID = id
	}
	for n := 0; !stop.Load(); n++ {
		qos := sn.QoS(1 + n%2)
		p := fmt.Sprintf("snpub%d/%d/%d/q%d", i, round, n, qos)
		led.sent(p, byte(qos))
		err := c.Publish(ctx, client.TopicID(*topicID), qos, false, []byte(p))
		var rc *client.ReturnCodeError
		if errors.As(err, &rc) && rc.Code == sn.RejectedInvalidTopicID {
			idErrors.Add(1)
			t.Logf("round %d: snpub%d: topic ID %d rejected after a restart", round, i, *topicID)
		}
		if err != nil {
			return
		}
		led.ack(p)
	}
}

// checkRetained checks that the retained message is the last acknowledged
// one, or a later one.
func checkRetained(t *testing.T, addr string, led *ledger) {
	led.mu.Lock()
	want := led.retainedRound
	led.mu.Unlock()
	if want < 0 {
		return
	}
	got := make(chan string, 1)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("rcheck").SetCleanSession(true).
		SetAutoReconnect(false)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatalf("rcheck connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Subscribe(retainedTopic, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	})
	if tok.Wait(); tok.Error() != nil {
		t.Fatalf("rcheck subscribe: %v", tok.Error())
	}
	select {
	case p := <-got:
		r, err := strconv.Atoi(strings.TrimPrefix(p, "retained/"))
		if err != nil || r < want {
			t.Errorf("retained message %q, want round >= %d", p, want)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("no retained message (the last acknowledged one was from round %d)", want)
	}
}
