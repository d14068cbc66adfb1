package broker

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is a test Store that applies changes to maps, the way a real
// store would, so that a second server can be restored from it.
type memStore struct {
	mu       sync.Mutex
	sessions map[string]*SessionRecord
	msgs     map[string]map[uint64]StoredMessage
	retained map[string]*Message
	applies  int
}

func newMemStore() *memStore {
	return &memStore{sessions: map[string]*SessionRecord{}, msgs: map[string]map[uint64]StoredMessage{},
		retained: map[string]*Message{}}
}

func (m *memStore) Load() (Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var snap Snapshot
	for id, rec := range m.sessions {
		r := *rec
		for _, sm := range m.msgs[id] {
			r.Messages = append(r.Messages, sm)
		}
		slices.SortFunc(r.Messages, func(a, b StoredMessage) int { return int(a.Seq) - int(b.Seq) })
		snap.Sessions = append(snap.Sessions, r)
	}
	for _, msg := range m.retained {
		snap.Retained = append(snap.Retained, msg)
	}
	return snap, nil
}

// Stage applies batch at once: the memory store is "durable" immediately.
func (m *memStore) Stage(batch []Change) Commit {
	_ = m.Apply(batch)
	return doneCommit{}
}

func (m *memStore) Apply(batch []Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applies++
	for _, c := range batch {
		switch c.Kind {
		case PutSession:
			m.sessions[c.ClientID] = c.Session
		case DeleteSession:
			delete(m.sessions, c.ClientID)
			delete(m.msgs, c.ClientID)
		case PutRetained:
			m.retained[c.Topic] = c.Message.Msg
		case DeleteRetained:
			delete(m.retained, c.Topic)
		case PutMessage:
			if m.msgs[c.ClientID] == nil {
				m.msgs[c.ClientID] = map[uint64]StoredMessage{}
			}
			old, ok := m.msgs[c.ClientID][c.Message.Seq]
			if ok && c.Message.Msg == nil {
				c.Message.Msg = old.Msg
			}
			m.msgs[c.ClientID][c.Message.Seq] = c.Message
		case DeleteMessage:
			delete(m.msgs[c.ClientID], c.Message.Seq)
		}
	}
	return nil
}

func (m *memStore) count(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs[id])
}

// durableSink checks that every QoS 1/2 message it gets is already in
// the store.
type durableSink struct {
	*testSink
	st        *memStore
	id        string
	violation bool
}

func (d *durableSink) Deliver(dl Delivery) bool {
	if dl.QoS > 0 && !dl.Dup && !dl.Release {
		d.st.mu.Lock()
		found := false
		for _, sm := range d.st.msgs[d.id] {
			found = found || sm.Msg == dl.Msg
		}
		d.st.mu.Unlock()
		if !found {
			d.violation = true
		}
	}
	return d.testSink.Deliver(dl)
}

