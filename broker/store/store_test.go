package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sngate/sngate/broker"
)

// openTest opens a store in dir (a new temp dir if ""), closed at the end
// of the test.
func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// countKeys returns the number of keys in a bucket.
func countKeys(t testing.TB, st *Store, bucket []byte) int {
	t.Helper()
	n := 0
	err := st.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, _ []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustLoad(t testing.TB, st *Store) broker.Snapshot {
	t.Helper()
	snap, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, dir)
	rec := fullSession()
	long := strings.Repeat("L", 40000) // beyond bbolt's key size limit
	longRec := &broker.SessionRecord{ClientID: strings.Repeat("c", 2000), Expiry: time.Hour}
	changes := []broker.Change{
		{Kind: broker.PutSession, ClientID: rec.ClientID, Session: rec},
		{Kind: broker.PutSession, ClientID: longRec.ClientID, Session: longRec},
		{Kind: broker.PutMessage, ClientID: rec.ClientID, Message: broker.StoredMessage{Seq: 2, Msg: fullMessage(), QoS: 1}},
		{Kind: broker.PutMessage, ClientID: rec.ClientID, Message: broker.StoredMessage{Seq: 1, Msg: fullMessage(), QoS: 2, PacketID: 9, Sent: true}},
		{Kind: broker.PutMessage, ClientID: rec.ClientID, Message: broker.StoredMessage{Seq: 3, Msg: fullMessage(), QoS: 1}},
		{Kind: broker.DeleteMessage, ClientID: rec.ClientID, Message: broker.StoredMessage{Seq: 3}},
		{Kind: broker.PutMessage, ClientID: longRec.ClientID, Message: broker.StoredMessage{Seq: 1, Msg: &broker.Message{Topic: long, Payload: []byte("x"), QoS: 1}, QoS: 1}},
		{Kind: broker.PutRetained, Topic: "r/1", Message: broker.StoredMessage{Msg: &broker.Message{Topic: "r/1", Payload: []byte("one"), Retain: true}}},
		{Kind: broker.PutRetained, Topic: long, Message: broker.StoredMessage{Msg: &broker.Message{Topic: long, Payload: []byte("two"), Retain: true}}},
		{Kind: broker.PutRetained, Topic: "r/3", Message: broker.StoredMessage{Msg: &broker.Message{Topic: "r/3", Payload: []byte("three"), Retain: true}}},
		{Kind: broker.DeleteRetained, Topic: "r/3"},
	}
	if err := st.Stage(changes).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openTest(t, dir)
	snap := mustLoad(t, st)
	if len(snap.Sessions) != 2 || len(snap.Retained) != 2 {
		t.Fatalf("loaded %d sessions, %d retained", len(snap.Sessions), len(snap.Retained))
	}
	var got *broker.SessionRecord
	for i := range snap.Sessions {
		if s := &snap.Sessions[i]; s.ClientID == rec.ClientID {
			got = s
		} else if s.ClientID != longRec.ClientID || len(s.Messages) != 1 || s.Messages[0].Msg.Topic != long {
			t.Fatalf("long session %.40q with %d messages", s.ClientID, len(s.Messages))
		}
	}
	if got == nil || len(got.Messages) != 2 || got.Messages[0].Seq != 1 || got.Messages[1].Seq != 2 ||
		got.Messages[0].PacketID != 9 || !got.Messages[0].Sent || got.Messages[0].Msg.Props.ContentType != "text/plain" {
		t.Fatalf("session %+v", got)
	}
	if string(got.FrontendState) != string(rec.FrontendState) || got.Will == nil || len(got.Subscriptions) != 2 {
		t.Fatalf("session fields %+v", got)
	}
	// Deleting a session deletes its messages.
	err := st.Stage([]broker.Change{{Kind: broker.DeleteSession, ClientID: rec.ClientID},
		{Kind: broker.DeleteSession, ClientID: longRec.ClientID}}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n, m := countKeys(t, st, bucketSessions), countKeys(t, st, bucketMessages); n != 0 || m != 0 {
		t.Fatalf("%d sessions and %d messages left", n, m)
	}
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	_, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, FileName)) ||
		!strings.Contains(err.Error(), "data dir locked by another process") {
		t.Fatalf("second open: %v", err)
	}
}

