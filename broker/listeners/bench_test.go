package listeners

import (
	"bufio"
	"io"
	"net"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/packets"
)

// benchPair connects a raw publisher and a raw subscriber (to "bench/#"
// at QoS 1) through a TCP listener.
func benchPair(b *testing.B, park bool) (pub, sub net.Conn) {
	srv, err := broker.New(func() broker.Config {
		c := broker.DefaultConfig()
		c.SysInterval = 0
		// The publisher gets its PUBACK when the message is queued for
		// the subscriber: let the queue absorb the whole run, so that QoS
		// 1 measures delivery, not the queue bound.
		c.MaxQueuedMessages = 1 << 22
		return c
	}())
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(Config{Addr: "127.0.0.1:0"}, srv, nil)
	if err != nil {
		b.Fatal(err)
	}
	l.parkIdle = l.parkIdle && park
	l.Listen()
	go l.Serve()
	b.Cleanup(func() { l.Close(); srv.Close() })
	dial := func(id string) net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		w, _ := (&packets.Connect{Version: packets.V311, ClientID: id, CleanStart: true}).Append(nil, 0)
		c.Write(w)
		if p, err := packets.ReadPacket(bufio.NewReaderSize(c, 16), packets.V311, 0); err != nil || p.Type() != packets.CONNACK {
			b.Fatal("connect", err)
		}
		return c
	}
	sub = dial("bench-sub")
	w, _ := (&packets.Subscribe{PacketID: 1, Filters: []packets.SubOption{{Filter: "bench/#", QoS: 1}}}).Append(nil, packets.V311)
	sub.Write(w)
	if p, err := packets.ReadPacket(bufio.NewReaderSize(sub, 16), packets.V311, 0); err != nil || p.Type() != packets.SUBACK {
		b.Fatal("subscribe", err)
	}
	return dial("bench-pub"), sub
}

// benchFlow publishes b.N messages with QoS qos from one client to one
// subscriber, pipelined, then a QoS 1 end marker, and reads until the
// marker. QoS 0 messages the subscriber's connection cannot take are
// dropped by the broker (as MQTT allows); the drop rate is reported.
func benchFlow(b *testing.B, qos byte, park bool) {
	pub, sub := benchPair(b, park)
	payload := make([]byte, 64)
	got := make(chan int, 1)
	go func() { // subscriber: count PUBLISHes, acknowledge QoS 1
		br := bufio.NewReaderSize(sub, 64<<10)
		bw := bufio.NewWriter(sub)
		var p packets.Publish
		body := make([]byte, 1024)
		n := 0
		for {
			h, err := packets.ReadFixedHeader(br, 0)
			if err != nil {
				b.Error(err)
				got <- n
				return
			}
			if _, err := io.ReadFull(br, body[:h.Remaining]); err != nil {
				b.Error(err)
				got <- n
				return
			}
			if err := p.Decode(h, body[:h.Remaining], packets.V311); err != nil {
				b.Error(err)
				got <- n
				return
			}
			if p.QoS > 0 {
				bw.Write(packets.AppendAck(nil, packets.PUBACK, p.PacketID, 0, packets.V311))
				if br.Buffered() == 0 {
					bw.Flush()
				}
			}
			if p.Topic == "bench/end" {
				got <- n
				return
			}
			n++
		}
	}()
	// QoS 1 publishers keep a window of unacknowledged messages, as real
	// clients do; the broker's per-subscriber queue is bounded.
	window := make(chan struct{}, 256)
	go func() { // the publisher's PUBACKs
		br := bufio.NewReader(pub)
		for {
			if _, err := packets.ReadPacket(br, packets.V311, 0); err != nil {
				return
			}
			<-window
		}
	}()
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	bw := bufio.NewWriterSize(pub, 64<<10)
	var buf []byte
	for i := 0; i < b.N; i++ {
		p := packets.Publish{Topic: "bench/topic", QoS: qos, PacketID: uint16(i%60000) + 1, Payload: payload}
		buf, _ = p.Append(buf[:0], packets.V311)
		if qos > 0 {
			select {
			case window <- struct{}{}:
			default:
				bw.Flush()
				window <- struct{}{}
			}
		}
		bw.Write(buf)
	}
	end := packets.Publish{Topic: "bench/end", QoS: 1, PacketID: 65000}
	buf, _ = end.Append(buf[:0], packets.V311)
	window <- struct{}{}
	bw.Write(buf)
	bw.Flush()
	n := <-got
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "delivered/s")
	b.ReportMetric(100*float64(b.N-n)/float64(b.N), "%dropped")
}

// BenchmarkThroughputQoS0 measures one publisher to one subscriber over
// loopback TCP through the broker, QoS 0.
func BenchmarkThroughputQoS0(b *testing.B) {
	b.Run("park", func(b *testing.B) { benchFlow(b, 0, true) })
	b.Run("nopark", func(b *testing.B) { benchFlow(b, 0, false) })
}

// BenchmarkThroughputQoS1 is the QoS 1 flow, with PUBACKs both ways.
func BenchmarkThroughputQoS1(b *testing.B) {
	b.Run("park", func(b *testing.B) { benchFlow(b, 1, true) })
	b.Run("nopark", func(b *testing.B) { benchFlow(b, 1, false) })
}

// BenchmarkRoundTrip measures one PINGREQ/PINGRESP exchange at a time:
// the cost of waking an idle connection.
func BenchmarkRoundTrip(b *testing.B) {
	for _, park := range []bool{true, false} {
		name := "park"
		if !park {
			name = "nopark"
		}
		b.Run(name, func(b *testing.B) {
			pub, _ := benchPair(b, park)
			br := bufio.NewReader(pub)
			ping := []byte{packets.PINGREQ << 4, 0}
			var resp [2]byte
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pub.Write(ping)
				if _, err := io.ReadFull(br, resp[:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