func TestStoreSeamAndRestore(t *testing.T) {
	st := newMemStore()
	clk := newClock()
	srv, err := New(testConfig(), WithStore(st), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	ds := &durableSink{testSink: newSink(), st: st, id: "c"}
	s, _, err := srv.Connect(ConnectInfo{ClientID: "c", SessionExpiry: time.Hour,
		Will: &Will{Msg: Message{Topic: "will/c"}, Delay: time.Minute}}, ds)
	if err != nil {
		t.Fatal(err)
	}
	s.Resume()
	sub(t, s, Subscription{Filter: "a/#", QoS: 2, ID: 3}, subQ("b", 0))
	if rec := st.sessions["c"]; rec == nil || len(rec.Subscriptions) != 2 || rec.Will == nil {
		t.Fatalf("session record %+v", rec)
	}
	p, _ := conn(t, srv, "p")
	pub(t, p, "a/1", "one", 1, false)
	pub(t, p, "a/2", "two", 2, false)
	pub(t, p, "b", "zero", 0, false) // QoS 0: not stored
	pub(t, p, "r", "kept", 0, true)
	d1, d2 := ds.next(t), ds.next(t)
	ds.next(t)
	if ds.violation {
		t.Fatal("a message was delivered before it was durable")
	}
	if st.count("c") != 2 {
		t.Fatalf("stored %d messages", st.count("c"))
	}
	s.Ack(d1.PacketID)
	s.Received(d2.PacketID)
	if st.count("c") != 1 || !st.msgs["c"][2].Released {
		t.Fatalf("after ack: %+v", st.msgs["c"])
	}
	s.Disconnect(true)
	pub(t, p, "a/3", "three", 1, false) // queued offline
	srv.Close()
	if st.sessions["c"] == nil || st.retained["r"] == nil {
		t.Fatal("Close deleted persistent state")
	}

	// A new server restores the session, its subscriptions and messages.
	srv2 := newServer(t, testConfig(), WithStore(st), WithClock(clk))
	if st := srv2.Stats(); st.Sessions != 1 || st.Subscriptions != 2 || st.Retained != 1 {
		t.Fatalf("restored stats %+v", st)
	}
	sink := newSink()
	s2, present, err := srv2.Connect(ConnectInfo{ClientID: "c", SessionExpiry: time.Hour}, sink)
	if err != nil || !present {
		t.Fatalf("present %v err %v", present, err)
	}
	s2.Resume()
	r := sink.next(t)
	if !r.Release || r.PacketID != d2.PacketID {
		t.Fatalf("want PUBREL resend first, got %+v", r)
	}
	n := sink.next(t)
	if string(n.Msg.Payload) != "three" || !slices.Equal(n.SubscriptionIDs, []uint32{3}) {
		t.Fatalf("queued message %+v", n)
	}
	s2.Complete(r.PacketID)
	s2.Ack(n.PacketID)
	if st.count("c") != 0 {
		t.Errorf("store keeps %d messages", st.count("c"))
	}
	// Ending the session deletes it from the store.
	s2.SetSessionExpiry(0)
	s2.Disconnect(false)
	if st.sessions["c"] != nil {
		t.Error("ended session still stored")
	}
}

func TestFrontendState(t *testing.T) {
	st := newMemStore()
	srv := newServer(t, testConfig(), WithStore(st))
	s, _ := conn(t, srv, "c", persistent)
	if err := s.SetFrontendState([]byte{1, 2, 3}).Wait(); err != nil {
		t.Fatal(err)
	}
	if got := st.sessions["c"].FrontendState; string(got) != "\x01\x02\x03" {
		t.Fatalf("stored state %v", got)
	}
	s.Disconnect(false)
	if err := s.SetFrontendState([]byte{9}).Wait(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("on a closed attachment: %v", err)
	}
	s, _ = conn(t, srv, "c", resumeOld)
	if got := s.FrontendState(); string(got) != "\x01\x02\x03" {
		t.Fatalf("resumed state %v", got)
	}
	srv.Close()

	srv2 := newServer(t, testConfig(), WithStore(st))
	s2, _ := conn(t, srv2, "c", resumeOld)
	if got := s2.FrontendState(); string(got) != "\x01\x02\x03" {
		t.Fatalf("restored state %v", got)
	}
	s2.Disconnect(false)
	s3, _ := conn(t, srv2, "c") // clean start: a new session
	if got := s3.FrontendState(); got != nil {
		t.Fatalf("clean session state %v", got)
	}
	// A session that is not persistent keeps its state in memory only.
	if err := s3.SetFrontendState([]byte{7}).Wait(); err != nil || string(s3.FrontendState()) != "\x07" {
		t.Fatalf("clean session: %v %v", err, s3.FrontendState())
	}
	if st.sessions["c"] != nil {
		t.Fatal("clean session stored")
	}
}

// pidSink checks that each first delivery of a stored QoS 2 message finds
// its packet ID already in the store.
type pidSink struct {
	*testSink
	st        *memStore
	id        string
	violation atomic.Bool
}

func (p *pidSink) Deliver(d Delivery) bool {
	if d.QoS == 2 && !d.Dup && !d.Release {
		p.st.mu.Lock()
		found := false
		for _, sm := range p.st.msgs[p.id] {
			found = found || (sm.Msg == d.Msg && sm.PacketID == d.PacketID && sm.Sent)
		}
		p.st.mu.Unlock()
		if !found {
			p.violation.Store(true)
		}
	}
	return p.testSink.Deliver(d)
}

// A QoS 2 message is sent under a packet ID only once that ID is durable
// (else a crash would make the broker send it again as a new message), and
// the wait keeps the delivery order.
func TestQoS2PacketIDDurableFirst(t *testing.T) {
	st := newMemStore()
	srv := newServer(t, testConfig(), WithStore(st))
	ps := &pidSink{testSink: newSink(), st: st, id: "sub"}
	s, _, err := srv.Connect(ConnectInfo{ClientID: "sub", SessionExpiry: NoExpiry}, ps)
	if err != nil {
		t.Fatal(err)
	}
	s.Resume()
	sub(t, s, subQ("t/#", 2))
	p, _ := conn(t, srv, "p")
	for i := range 20 {
		pub(t, p, fmt.Sprintf("t/%d", i), "x", byte(1+i%2), false)
	}
	for i := range 20 {
		d := ps.next(t)
		if d.Msg.Topic != fmt.Sprintf("t/%d", i) {
			t.Fatalf("delivery %d: %s", i, d.Msg.Topic)
		}
		if d.QoS == 2 {
			s.Received(d.PacketID)
			s.Complete(d.PacketID)
		} else {
			s.Ack(d.PacketID)
		}
	}
	if ps.violation.Load() {
		t.Fatal("a QoS 2 message was sent before its packet ID was durable")
	}
	if n := st.count("sub"); n != 0 {
		t.Fatalf("%d messages left in the store", n)
	}
}
