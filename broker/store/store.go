// Package store is sngate's persistence: a broker.Store on an embedded
// bbolt database file (FileName) in the data directory. It keeps what
// must survive a restart or a crash: persistent sessions (MQTT and
// MQTT-SN) with their subscriptions, will, expiry and front-end state (the
// MQTT-SN topic-ID registrations), their QoS 1/2 messages queued or in
// flight (sleeping MQTT-SN clients' queues included), and retained
// messages.
//
// QoS 0 messages queued for a session (MQTT-SN sleeping clients queue
// them) are not stored: QoS 0 is "at most once", and writing them would
// cost a disk sync per message for no promise. They are lost in a crash
// or a restart.
//
// Durability: the broker stages its changes (Stage) and waits (Commit.Wait)
// before it acknowledges anything; Wait returns once the commit is
// fsynced. One writer goroutine group-commits: the batches staged while a
// commit runs are written together in the next bbolt transaction, so
// concurrent publishers share each disk sync.
//
// Usage (sngate serve):
//
//	st, err := store.Open(dataDir, store.Options{Logger: log})
//	if err != nil {
//		return err // corrupt, locked by another process, unreadable: the message says how to recover
//	}
//	defer st.Close() // after the broker's Close
//	srv, err := broker.New(cfg, broker.WithStore(st))
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sngate/sngate/broker"
)

// FileName is the database file's name in the data directory.
const FileName = "sngate.db"

// FormatVersion is the store layout this build writes and reads; a file
// with a newer one is refused (written by a newer sngate).
const FormatVersion = 1

// DefaultLockTimeout is how long Open waits for the file lock of another
// process by default.
const DefaultLockTimeout = time.Second

// Errors of Open and Stage. Open's errors wrap them with the file name,
// the cause and the way out; test them with errors.Is.
var (
	// ErrLocked: another process (another sngate on the same data dir)
	// holds the database.
	ErrLocked = errors.New("data dir locked by another process")
	// ErrCorrupt: the file is not a readable sngate store.
	ErrCorrupt = errors.New("store corrupt or unreadable")
	// ErrNewerFormat: the file was written by a newer sngate.
	ErrNewerFormat = errors.New("store written by a newer sngate")
	// ErrClosed: Stage after Close.
	ErrClosed = errors.New("store closed")
)

// recovery is appended to the errors of a store that cannot be used.
const recovery = "to start anyway, point --data-dir at another directory, or move the file aside " +
	"(sngate then starts with an empty store; keep the old file for inspection)"

// Bucket names.
var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions")
	bucketMessages = []byte("messages")
	bucketRetained = []byte("retained")
	keyFormat      = []byte("format")
)

