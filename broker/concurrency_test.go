package broker

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentFanInFanOut: publishers and subscribers on their own
// goroutines, acks from a reader goroutine per subscriber, as a TCP front
// end does. Every subscriber gets every message once, in per-publisher
// order.
func TestConcurrentFanInFanOut(t *testing.T) {
	const pubs, subs, perPub = 8, 4, 500
	cfg := testConfig()
	cfg.MaxQueuedMessages = pubs * perPub // lossless: every message may wait
	srv := newServer(t, cfg)
	type subscriber struct {
		s    *Session
		sink *testSink
		got  map[int][]int
	}
	var all []*subscriber
	for i := range subs {
		s, sink := conn(t, srv, fmt.Sprintf("sub%d", i), func(ci *ConnectInfo) { ci.ReceiveMaximum = 16 })
		sub(t, s, subQ("load/#", 1))
		all = append(all, &subscriber{s: s, sink: sink, got: map[int][]int{}})
	}
	var readers sync.WaitGroup
	for _, sb := range all {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range pubs * perPub {
				d := sb.sink.next(t)
				p, n := parsePayload(t, d.Msg.Payload)
				sb.got[p] = append(sb.got[p], n)
				switch d.QoS {
				case 1:
					sb.s.Ack(d.PacketID)
				case 2:
					sb.s.Received(d.PacketID)
					sb.s.Complete(d.PacketID)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _ := conn(t, srv, fmt.Sprintf("pub%d", p))
			for n := range perPub {
				qos := QoS(n % 3)
				if err := s.Publish(&Message{Topic: "load/" + strconv.Itoa(p), QoS: qos, Payload: fmt.Appendf(nil, "%d:%d", p, n)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	readers.Wait()
	for i, sb := range all {
		for p := range pubs {
			seq := sb.got[p]
			if len(seq) != perPub {
				t.Fatalf("stats %+v", srv.Stats())
				t.Fatalf("sub %d from pub %d: %d messages", i, p, len(seq))
			}
			for n, v := range seq {
				if v != n {
					t.Fatalf("sub %d from pub %d: out of order at %d: %d", i, p, n, v)
				}
			}
		}
		if sb.s.Pending() != 0 {
			t.Errorf("sub %d pending %d", i, sb.s.Pending())
		}
	}
	if st := srv.Stats(); st.Inflight != 0 || st.Queued != 0 || st.MessagesSent != pubs*perPub*subs {
		t.Errorf("stats %+v", st)
	}
}

func parsePayload(t testing.TB, b []byte) (int, int) {
	a, c, _ := strings.Cut(string(b), ":")
	p, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(c)
	if err1 != nil || err2 != nil {
		t.Fatalf("payload %q", b)
	}
	return p, n
}

// TestConcurrentSleepyClients: sinks that refuse at random (sleeping
// MQTT-SN clients) and a goroutine per client that wakes it with Resume.
// No QoS 1 message is lost and nothing deadlocks.
func TestConcurrentSleepyClients(t *testing.T) {
	const clients, msgs = 6, 400
	cfg := testConfig()
	cfg.MaxQueuedMessages = msgs
	srv := newServer(t, cfg)
	var wg sync.WaitGroup
	sessions := make([]*Session, clients)
	sinks := make([]*testSink, clients)
	for i := range clients {
		s, sink := conn(t, srv, fmt.Sprintf("sn%d", i), persistent, func(ci *ConnectInfo) { ci.ReceiveMaximum = 1 })
		sub(t, s, subQ("cmd", 1))
		sessions[i], sinks[i] = s, sink
	}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, sink := sessions[i], sinks[i]
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for n := 0; n < msgs; {
				sink.refuse.Store(rng.IntN(4) == 0) // falls asleep now and then
				select {
				case d := <-sink.ch:
					if string(d.Msg.Payload) != strconv.Itoa(n) {
						t.Errorf("client %d: got %q, want %d", i, d.Msg.Payload, n)
						return
					}
					n++
					s.Ack(d.PacketID)
				case <-sink.refusals: // wakes up
					sink.refuse.Store(false)
					s.Resume()
				}
			}
		}()
	}
	p, _ := conn(t, srv, "p")
	for n := range msgs {
		pub(t, p, "cmd", strconv.Itoa(n), 1, false)
	}
	wg.Wait()
	for i, s := range sessions {
		if s.Pending() != 0 {
			t.Errorf("client %d pending %d", i, s.Pending())
		}
	}
	if st := srv.Stats(); st.DroppedQueueFull != 0 {
		t.Errorf("dropped %d", st.DroppedQueueFull)
	}
}

// TestConcurrentChurn: takeovers, subscribe/unsubscribe, disconnects and
// publishes all at once, to give the race detector and the lock order a
// workout.
func TestConcurrentChurn(t *testing.T) {
	srv := newServer(t, testConfig())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("c%d", rng.IntN(5))
				info := ConnectInfo{ClientID: id, CleanStart: rng.IntN(2) == 0, SessionExpiry: NoExpiry,
					Will: &Will{Msg: Message{Topic: "w/" + id}}}
				sink := newSink()
				s, _, err := srv.Connect(info, sink)
				if err != nil {
					t.Error(err)
					return
				}
				s.Resume()
				s.Subscribe([]Subscription{{Filter: "t/#", QoS: QoS(rng.IntN(3))}, {Filter: "$share/g/t/+", QoS: 1}})
				s.Resume()
				_ = s.Publish(&Message{Topic: "t/" + id, QoS: QoS(rng.IntN(3)), Payload: []byte("x")})
				for len(sink.ch) > 0 {
					d := <-sink.ch
					switch {
					case d.QoS == 1:
						s.Ack(d.PacketID)
					case d.QoS == 2 && !d.Release:
						s.Received(d.PacketID)
						s.Complete(d.PacketID)
					}
				}
				if rng.IntN(3) == 0 {
					s.Unsubscribe([]string{"t/#"})
				}
				s.Disconnect(rng.IntN(2) == 0)
			}
		}()
	}
	for range 2000 {
		srv.PublishAnonymous(&Message{Topic: "t/x", QoS: 1, Payload: []byte("y"), Retain: true}, "")
	}
	close(stop)
	wg.Wait()
	st := srv.Stats()
	if st.SessionsConnected != 0 {
		t.Errorf("connected %d after all disconnects", st.SessionsConnected)
	}
}
