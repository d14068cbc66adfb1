package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sngate/sngate/sn"
)

var ctx = context.Background()

func TestConnect(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{ClientID: "sensor-01", KeepAlive: 30 * time.Second, CleanSession: true})
	if c.State() != Disconnected {
		t.Fatalf("state %v before Connect", c.State())
	}
	m := connect(t, p, c)
	if string(m.ClientID) != "sensor-01" || !m.CleanSession || m.Will || m.Duration != 30 || m.ProtocolID != sn.V12 {
		t.Fatalf("CONNECT = %s", m)
	}
	if c.State() != Active {
		t.Fatalf("state %v after Connect", c.State())
	}
}

func TestConnectRejected(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	done := async(func() error { return c.Connect(ctx) })
	p.expect(sn.TypeConnect)
	p.send(&sn.Connack{ReturnCode: sn.RejectedCongestion})
	err := wait(t, done)
	var rc *ReturnCodeError
	if !errors.As(err, &rc) || rc.Code != sn.RejectedCongestion || !errors.Is(err, ErrRejected) {
		t.Fatalf("Connect = %v, want congestion ReturnCodeError", err)
	}
	if c.State() != Disconnected {
		t.Errorf("state %v", c.State())
	}
}

func TestConnectWithWill(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{Will: &Will{Topic: "sn/will", Message: []byte("gone"), QoS: sn.QoS1, Retain: true}})
	done := async(func() error { return c.Connect(ctx) })
	if m := p.expect(sn.TypeConnect); !m.Connect.Will {
		t.Fatalf("CONNECT without Will flag: %s", m)
	}
	p.send(&sn.WillTopicReq{})
	wt := p.expect(sn.TypeWillTopic).WillTopic
	if string(wt.Topic) != "sn/will" || wt.QoS != sn.QoS1 || !wt.Retain {
		t.Fatalf("WILLTOPIC = %s", &wt)
	}
	p.send(&sn.WillMsgReq{})
	if wm := p.expect(sn.TypeWillMsg).WillMsg; string(wm.Msg) != "gone" {
		t.Fatalf("WILLMSG = %s", &wm)
	}
	p.send(&sn.Connack{})
	mustWait(t, done)
}

func TestPublishRegistersOnce(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	connect(t, p, c)

	done := async(func() error { return c.Publish(ctx, Topic("home/temp"), sn.QoS1, true, []byte("21.5")) })
	reg := p.expect(sn.TypeRegister).Register
	if string(reg.TopicName) != "home/temp" || reg.TopicID != 0 {
		t.Fatalf("REGISTER = %s", &reg)
	}
	p.send(&sn.Regack{TopicID: 7, MsgID: reg.MsgID})
	pub := p.expect(sn.TypePublish).Publish
	if pub.TopicID != 7 || pub.QoS != sn.QoS1 || !pub.Retain || pub.Dup || string(pub.Data) != "21.5" || pub.MsgID == 0 || pub.MsgID == reg.MsgID {
		t.Fatalf("PUBLISH = %s", &pub)
	}
	p.send(&sn.Puback{TopicID: 7, MsgID: pub.MsgID})
	mustWait(t, done)

	// The ID is known now: QoS 0 goes out directly.
	mustWait(t, async(func() error { return c.Publish(ctx, Topic("home/temp"), sn.QoS0, false, []byte("x")) }))
	if pub := p.expect(sn.TypePublish).Publish; pub.TopicID != 7 || pub.QoS != sn.QoS0 || pub.MsgID != 0 {
		t.Fatalf("PUBLISH = %s", &pub)
	}
	if id, err := func() (uint16, error) {
		ch := make(chan uint16, 1)
		done := async(func() error { id, err := c.Register(ctx, "other"); ch <- id; return err })
		reg := p.expect(sn.TypeRegister).Register
		p.send(&sn.Regack{TopicID: 8, MsgID: reg.MsgID})
		err := wait(t, done)
		return <-ch, err
	}(); err != nil || id != 8 {
		t.Fatalf("Register = %d, %v", id, err)
	}
}

