package sn_test

import (
	"errors"
	"fmt"

	"github.com/sngate/sngate/sn"
)

func ExampleDecode() {
	var p sn.Packet // reuse one Packet per worker: decoding allocates nothing
	datagram := []byte{0x0b, 0x0c, 0x62, 0x74, 0x31, 0x00, 0x00, '2', '1', '.', '5'}
	if err := sn.Decode(datagram, &p); err != nil {
		fmt.Println(err)
		return
	}
	switch p.Type {
	case sn.TypePublish:
		fmt.Println(p.Publish.String(), string(p.Publish.Data))
	}

	err := sn.Decode([]byte{0x10, 0x0c, 0x00, 0x00, 0x01, 0x00, 0x00, 'a', 'b', 'c'}, &p)
	fmt.Println(errors.Is(err, sn.ErrBadLength), err)
	// Output:
	// PUBLISH dup=0 qos=-1 retain=0 topicType=short topicId="t1" msgId=0 len=4 21.5
	// true sn: decode PUBLISH: Length: bad length: Length 16, datagram 10 bytes (offset 0)
}

func ExamplePublish_Append() {
	buf := make([]byte, 0, 64) // reuse: appending allocates nothing
	m := sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 5, Data: []byte("hi")}
	buf, err := m.Append(buf[:0])
	fmt.Printf("% x %v\n", buf, err)
	// Output:
	// 09 0c 20 00 01 00 05 68 69 <nil>
}

func ExampleDecapsulate() {
	frame := []byte{0x05, 0xfe, 0x01, 0x00, 0x2a, 0x04, 0x18, 0x02, 0x58}
	var p sn.Packet
	enc, err := sn.Decapsulate(frame, &p)
	fmt.Printf("node %x radius %d: %s %v\n", enc.NodeID, enc.Radius(), p.String(), err)

	// Answer through the same forwarder, without encoding twice.
	reply, err := sn.AppendEncapsulated(nil, 0, enc.NodeID, &sn.Disconnect{})
	fmt.Printf("% x %v\n", reply, err)
	// Output:
	// node 002a radius 1: DISCONNECT duration=600 <nil>
	// 05 fe 00 00 2a 02 18 <nil>
}