// corrupt writes data as the store file of a new dir and returns the dir.
func corrupt(t *testing.T, data []byte) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func checkCorrupt(t *testing.T, err error, dir string, want error, words ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	t.Log(err)
	msg := err.Error()
	for _, w := range append([]string{filepath.Join(dir, FileName), "--data-dir", "move the file aside"}, words...) {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func TestStoreCorruptFile(t *testing.T) {
	garbage := make([]byte, 16384)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	dir := corrupt(t, garbage)
	_, err := Open(dir, Options{})
	checkCorrupt(t, err, dir, ErrCorrupt)

	dir = corrupt(t, []byte("not a database"))
	_, err = Open(dir, Options{})
	checkCorrupt(t, err, dir, ErrCorrupt)

	// A valid store whose pages are damaged after the meta pages.
	dir = t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var changes []broker.Change
	for i := range 200 {
		topic := fmt.Sprintf("t/%d", i)
		changes = append(changes, broker.Change{Kind: broker.PutRetained, Topic: topic,
			Message: broker.StoredMessage{Msg: &broker.Message{Topic: topic, Payload: make([]byte, 100)}}})
	}
	if err := st.Stage(changes).Wait(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damage := func(pageFlags uint16, from int) {
		t.Helper()
		bad := bytes.Clone(data)
		n := 0
		for p := 2 * 4096; p+4096 <= len(bad); p += 4096 {
			if pageFlags == 0 || binary.LittleEndian.Uint16(bad[p+8:]) == pageFlags {
				for i := p + from; i < p+4096; i++ {
					bad[i] = 0xA5
				}
				n++
			}
		}
		if n == 0 {
			t.Fatalf("no page with flags %#x", pageFlags)
		}
		// A new dir each time: after a panic inside bolt.Open the file
		// stays mapped (and so locked) until the process exits.
		dir := corrupt(t, bad)
		st, err := Open(dir, Options{})
		if err == nil {
			_, err = st.Load()
			st.Close()
		}
		checkCorrupt(t, err, dir, ErrCorrupt)
	}
	damage(0, 0)     // every page after the meta pages
	damage(0x02, 16) // the contents of the leaf pages, headers kept
	damage(0x02, 0)  // the leaf pages
}

// put writes a raw key/value with bbolt, bypassing the store.
func put(t *testing.T, dir string, bucket, k, v []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStoreCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	put(t, dir, bucketSessions, []byte("bad-client"), []byte{recordVersion, 0, 200})
	st = openTest(t, dir)
	_, err = st.Load()
	checkCorrupt(t, err, dir, ErrCorrupt, "bad-client", "truncated")

	dir = t.TempDir()
	put(t, dir, []byte("other-app"), []byte("k"), []byte("v"))
	_, err = Open(dir, Options{})
	checkCorrupt(t, err, dir, ErrCorrupt, "not an sngate store")

	dir = t.TempDir()
	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	put(t, dir, bucketMeta, keyFormat, []byte{FormatVersion + 1})
	_, err = Open(dir, Options{})
	checkCorrupt(t, err, dir, ErrNewerFormat, "newer sngate")
}

func TestStoreOrphanMessagesDeleted(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	put(t, dir, bucketMessages, msgKey(nil, nameKey("gone"), 1),
		encodeStored(nil, &broker.StoredMessage{Msg: &broker.Message{Topic: "t"}, QoS: 1}))
	st = openTest(t, dir)
	if snap := mustLoad(t, st); len(snap.Sessions) != 0 {
		t.Fatalf("sessions %+v", snap.Sessions)
	}
	if n := countKeys(t, st, bucketMessages); n != 0 {
		t.Fatalf("%d orphan messages left", n)
	}
}

func TestStoreGroupCommit(t *testing.T) {
	st := openTest(t, "")
	const writers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				topic := fmt.Sprintf("t/%d/%d", w, i)
				m := &broker.Message{Topic: topic, Payload: []byte("x")}
				if err := st.Stage([]broker.Change{{Kind: broker.PutRetained, Topic: topic,
					Message: broker.StoredMessage{Msg: m}}}).Wait(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := st.Stats()
	if s.Changes != writers*each || s.Commits >= writers*each {
		t.Fatalf("stats %+v: want %d changes in fewer commits", s, writers*each)
	}
	t.Logf("%d changes in %d commits (largest %d)", s.Changes, s.Commits, s.MaxBatch)
	if n := countKeys(t, st, bucketRetained); n != writers*each {
		t.Fatalf("%d retained stored", n)
	}
}

func TestStoreFailureIsSticky(t *testing.T) {
	st := openTest(t, "")
	bad := st.Stage([]broker.Change{{Kind: 99}})
	if err := bad.Wait(); err == nil || !strings.Contains(err.Error(), "unknown change kind") {
		t.Fatalf("bad change: %v", err)
	}
	err := st.Stage([]broker.Change{{Kind: broker.DeleteRetained, Topic: "x"}}).Wait()
	if err == nil {
		t.Fatal("a commit after a failure succeeded")
	}
	if err := st.Flush(); err == nil {
		t.Fatal("Flush after a failure succeeded")
	}
}

func TestStoreClosed(t *testing.T) {
	st, err := Open(t.TempDir(), Options{CommitDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Stage([]broker.Change{{Kind: broker.DeleteRetained, Topic: "x"}})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("change staged before Close: %v", err)
	}
	if err := st.Stage([]broker.Change{{Kind: broker.DeleteRetained, Topic: "x"}}).Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