func TestPublishTopicForms(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{PredefinedTopics: map[string]uint16{"sn/predef/1": 1}})
	cases := []struct {
		ref     TopicRef
		qos     sn.QoS
		tt      sn.TopicIDType
		topicID uint16
		data    string
	}{
		{Short("t1"), sn.QoSMinus1, sn.TopicIDShort, 29745, "21.5"},
		{Predefined(2), sn.QoSMinus1, sn.TopicIDPredefined, 2, "p"},
		{TopicRef{Type: sn.TopicIDPredefined, Name: "sn/predef/1"}, sn.QoS0, sn.TopicIDPredefined, 1, "by name"},
		{TopicID(12), sn.QoS0, sn.TopicIDNormal, 12, "registered"},
		// QoS -1 with a normal name: Paho's long-topic form.
		{Topic("a/b/c"), sn.QoSMinus1, sn.TopicIDNormal, 5, "a/b/c21.5"},
	}
	for _, tc := range cases {
		payload := tc.data
		if tc.tt == sn.TopicIDNormal && tc.qos == sn.QoSMinus1 {
			payload = "21.5"
		}
		if err := c.Publish(ctx, tc.ref, tc.qos, false, []byte(payload)); err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		pub := p.expect(sn.TypePublish).Publish
		if pub.TopicIDType != tc.tt || pub.TopicID != tc.topicID || pub.QoS != tc.qos || string(pub.Data) != tc.data {
			t.Errorf("%s: PUBLISH = %s data %q", tc.ref, &pub, pub.Data)
		}
	}
	for _, bad := range []TopicRef{Short("abc"), {Type: sn.TopicIDPredefined, Name: "unknown"}, {Type: sn.TopicIDReserved}} {
		if err := c.Publish(ctx, bad, sn.QoS0, false, nil); !errors.Is(err, ErrBadTopic) {
			t.Errorf("%s: %v, want ErrBadTopic", bad, err)
		}
	}
	if err := c.Publish(ctx, Short("ab"), 4, false, nil); !errors.Is(err, sn.ErrInvalid) {
		t.Errorf("QoS 4: %v", err)
	}
}

func TestPublishQoS2(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	connect(t, p, c)
	done := async(func() error { return c.Publish(ctx, Predefined(1), sn.QoS2, false, []byte("once")) })
	pub := p.expect(sn.TypePublish).Publish
	if pub.QoS != sn.QoS2 || pub.MsgID == 0 {
		t.Fatalf("PUBLISH = %s", &pub)
	}
	p.send(&sn.Pubrec{MsgID: pub.MsgID})
	if rel := p.expect(sn.TypePubrel).Pubrel; rel.MsgID != pub.MsgID {
		t.Fatalf("PUBREL = %s", &rel)
	}
	p.send(&sn.Pubcomp{MsgID: pub.MsgID})
	mustWait(t, done)
}

func TestRetransmitWithDup(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{RetryInterval: 20 * time.Millisecond, MaxRetries: 5})
	connect(t, p, c)
	done := async(func() error { return c.Publish(ctx, Predefined(1), sn.QoS1, false, []byte("x")) })
	first := p.expect(sn.TypePublish).Publish
	second := p.expect(sn.TypePublish).Publish // first one "lost"
	if first.Dup || !second.Dup || second.MsgID != first.MsgID {
		t.Fatalf("first %s, retransmission %s", &first, &second)
	}
	p.send(&sn.Puback{TopicID: 1, MsgID: first.MsgID})
	mustWait(t, done)

	done = async(func() error { _, _, err := c.Subscribe(ctx, Topic("s"), sn.QoS1); return err })
	sub1 := p.expect(sn.TypeSubscribe).Subscribe
	sub2 := p.expect(sn.TypeSubscribe).Subscribe
	if sub1.Dup || !sub2.Dup || sub1.MsgID != sub2.MsgID {
		t.Fatalf("SUBSCRIBE %s then %s", &sub1, &sub2)
	}
	p.send(&sn.Suback{QoS: sn.QoS1, TopicID: 3, MsgID: sub1.MsgID})
	mustWait(t, done)
}

