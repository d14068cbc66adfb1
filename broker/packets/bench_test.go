package packets

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

func benchPublish() *Publish {
	return &Publish{QoS: 1, PacketID: 42, Topic: "sensors/site-7/room-12/temperature", Payload: make([]byte, 64)}
}

func benchEncode(b *testing.B, v byte, p *Publish) {
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(p.Size(v)))
	for b.Loop() {
		var err error
		buf, err = p.Append(buf[:0], v)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishEncode(b *testing.B) {
	b.Run("v311", func(b *testing.B) { benchEncode(b, V311, benchPublish()) })
	b.Run("v5", func(b *testing.B) { benchEncode(b, V5, benchPublish()) })
	b.Run("v5-props", func(b *testing.B) {
		p := benchPublish()
		p.Props = Properties{MessageExpiry: 60, TopicAlias: 3, SubscriptionIDs: []uint32{5},
			User: []UserProperty{{"trace", "abc"}}}
		benchEncode(b, V5, p)
	})
}

// loopReader replays one packet forever.
type loopReader struct {
	pkt []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.pkt[r.off:])
		n += c
		r.off = (r.off + c) % len(r.pkt)
	}
	return n, nil
}

// benchDecode reads PUBLISH packets from a bufio.Reader the way a
// connection does: fixed header, Peek the body, decode, Discard.
func benchDecode(b *testing.B, v byte, p *Publish) {
	wire, err := p.Append(nil, v)
	if err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(&loopReader{pkt: wire}, 4096)
	var out Publish
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		h, err := ReadFixedHeader(br, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		body, err := br.Peek(h.Remaining)
		if err != nil {
			b.Fatal(err)
		}
		if err := out.Decode(h, body, v); err != nil {
			b.Fatal(err)
		}
		if _, err := br.Discard(h.Remaining); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishDecode(b *testing.B) {
	b.Run("v311", func(b *testing.B) { benchDecode(b, V311, benchPublish()) })
	b.Run("v5", func(b *testing.B) { benchDecode(b, V5, benchPublish()) })
	b.Run("v5-alias", func(b *testing.B) {
		p := benchPublish()
		p.Topic = ""
		p.Props.TopicAlias = 1
		benchDecode(b, V5, p)
	})
}

func BenchmarkAckEncode(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendAck(buf[:0], PUBACK, 7, 0, V5)
	}
}

func BenchmarkConnectDecode(b *testing.B) {
	c := &Connect{Version: V5, CleanStart: true, KeepAlive: 60, ClientID: "bench-client",
		UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("secret"),
		Props: Properties{SessionExpiry: 3600, ReceiveMaximum: 100}}
	wire, _ := c.Append(nil, V5)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadPacket(bufio.NewReader(io.MultiReader(bytes.NewReader(wire))), V5, 0); err != nil {
			b.Fatal(err)
		}
	}
}
