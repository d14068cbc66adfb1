package client

import (
	"testing"

	"github.com/sngate/sngate/sn"
)

// With OnPublish busy and MaxPending messages waiting, a QoS 0 message is
// dropped and QoS 1 and 2 messages get no acknowledgement; the gateway's
// retransmissions are accepted once the queue has room, and a QoS 2
// message refused once is not taken for a duplicate.
func TestMaxPending(t *testing.T) {
	p := newPeer(t)
	started := make(chan struct{})
	gate := make(chan struct{})
	col := newCollector()
	first := true
	c := dial(t, p, Options{MaxPending: 2, OnPublish: func(m Message) {
		if first { // hold the first message, so the others queue
			first = false
			close(started)
			<-gate
		}
		col.onPublish(m)
	}})
	connect(t, p, c)

	const topic = 0x6162 // short topic "ab": no REGISTER needed
	pub := func(qos sn.QoS, id uint16, data string) *sn.Publish {
		return &sn.Publish{QoS: qos, TopicIDType: sn.TopicIDShort, TopicID: topic, MsgID: id, Data: []byte(data)}
	}
	p.send(pub(sn.QoS0, 0, "held"))
	<-started // OnPublish holds "held"; the queue is empty

	p.send(pub(sn.QoS1, 1, "q1"))
	if ack := p.expect(sn.TypePuback).Puback; ack.MsgID != 1 || ack.ReturnCode != sn.Accepted {
		t.Fatalf("PUBACK = %s", &ack)
	}
	p.send(pub(sn.QoS0, 0, "q0"))
	// The queue is full now.
	p.send(pub(sn.QoS0, 0, "lost"))
	p.send(pub(sn.QoS1, 2, "late1"))
	p.send(pub(sn.QoS2, 3, "late2"))
	// The reader handles datagrams in order, so if REGACK is the next
	// thing the peer receives, the three above were not acknowledged.
	p.send(&sn.Register{TopicID: 9, MsgID: 50, TopicName: []byte("sn/x")})
	if ack := p.expect(sn.TypeRegack).Regack; ack.MsgID != 50 {
		t.Fatalf("REGACK = %s", &ack)
	}
	if st := c.Stats(); st != (Stats{Pending: 2, Dropped: 1, Unacknowledged: 2}) {
		t.Fatalf("stats %+v", st)
	}

	close(gate)
	for _, want := range []string{"held", "q1", "q0"} {
		if m := col.next(t); string(m.Payload) != want {
			t.Fatalf("delivered %q, want %q", m.Payload, want)
		}
	}

	// The gateway retransmits what was not acknowledged.
	late1, late2 := pub(sn.QoS1, 2, "late1"), pub(sn.QoS2, 3, "late2")
	late1.Dup, late2.Dup = true, true
	p.send(late1)
	if ack := p.expect(sn.TypePuback).Puback; ack.MsgID != 2 || ack.ReturnCode != sn.Accepted {
		t.Fatalf("PUBACK = %s", &ack)
	}
	p.send(late2)
	if rec := p.expect(sn.TypePubrec).Pubrec; rec.MsgID != 3 {
		t.Fatalf("PUBREC = %s", &rec)
	}
	p.send(&sn.Pubrel{MsgID: 3})
	p.expect(sn.TypePubcomp)
	for _, want := range []string{"late1", "late2"} {
		if m := col.next(t); string(m.Payload) != want || !m.Dup {
			t.Fatalf("delivered %+v, want %q (dup)", m, want)
		}
	}
	if st := c.Stats(); st != (Stats{Pending: 0, Dropped: 1, Unacknowledged: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxPendingDefault(t *testing.T) {
	if o := (Options{}).withDefaults(); o.MaxPending != DefaultMaxPending {
		t.Fatalf("MaxPending %d", o.MaxPending)
	}
	if o := (Options{MaxPending: -3}).withDefaults(); o.MaxPending != DefaultMaxPending {
		t.Fatalf("MaxPending %d", o.MaxPending)
	}
}