func TestNoResponse(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{RetryInterval: 5 * time.Millisecond, MaxRetries: 2})
	done := async(func() error { return c.Ping(ctx) })
	for range 3 { // the request and MaxRetries retransmissions
		p.expect(sn.TypePingreq)
	}
	err := wait(t, done)
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("Ping = %v, want ErrNoResponse", err)
	}
	if want := "client: ping: no response from gateway: PINGREQ transmitted 3 time(s)"; err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}
	p.expectNothingQueued()
}

func TestPublishRejectedForgetsTopic(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	connect(t, p, c)
	publish := func() <-chan error {
		return async(func() error { return c.Publish(ctx, Topic("t"), sn.QoS1, false, nil) })
	}
	done := publish()
	reg := p.expect(sn.TypeRegister).Register
	p.send(&sn.Regack{TopicID: 4, MsgID: reg.MsgID})
	pub := p.expect(sn.TypePublish).Publish
	p.send(&sn.Puback{TopicID: 4, MsgID: pub.MsgID, ReturnCode: sn.RejectedInvalidTopicID})
	var rc *ReturnCodeError
	if err := wait(t, done); !errors.As(err, &rc) || rc.Code != sn.RejectedInvalidTopicID {
		t.Fatalf("Publish = %v", err)
	}
	done = publish() // registers again
	reg = p.expect(sn.TypeRegister).Register
	p.send(&sn.Regack{TopicID: 5, MsgID: reg.MsgID, ReturnCode: sn.RejectedCongestion})
	if err := wait(t, done); !errors.As(err, &rc) || rc.Code != sn.RejectedCongestion {
		t.Fatalf("Publish = %v", err)
	}
}

