package sn

import "testing"

func benchDecode(b *testing.B, frame []byte) {
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := Decode(frame, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	benchDecode(b, mustHex(b, "12 0c 20 0001 0005 68656c6c6f2d776f726c64"))
}

func BenchmarkDecodePublish300(b *testing.B) {
	frame, _ := (&Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: make([]byte, 300)}).Append(nil)
	benchDecode(b, frame)
}

func BenchmarkDecodePuback(b *testing.B) { benchDecode(b, mustHex(b, "07 0d 0001 0002 00")) }

func BenchmarkDecodePingreq(b *testing.B) { benchDecode(b, mustHex(b, "09 16 736c6565706572")) }

func BenchmarkDecodeRegister(b *testing.B) {
	benchDecode(b, mustHex(b, "0d 0a 0000 0001 736e2f74657374"))
}

func BenchmarkDecodeEncapsulated(b *testing.B) {
	benchDecode(b, mustHex(b, "05 fe 01 002a "+connectSensor01))
}

func BenchmarkEncodePublish(b *testing.B) {
	m := Publish{QoS: QoS1, TopicID: 1, MsgID: 5, Data: []byte("hello-world")}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(m.Len()))
	for b.Loop() {
		var err error
		if buf, err = m.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePuback(b *testing.B) {
	m := Puback{TopicID: 1, MsgID: 5}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = m.Append(buf[:0])
	}
}

func BenchmarkEncodeEncapsulatedPublish(b *testing.B) {
	m := Publish{QoS: QoS1, TopicID: 1, MsgID: 5, Data: []byte("hello-world")}
	node := []byte{0, 42}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendEncapsulated(buf[:0], 0, node, &m)
	}
}