// Options configures Open. The zero value is the production setting.
type Options struct {
	// LockTimeout bounds the wait for another process's lock on the file
	// (0: DefaultLockTimeout).
	LockTimeout time.Duration
	// CommitDelay makes the writer wait this long after the first staged
	// change before it commits, to gather more per disk sync. 0 (the
	// default) commits at once; batches still form while a commit runs.
	CommitDelay time.Duration
	// SkipCheck skips the integrity check of the whole file at Open (its
	// cost grows with the file; the check is on by default).
	SkipCheck bool
	// NoSync skips fsync: faster, and not durable. For tests only.
	NoSync bool
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// Store is a broker.Store on a bbolt file. Its methods are safe for
// concurrent use.
type Store struct {
	db    *bolt.DB
	path  string
	log   *slog.Logger
	delay time.Duration

	mu      sync.Mutex
	cur     *commit // the batch being gathered
	last    *commit // the commit running, or the last one
	spare   []broker.Change
	failed  *commit // set after a failed commit: every later one fails
	closing bool

	wake    chan struct{}
	quit    chan struct{}
	stopped chan struct{}

	loaded   bool
	commits  atomic.Uint64
	changes  atomic.Uint64
	syncNs   atomic.Int64
	maxBatch atomic.Int64
}

// Stats are the store's counters.
type Stats struct {
	Commits   uint64        // bbolt transactions committed
	Changes   uint64        // changes written
	CommitDur time.Duration // total time spent committing (writes and fsyncs)
	MaxBatch  int           // largest number of changes in one commit
	FileSize  int64         // size of the database file
}

// Open opens (or creates) the store in dir, creating dir if needed. It
// checks the file (format, integrity) and fails with an error that names
// the file, the cause and the way out when the store is locked by another
// process, corrupt or unreadable: it never starts empty over a file it
// cannot read.
func Open(dir string, opts Options) (st *Store, err error) {
	if dir == "" {
		return nil, errors.New("store: empty data dir")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	// file is closed if bolt.Open panics; it then stays mapped (and so
	// locked) until the process exits, which serve does on this error.
	var file *os.File
	defer func() {
		if r := recover(); r != nil { // bbolt panics on some corrupt pages
			if file != nil {
				_ = file.Close()
			}
			err = fmt.Errorf("store %s: %w: %v; %s", path, ErrCorrupt, r, recovery)
			st = nil
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true)) // a bad page offset faults: make it a panic
	// The freelist is synced (NoFreelistSync false): without it bbolt
	// rebuilds the freelist at open by walking the pages in a goroutine of
	// its own, where a corrupt page is an unrecoverable panic.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      timeout,
		FreelistType: bolt.FreelistMapType,
		NoSync:       opts.NoSync,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("store %s: %w (is another sngate running with this --data-dir?)", path, ErrLocked)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
			errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
			return nil, fmt.Errorf("store %s: %w: %v; %s", path, ErrCorrupt, err, recovery)
		case errors.Is(err, os.ErrPermission):
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
		return nil, fmt.Errorf("store %s: %w: %v; %s", path, ErrCorrupt, err, recovery)
	}
	st = &Store{db: db, path: path, log: opts.Logger, delay: opts.CommitDelay,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}
	if st.log == nil {
		st.log = slog.New(slog.DiscardHandler)
	}
	if err := st.prepare(!opts.SkipCheck); err != nil {
		_ = db.Close()
		return nil, err
	}
	st.cur = newCommit(nil)
	go st.writer()
	return st, nil
}

// prepare checks the file's format and integrity, and initialises a new
// file.
func (st *Store) prepare(check bool) error {
	fresh := false
	err := st.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("%w: not an sngate store (no %q bucket)", ErrCorrupt, bucketMeta)
			}
			fresh = true
			return nil
		}
		v := meta.Get(keyFormat)
		if len(v) != 1 || v[0] == 0 {
			return fmt.Errorf("%w: bad format record %x", ErrCorrupt, v)
		}
		if v[0] > FormatVersion {
			return fmt.Errorf("%w (format %d; this build reads up to %d)", ErrNewerFormat, v[0], FormatVersion)
		}
		for _, name := range [][]byte{bucketSessions, bucketMessages, bucketRetained} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: bucket %q missing", ErrCorrupt, name)
			}
		}
		if !check {
			return nil
		}
		var errs []error
		for e := range tx.Check() {
			if len(errs) < 5 {
				errs = append(errs, e)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: integrity check: %w", ErrCorrupt, errors.Join(errs...))
		}
		return nil
	})
	if err == nil && fresh {
		err = st.db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if err := meta.Put(keyFormat, []byte{FormatVersion}); err != nil {
				return err
			}
			for _, name := range [][]byte{bucketSessions, bucketMessages, bucketRetained} {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store %s: initialise: %w", st.path, err)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNewerFormat):
		return fmt.Errorf("store %s: %w; run the newer sngate, or %s", st.path, err, recovery)
	}
	return fmt.Errorf("store %s: %w; %s", st.path, err, recovery)
}

// Path returns the database file's path.
func (st *Store) Path() string { return st.path }

// Stats returns the store's counters.
func (st *Store) Stats() Stats {
	s := Stats{Commits: st.commits.Load(), Changes: st.changes.Load(),
		CommitDur: time.Duration(st.syncNs.Load()), MaxBatch: int(st.maxBatch.Load())}
	if fi, err := os.Stat(st.path); err == nil {
		s.FileSize = fi.Size()
	}
	return s
}