func TestSubscribeAndReceive(t *testing.T) {
	p := newPeer(t)
	col := newCollector()
	c := dial(t, p, Options{OnPublish: col.onPublish, PredefinedTopics: map[string]uint16{"sn/predef/2": 2}})
	connect(t, p, c)

	subscribe := func(ref TopicRef, qos sn.QoS, ack sn.Suback) (*sn.Subscribe, uint16, sn.QoS) {
		t.Helper()
		var id uint16
		var granted sn.QoS
		done := async(func() (err error) { id, granted, err = c.Subscribe(ctx, ref, qos); return err })
		sub := p.expect(sn.TypeSubscribe).Subscribe
		ack.MsgID = sub.MsgID
		p.send(&ack)
		mustWait(t, done)
		return &sub, id, granted
	}
	sub, id, granted := subscribe(Topic("sn/down"), sn.QoS1, sn.Suback{QoS: sn.QoS1, TopicID: 5})
	if string(sub.TopicName) != "sn/down" || sub.QoS != sn.QoS1 || sub.TopicIDType != sn.TopicIDNormal || id != 5 || granted != sn.QoS1 {
		t.Fatalf("SUBSCRIBE %s -> %d %v", sub, id, granted)
	}
	p.send(&sn.Publish{QoS: sn.QoS1, TopicID: 5, MsgID: 77, Data: []byte("hello")})
	if ack := p.expect(sn.TypePuback).Puback; ack.MsgID != 77 || ack.TopicID != 5 || ack.ReturnCode != sn.Accepted {
		t.Fatalf("PUBACK = %s", &ack)
	}
	if m := col.next(t); m.Topic != "sn/down" || string(m.Payload) != "hello" || m.QoS != sn.QoS1 || m.MsgID != 77 {
		t.Fatalf("delivered %+v", m)
	}

	// Wildcard: the gateway registers each topic before publishing on it.
	if _, id, _ := subscribe(Topic("sn/#"), sn.QoS0, sn.Suback{}); id != 0 {
		t.Fatalf("wildcard topic id %d", id)
	}
	p.send(&sn.Register{TopicID: 9, MsgID: 1, TopicName: []byte("sn/wild/a")})
	if ack := p.expect(sn.TypeRegack).Regack; ack.TopicID != 9 || ack.MsgID != 1 || ack.ReturnCode != sn.Accepted {
		t.Fatalf("REGACK = %s", &ack)
	}
	p.send(&sn.Publish{TopicID: 9, Retain: true, Data: []byte("w")})
	if m := col.next(t); m.Topic != "sn/wild/a" || !m.Retain || m.QoS != sn.QoS0 {
		t.Fatalf("delivered %+v", m)
	}

	// Pre-defined (named through Options) and short topics.
	if sub, _, _ := subscribe(Predefined(2), sn.QoS0, sn.Suback{TopicID: 2}); sub.TopicIDType != sn.TopicIDPredefined || sub.TopicID != 2 {
		t.Fatalf("SUBSCRIBE %s", sub)
	}
	if sub, _, _ := subscribe(Short("ab"), sn.QoS0, sn.Suback{TopicID: 0x6162}); sub.TopicIDType != sn.TopicIDShort || sub.TopicID != 0x6162 {
		t.Fatalf("SUBSCRIBE %s", sub)
	}
	p.send(&sn.Publish{TopicIDType: sn.TopicIDPredefined, TopicID: 2, Data: []byte("p")})
	p.send(&sn.Publish{TopicIDType: sn.TopicIDShort, TopicID: 0x6162, Data: []byte("s")})
	if m := col.next(t); m.Topic != "sn/predef/2" || m.TopicIDType != sn.TopicIDPredefined {
		t.Fatalf("delivered %+v", m)
	}
	if m := col.next(t); m.Topic != "ab" || m.TopicIDType != sn.TopicIDShort {
		t.Fatalf("delivered %+v", m)
	}

	// Rejections surface as return codes.
	_, _, err := c.Subscribe(ctx, Topic(""), sn.QoS0)
	if !errors.Is(err, ErrBadTopic) {
		t.Fatalf("empty filter: %v", err)
	}
	done := async(func() error { _, _, err := c.Subscribe(ctx, Predefined(10), sn.QoS0); return err })
	sub = &p.expect(sn.TypeSubscribe).Subscribe
	p.send(&sn.Suback{TopicID: 10, MsgID: sub.MsgID, ReturnCode: sn.RejectedInvalidTopicID})
	if err := wait(t, done); !errors.Is(err, ErrRejected) {
		t.Fatalf("Subscribe = %v", err)
	}
}

func TestIncomingQoS2AndUnknownTopic(t *testing.T) {
	p := newPeer(t)
	col := newCollector()
	c := dial(t, p, Options{OnPublish: col.onPublish})
	connect(t, p, c)

	// Unknown normal topic ID: rejected, not delivered.
	p.send(&sn.Publish{QoS: sn.QoS1, TopicID: 0x0777, MsgID: 1, Data: []byte("?")})
	if ack := p.expect(sn.TypePuback).Puback; ack.ReturnCode != sn.RejectedInvalidTopicID || ack.TopicID != 0x0777 {
		t.Fatalf("PUBACK = %s", &ack)
	}

	pub := &sn.Publish{QoS: sn.QoS2, TopicIDType: sn.TopicIDShort, TopicID: 0x6162, MsgID: 2, Data: []byte("q2")}
	p.send(pub)
	if rec := p.expect(sn.TypePubrec).Pubrec; rec.MsgID != 2 {
		t.Fatalf("PUBREC = %s", &rec)
	}
	pub.Dup = true
	p.send(pub) // our PUBREC "lost": the gateway retransmits
	p.expect(sn.TypePubrec)
	p.send(&sn.Pubrel{MsgID: 2})
	if comp := p.expect(sn.TypePubcomp).Pubcomp; comp.MsgID != 2 {
		t.Fatalf("PUBCOMP = %s", &comp)
	}
	p.send(&sn.Publish{TopicIDType: sn.TopicIDShort, TopicID: 0x6162, Data: []byte("marker")})
	if m := col.next(t); string(m.Payload) != "q2" || m.QoS != sn.QoS2 {
		t.Fatalf("delivered %+v", m)
	}
	// Deliveries are in order, so the duplicate was not delivered if the
	// marker comes next.
	if m := col.next(t); string(m.Payload) != "marker" {
		t.Fatalf("delivered %+v, want the marker", m)
	}
}

