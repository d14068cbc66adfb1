package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
)

func fullMessage() *broker.Message {
	return &broker.Message{Topic: "a/b", Payload: []byte("payload"), QoS: 2, Retain: true,
		Expiry: time.Unix(0, 1_800_000_000_123_456_789), From: "pub",
		Props: &broker.Properties{PayloadFormat: 1, ContentType: "text/plain", ResponseTopic: "r/t",
			CorrelationData: []byte{1, 2}, User: []broker.UserProperty{{Key: "k", Value: "v"}, {Key: "k2"}}}}
}

func fullSession() *broker.SessionRecord {
	return &broker.SessionRecord{ClientID: "c1", Username: "u", Expiry: broker.NoExpiry,
		DisconnectedAt: time.Unix(0, 1_700_000_000_000_000_001), QueueQoS0: true,
		Subscriptions: []broker.Subscription{{Filter: "a/#", QoS: 2, NoLocal: true, RetainAsPublished: true,
			RetainHandling: 2, ID: 77}, {Filter: "$share/g/b", QoS: 1}},
		Will:          &broker.Will{Msg: *fullMessage(), Delay: time.Minute, MsgExpiry: time.Hour},
		FrontendState: []byte{1, 0, 5, 'a'}}
}

func TestCodecRoundTrip(t *testing.T) {
	rec := fullSession()
	got, err := decodeSession(encodeSession(nil, rec))
	if err != nil || !reflect.DeepEqual(got, rec) {
		t.Fatalf("session: %v\n got %+v\nwant %+v", err, got, rec)
	}
	min := &broker.SessionRecord{ClientID: "x", Expiry: time.Second}
	if got, err := decodeSession(encodeSession(nil, min)); err != nil || !reflect.DeepEqual(got, min) {
		t.Fatalf("minimal session: %v %+v", err, got)
	}
	sm := broker.StoredMessage{Msg: fullMessage(), QoS: 1, Retain: true, SubIDs: []uint32{1, 1 << 31},
		PacketID: 65535, Sent: true, Released: true}
	gsm, err := decodeStored(encodeStored(nil, &sm))
	if err != nil || !reflect.DeepEqual(gsm, sm) {
		t.Fatalf("stored: %v\n got %+v\nwant %+v", err, gsm, sm)
	}
	plain := &broker.Message{Topic: "t", QoS: 1}
	if got, err := decodeRetained(encodeRetained(nil, plain)); err != nil || !reflect.DeepEqual(got, plain) {
		t.Fatalf("retained: %v %+v", err, got)
	}
}

// Every truncation and every single-byte corruption of a record decodes
// to an error or a value, never a panic.
func TestCodecCorruptNeverPanics(t *testing.T) {
	recs := [][]byte{
		encodeSession(nil, fullSession()),
		encodeStored(nil, &broker.StoredMessage{Msg: fullMessage(), QoS: 2, SubIDs: []uint32{3}}),
		encodeRetained(nil, fullMessage()),
	}
	decoders := []func([]byte) error{
		func(b []byte) error { _, err := decodeSession(b); return err },
		func(b []byte) error { _, err := decodeStored(b); return err },
		func(b []byte) error { _, err := decodeRetained(b); return err },
	}
	for i, rec := range recs {
		for n := 0; n < len(rec); n++ {
			if err := decoders[i](rec[:n]); err == nil {
				t.Errorf("record %d truncated to %d bytes decoded without error", i, n)
			}
		}
		for p := range rec {
			for _, v := range []byte{0, 0x7f, 0x80, 0xff} {
				b := bytes.Clone(rec)
				b[p] = v
				_ = decoders[i](b)
			}
		}
	}
	if err := decoders[0](append([]byte{recordVersion + 1}, recs[0][1:]...)); err == nil ||
		!strings.Contains(err.Error(), "record version") {
		t.Errorf("newer record version: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeSession(nil, fullSession()))
	f.Add(encodeStored(nil, &broker.StoredMessage{Msg: fullMessage(), QoS: 2, SubIDs: []uint32{3}}))
	f.Add(encodeRetained(nil, fullMessage()))
	f.Fuzz(func(t *testing.T, b []byte) {
		if rec, err := decodeSession(b); err == nil {
			if again, err := decodeSession(encodeSession(nil, rec)); err != nil || !reflect.DeepEqual(again, rec) {
				t.Fatalf("session re-encoding differs: %v", err)
			}
		}
		_, _ = decodeStored(b)
		_, _ = decodeRetained(b)
	})
}

func TestKeys(t *testing.T) {
	long := strings.Repeat("x", maxPlainKey+1)
	if k := nameKey(long); len(k) != 33 || k[0] != hashedKey {
		t.Fatalf("long key %x", k)
	}
	if k := nameKey("abc"); string(k) != "abc" {
		t.Fatalf("short key %q", k)
	}
	for _, id := range []string{"", "a", long} {
		sk := nameKey(id)
		k := msgKey(nil, sk, 1<<40+5)
		gsk, seq, err := splitMsgKey(k)
		if err != nil || !bytes.Equal(gsk, sk) || seq != 1<<40+5 {
			t.Fatalf("split %x: %x %d %v", k, gsk, seq, err)
		}
	}
	for _, bad := range [][]byte{nil, {5, 'a'}, {1, 'a', 0, 0}} {
		if _, _, err := splitMsgKey(bad); err == nil {
			t.Errorf("malformed key %x accepted", bad)
		}
	}
}

// jsonStored mirrors a stored message as a JSON record would, to compare
// sizes with the binary encoding.
type jsonStored struct {
	V        int             `json:"v"`
	QoS      byte            `json:"q"`
	Retain   bool            `json:"r,omitempty"`
	Sent     bool            `json:"s,omitempty"`
	Released bool            `json:"rel,omitempty"`
	PacketID uint16          `json:"p,omitempty"`
	SubIDs   []uint32        `json:"ids,omitempty"`
	Msg      *broker.Message `json:"m"`
}

// BenchmarkEncodeStored compares the binary record with JSON for a typical
// MQTT-SN sensor message (the sizes are reported as metrics).
func BenchmarkEncodeStored(b *testing.B) {
	sm := broker.StoredMessage{Msg: &broker.Message{Topic: "sensors/42/temp", Payload: []byte("21.5"), QoS: 1,
		From: "sensor-42"}, QoS: 1, PacketID: 7}
	b.Run("binary", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = encodeStored(buf[:0], &sm)
		}
		b.ReportMetric(float64(len(buf)), "bytes/record")
	})
	b.Run("binary-decode", func(b *testing.B) {
		rec := encodeStored(nil, &sm)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeStored(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		var n int
		b.ReportAllocs()
		for b.Loop() {
			out, _ := json.Marshal(jsonStored{V: 1, QoS: sm.QoS, PacketID: sm.PacketID, Msg: sm.Msg})
			n = len(out)
		}
		b.ReportMetric(float64(n), "bytes/record")
	})
	b.Run("json-decode", func(b *testing.B) {
		rec, _ := json.Marshal(jsonStored{V: 1, QoS: sm.QoS, PacketID: sm.PacketID, Msg: sm.Msg})
		b.ReportAllocs()
		for b.Loop() {
			var v jsonStored
			if err := json.Unmarshal(rec, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