// Load implements broker.Store: it reads the whole stored state. A record
// it cannot decode fails the load with an error naming the file and the
// record (it never skips state it cannot read). Messages whose session is
// gone (left by a session deleted while its messages were being written)
// are deleted.
func (st *Store) Load() (snap broker.Snapshot, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store %s: %w: %v; %s", st.path, ErrCorrupt, r, recovery)
		}
	}()
	var orphans [][]byte
	err = st.db.View(func(tx *bolt.Tx) error {
		var lerr error
		snap, orphans, lerr = load(tx)
		return lerr
	})
	if err != nil {
		return broker.Snapshot{}, fmt.Errorf("store %s: %w: %w; %s", st.path, ErrCorrupt, err, recovery)
	}
	if len(orphans) > 0 {
		err := st.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMessages)
			for _, k := range orphans {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return broker.Snapshot{}, fmt.Errorf("store %s: delete orphan messages: %w", st.path, err)
		}
		st.log.Info("deleted messages of ended sessions", "file", st.path, "count", len(orphans))
	}
	nmsg := 0
	for i := range snap.Sessions {
		nmsg += len(snap.Sessions[i].Messages)
	}
	st.log.Info("store loaded", "file", st.path, "sessions", len(snap.Sessions), "messages", nmsg,
		"retained", len(snap.Retained))
	return snap, nil
}

// load decodes the buckets of tx.
func load(tx *bolt.Tx) (snap broker.Snapshot, orphans [][]byte, err error) {
	sessions, messages, retained := tx.Bucket(bucketSessions), tx.Bucket(bucketMessages), tx.Bucket(bucketRetained)
	if sessions == nil || messages == nil || retained == nil {
		return snap, nil, errors.New("buckets missing")
	}
	index := make(map[string]int)
	err = sessions.ForEach(func(k, v []byte) error {
		rec, err := decodeSession(v)
		if err != nil {
			return fmt.Errorf("session record %q: %w", printable(k), err)
		}
		if string(nameKey(rec.ClientID)) != string(k) {
			return fmt.Errorf("session record %q holds client ID %q", printable(k), printable([]byte(rec.ClientID)))
		}
		index[string(k)] = len(snap.Sessions)
		snap.Sessions = append(snap.Sessions, *rec)
		return nil
	})
	if err != nil {
		return snap, nil, err
	}
	err = messages.ForEach(func(k, v []byte) error {
		sk, seq, err := splitMsgKey(k)
		if err != nil {
			return err
		}
		i, ok := index[string(sk)]
		if !ok {
			orphans = append(orphans, append([]byte(nil), k...))
			return nil
		}
		sm, err := decodeStored(v)
		if err != nil {
			return fmt.Errorf("message %d of session %q: %w", seq, printable(sk), err)
		}
		sm.Seq = seq
		snap.Sessions[i].Messages = append(snap.Sessions[i].Messages, sm)
		return nil
	})
	if err != nil {
		return snap, nil, err
	}
	err = retained.ForEach(func(k, v []byte) error {
		m, err := decodeRetained(v)
		if err != nil {
			return fmt.Errorf("retained message %q: %w", printable(k), err)
		}
		if string(nameKey(m.Topic)) != string(k) {
			return fmt.Errorf("retained record %q holds topic %q", printable(k), printable([]byte(m.Topic)))
		}
		snap.Retained = append(snap.Retained, m)
		return nil
	})
	return snap, orphans, err
}

// printable shortens a key for an error message.
func printable(k []byte) string {
	if len(k) > 64 {
		return fmt.Sprintf("%x...", k[:32])
	}
	return string(k)
}

// Close commits what is staged, stops the writer and closes the file.
// Stage fails with ErrClosed afterwards. Close the broker first.
func (st *Store) Close() error {
	st.mu.Lock()
	if st.closing {
		st.mu.Unlock()
		<-st.stopped
		return nil
	}
	st.closing = true
	st.mu.Unlock()
	close(st.quit)
	<-st.stopped
	if err := st.db.Close(); err != nil {
		return fmt.Errorf("store %s: close: %w", st.path, err)
	}
	return nil
}