func TestUnsubscribe(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	connect(t, p, c)
	done := async(func() error { return c.Unsubscribe(ctx, Topic("sn/x")) })
	u := p.expect(sn.TypeUnsubscribe).Unsubscribe
	if string(u.TopicName) != "sn/x" || u.TopicIDType != sn.TopicIDNormal {
		t.Fatalf("UNSUBSCRIBE = %s", &u)
	}
	p.send(&sn.Unsuback{MsgID: u.MsgID + 1}) // wrong ID: ignored
	p.send(&sn.Unsuback{MsgID: u.MsgID})
	mustWait(t, done)
}

func TestSleepAndWake(t *testing.T) {
	p := newPeer(t)
	col := newCollector()
	c := dial(t, p, Options{ClientID: "sleeper", OnPublish: col.onPublish})
	connect(t, p, c)

	done := async(func() error { return c.Sleep(ctx, 90*time.Second) })
	if d := p.expect(sn.TypeDisconnect).Disconnect; !d.HasDuration || d.Duration != 90 {
		t.Fatalf("DISCONNECT = %s", &d)
	}
	p.send(&sn.Disconnect{})
	mustWait(t, done)
	if c.State() != Asleep {
		t.Fatalf("state %v", c.State())
	}

	var n int
	done = async(func() (err error) { n, err = c.Wake(ctx); return err })
	if ping := p.expect(sn.TypePingreq).Pingreq; string(ping.ClientID) != "sleeper" {
		t.Fatalf("PINGREQ = %s", &ping)
	}
	p.send(&sn.Register{TopicID: 3, MsgID: 10, TopicName: []byte("sn/sleep/a")})
	p.expect(sn.TypeRegack)
	p.send(&sn.Publish{QoS: sn.QoS1, TopicID: 3, MsgID: 11, Data: []byte("one")})
	p.expect(sn.TypePuback)
	p.send(&sn.Publish{TopicID: 3, Data: []byte("two")})
	p.send(&sn.Pingresp{})
	mustWait(t, done)
	if n != 2 || len(col) != 2 {
		t.Fatalf("Wake = %d, %d delivered before it returned", n, len(col))
	}
	if a, b := col.next(t), col.next(t); a.Topic != "sn/sleep/a" || string(a.Payload) != "one" || string(b.Payload) != "two" {
		t.Fatalf("delivered %+v, %+v", a, b)
	}
	if c.State() != Asleep {
		t.Fatalf("state %v after wake", c.State())
	}
}

// TestWakeFlushOutlastsRetryInterval runs in a synctest bubble over an
// in-memory pipe, so its timing is exact: the gateway's flush takes twice
// RetryInterval, and Wake must neither retransmit nor give up, because
// every arriving message restarts the timer.
func TestWakeFlushOutlastsRetryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc, gw := net.Pipe()
		defer gw.Close()
		c := New(cc, Options{ClientID: "slow", RetryInterval: 10 * time.Second, MaxRetries: -1, PingInterval: -1})
		defer c.Close()
		done := async(func() error { _, err := c.Wake(ctx); return err })
		buf := make([]byte, 512)
		n, err := gw.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], []byte("\x06\x16slow")) {
			t.Fatalf("read %x, %v; want PINGREQ(slow)", buf[:n], err)
		}
		start := time.Now()
		for i := range 5 {
			frame, _ := (&sn.Publish{TopicIDType: sn.TopicIDShort, TopicID: 0x6162, Data: []byte{byte(i)}}).Append(nil)
			if _, err := gw.Write(frame); err != nil {
				t.Fatal(err)
			}
			time.Sleep(4 * time.Second) // a slow radio
		}
		if _, err := gw.Write([]byte{2, 0x17}); err != nil { // PINGRESP
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Wake after a %v flush: %v", time.Since(start), err)
		}
	})
}

