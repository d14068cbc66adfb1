package bench

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/udp"
)

// nullSink is the cheapest possible MQTT-SN peer: it answers CONNECT,
// REGISTER, SUBSCRIBE, QoS 1/2 PUBLISH, PINGREQ and DISCONNECT, and counts
// PUBLISH frames. Against it, a run measures the load generator's own
// ceiling.
type nullSink struct {
	link      *udp.Link
	publishes atomic.Uint64
	done      chan struct{}
}

func startNullSink() (*nullSink, error) {
	l, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0", Name: "sink", ReadBuffer: 4 << 20, WriteBuffer: 4 << 20})
	if err != nil {
		return nil, fmt.Errorf("bench: null sink: %w", err)
	}
	s := &nullSink{link: l, done: make(chan struct{})}
	go s.loop()
	return s, nil
}

func (s *nullSink) addr() string { return s.link.LocalAddr().String() }

func (s *nullSink) loop() {
	defer close(s.done)
	buf := make([]byte, 2048)
	var out []byte
	var p sn.Packet
	for {
		n, from, err := s.link.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, transport.ErrClosed) {
				return
			}
			continue
		}
		h, err := sn.ParseHeader(buf[:n])
		if err != nil {
			continue
		}
		t := sn.V12.MsgType(h.Code)
		if t == sn.TypePublish && n > h.Size() {
			if q := buf[h.Size()] & 0x60; q == 0 || q == 0x60 { // the QoS bits of Flags
				s.publishes.Add(1) // QoS 0 or -1: count without decoding
				continue
			}
		}
		if sn.Decode(buf[:n], &p) != nil {
			continue
		}
		var reply sn.Message
		switch p.Type {
		case sn.TypeConnect:
			reply = &sn.Connack{}
		case sn.TypeRegister:
			reply = &sn.Regack{TopicID: 1, MsgID: p.Register.MsgID}
		case sn.TypeSubscribe:
			reply = &sn.Suback{QoS: p.Subscribe.QoS, TopicID: 1, MsgID: p.Subscribe.MsgID}
		case sn.TypePublish:
			s.publishes.Add(1)
			switch p.Publish.QoS {
			case sn.QoS1:
				reply = &sn.Puback{TopicID: p.Publish.TopicID, MsgID: p.Publish.MsgID}
			case sn.QoS2:
				reply = &sn.Pubrec{MsgID: p.Publish.MsgID}
			}
		case sn.TypePubrel:
			reply = &sn.Pubcomp{MsgID: p.Pubrel.MsgID}
		case sn.TypePingreq:
			reply = &sn.Pingresp{}
		case sn.TypeDisconnect:
			reply = &sn.Disconnect{}
		}
		if reply == nil {
			continue
		}
		if out, err = reply.Append(out[:0]); err == nil {
			_ = s.link.WriteTo(out, from)
		}
	}
}

func (s *nullSink) close() {
	_ = s.link.Close()
	<-s.done
}