func TestWillUpdates(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	connect(t, p, c)
	done := async(func() error { return c.UpdateWillTopic(ctx, "sn/will/new", sn.QoS1, true) })
	if u := p.expect(sn.TypeWillTopicUpd).WillTopicUpd; string(u.Topic) != "sn/will/new" || u.QoS != sn.QoS1 || !u.Retain {
		t.Fatalf("WILLTOPICUPD = %s", &u)
	}
	p.send(&sn.WillTopicResp{ReturnCode: sn.RejectedNotSupported})
	var rc *ReturnCodeError
	if err := wait(t, done); !errors.As(err, &rc) || rc.Code != sn.RejectedNotSupported {
		t.Fatalf("UpdateWillTopic = %v", err)
	}
	done = async(func() error { return c.UpdateWillTopic(ctx, "", 0, false) })
	if u := p.expect(sn.TypeWillTopicUpd).WillTopicUpd; len(u.Topic) != 0 {
		t.Fatalf("delete: WILLTOPICUPD = %s", &u)
	}
	p.send(&sn.WillTopicResp{})
	mustWait(t, done)
	done = async(func() error { return c.UpdateWillMsg(ctx, []byte("bye")) })
	if u := p.expect(sn.TypeWillMsgUpd).WillMsgUpd; string(u.Msg) != "bye" {
		t.Fatalf("WILLMSGUPD = %s", &u)
	}
	p.send(&sn.WillMsgResp{})
	mustWait(t, done)
}

func TestDisconnect(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	connect(t, p, c)
	done := async(func() error { return c.Disconnect(ctx) })
	if d := p.expect(sn.TypeDisconnect).Disconnect; d.HasDuration {
		t.Fatalf("DISCONNECT = %s", &d)
	}
	p.send(&sn.Disconnect{})
	mustWait(t, done)
	if c.State() != Disconnected {
		t.Fatalf("state %v", c.State())
	}
	connect(t, p, c) // the client may connect again
}

func TestGatewayDisconnectAbortsRequest(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	connect(t, p, c)
	done := async(func() error { return c.Publish(ctx, Predefined(1), sn.QoS1, false, nil) })
	p.expect(sn.TypePublish)
	p.send(&sn.Disconnect{})
	if err := wait(t, done); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Publish = %v", err)
	}
	if c.State() != Disconnected {
		t.Fatalf("state %v", c.State())
	}
}

func TestKeepAlivePing(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{PingInterval: 10 * time.Millisecond})
	connect(t, p, c)
	for range 2 {
		if ping := p.expect(sn.TypePingreq).Pingreq; len(ping.ClientID) != 0 {
			t.Fatalf("keep-alive PINGREQ = %s", &ping)
		}
		p.send(&sn.Pingresp{})
	}
}

func TestGatewayLost(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{PingInterval: 5 * time.Millisecond, RetryInterval: 5 * time.Millisecond, MaxRetries: 1})
	connect(t, p, c)
	p.expect(sn.TypePingreq)
	p.expect(sn.TypePingreq) // the retransmission, also unanswered
	select {
	case <-c.Done():
	case <-time.After(hangGuard):
		t.Fatal("client did not give up")
	}
	if err := c.Err(); !errors.Is(err, ErrGatewayLost) {
		t.Fatalf("Err = %v", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrGatewayLost) {
		t.Fatalf("Ping after loss = %v", err)
	}
}

func TestSearchGWAndDiscover(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	var info sn.GWInfo
	done := async(func() (err error) { info, err = c.SearchGW(ctx, 1); return err })
	if s := p.expect(sn.TypeSearchGW).SearchGW; s.Radius != 1 {
		t.Fatalf("SEARCHGW = %s", &s)
	}
	p.send(&sn.GWInfo{GwID: 3})
	mustWait(t, done)
	if info.GwID != 3 {
		t.Fatalf("GWINFO = %s", &info)
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var gw Gateway
	done = async(func() (err error) {
		gw, err = Discover(ctx, pc, p.conn.LocalAddr(), 2, time.Minute)
		return err
	})
	p.expect(sn.TypeSearchGW)
	p.send(&sn.GWInfo{GwID: 9, GwAdd: []byte{1, 2}})
	mustWait(t, done)
	if gw.GwID != 9 || !bytes.Equal(gw.GwAdd, []byte{1, 2}) || gw.Addr.String() != p.addr() || gw.Via != sn.TypeGWInfo {
		t.Fatalf("Discover = %+v", gw)
	}

	cctx, cancel := context.WithCancel(ctx)
	done = async(func() error { _, err := Discover(cctx, pc, p.conn.LocalAddr(), 0, time.Hour); return err })
	p.expect(sn.TypeSearchGW)
	cancel()
	if err := wait(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Discover = %v", err)
	}
}

func TestCloseAndCancel(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	cctx, cancel := context.WithCancel(ctx)
	done := async(func() error { return c.Ping(cctx) })
	p.expect(sn.TypePingreq)
	cancel()
	if err := wait(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Ping = %v", err)
	}
	done = async(func() error { return c.Ping(ctx) })
	p.expect(sn.TypePingreq)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping during Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Send(&sn.Pingreq{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err = %v", c.Err())
	}
}

func TestConcurrentRequests(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	connect(t, p, c)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Publish(ctx, Predefined(1), sn.QoS1, false, []byte(fmt.Sprint(i)))
		}()
	}
	seen := map[uint16]bool{}
	for range n {
		// One request at a time: each PUBLISH is acked before the next.
		pub := p.expect(sn.TypePublish).Publish
		if seen[pub.MsgID] {
			t.Fatalf("msg id %d reused", pub.MsgID)
		}
		seen[pub.MsgID] = true
		p.send(&sn.Puback{TopicID: 1, MsgID: pub.MsgID})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestCallbackMayCallClient(t *testing.T) {
	p := newPeer(t)
	got := make(chan error, 1)
	var c *Client
	c = dial(t, p, Options{OnPublish: func(m Message) {
		got <- c.Publish(ctx, Short("ec"), sn.QoS0, false, m.Payload) // echo from the callback
	}})
	connect(t, p, c)
	p.send(&sn.Publish{TopicIDType: sn.TopicIDShort, TopicID: 0x6162, Data: []byte("ping")})
	if echo := p.expect(sn.TypePublish).Publish; string(echo.Data) != "ping" {
		t.Fatalf("echo = %s", &echo)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestSendRaw(t *testing.T) {
	p := newPeer(t)
	c := dial(t, p, Options{})
	if err := c.Send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDPredefined, TopicID: 1, Data: []byte("raw")}); err != nil {
		t.Fatal(err)
	}
	if pub := p.expect(sn.TypePublish).Publish; string(pub.Data) != "raw" {
		t.Fatalf("PUBLISH = %s", &pub)
	}
	if err := c.Send(&sn.Connect{}); !errors.Is(err, sn.ErrEmptyClientID) {
		t.Fatalf("Send(invalid) = %v", err)
	}
	if err := (&Client{opts: Options{}}).Connect(ctx); !errors.Is(err, sn.ErrEmptyClientID) {
		t.Fatalf("Connect without ClientID = %v", err)
	}
}

func TestDurationSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want uint16
	}{{0, 0}, {-time.Second, 0}, {time.Millisecond, 1}, {90 * time.Second, 90}, {100 * time.Hour, 0xFFFF}} {
		if got := durationSeconds(c.d); got != c.want {
			t.Errorf("durationSeconds(%v) = %d, want %d", c.d, got, c.want)
		}
	}
	o := Options{}.withDefaults()
	if o.KeepAlive != DefaultKeepAlive || o.PingInterval != 45*time.Second || o.MaxRetries != DefaultMaxRetries || o.RetryInterval != DefaultRetryInterval {
		t.Errorf("defaults %+v", o)
	}
	if o := (Options{MaxRetries: -1, KeepAlive: -1}).withDefaults(); o.MaxRetries != 0 || o.KeepAlive != 0 || o.keepAliveSeconds() != 0 {
		t.Errorf("negative options %+v", o)
	}
}
