package store

import (
	"bytes"
	"fmt"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sngate/sngate/broker"
)

// commit is one group commit: the batches staged between two commits,
// written in one bbolt transaction. It implements broker.Commit.
type commit struct {
	changes []broker.Change
	done    chan struct{}
	err     error
}

func newCommit(buf []broker.Change) *commit {
	return &commit{changes: buf[:0], done: make(chan struct{})}
}

// Wait implements broker.Commit.
func (c *commit) Wait() error {
	<-c.done
	return c.err
}

// failedCommit returns a commit that has already ended with err (nil: a
// commit that is already durable).
func failedCommit(err error) *commit {
	c := &commit{done: make(chan struct{}), err: err}
	close(c.done)
	return c
}

// Stage implements broker.Store: it adds batch to the commit being
// gathered and wakes the writer. It never blocks on I/O.
// An empty batch returns the commit that makes everything staged so far
// durable (see Flush).
func (st *Store) Stage(batch []broker.Change) broker.Commit {
	st.mu.Lock()
	switch {
	case st.failed != nil:
		c := st.failed
		st.mu.Unlock()
		return c
	case st.closing:
		st.mu.Unlock()
		return failedCommit(fmt.Errorf("store %s: %w", st.path, ErrClosed))
	case len(batch) == 0 && len(st.cur.changes) == 0:
		c := st.last // the commit running, or the last one: nil before the first
		st.mu.Unlock()
		if c == nil {
			return failedCommit(nil)
		}
		return c
	}
	c := st.cur
	c.changes = append(c.changes, batch...)
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
	return c
}

// writer is the goroutine that commits: each time it is woken it takes
// the gathered batch (everything staged since its last commit) and writes
// it in one transaction, then releases the waiters. While it commits, new
// batches gather: that is the group commit.
func (st *Store) writer() {
	defer close(st.stopped)
	debug.SetPanicOnFault(true) // a fault on a corrupt page fails the commit (see txWriter.commit)
	var w txWriter
	var timer *time.Timer
	for {
		quitting := false
		select {
		case <-st.wake:
		case <-st.quit:
			quitting = true
		}
		if st.delay > 0 && !quitting {
			if timer == nil {
				timer = time.NewTimer(st.delay)
			} else {
				timer.Reset(st.delay)
			}
			select {
			case <-timer.C:
			case <-st.quit:
				quitting = true
			}
		}
		st.mu.Lock()
		c := st.cur
		swapped := len(c.changes) > 0
		if swapped {
			st.cur = newCommit(st.spare)
			st.spare = nil
			st.last = c
		}
		failed := st.failed
		st.mu.Unlock()
		if swapped {
			st.run(&w, c, failed)
		}
		if quitting {
			st.mu.Lock()
			c = st.cur
			st.cur = newCommit(nil)
			st.last = c
			if st.failed == nil {
				st.failed = failedCommit(fmt.Errorf("store %s: %w", st.path, ErrClosed))
			}
			st.mu.Unlock()
			if len(c.changes) > 0 {
				st.run(&w, c, nil)
			} else {
				close(c.done)
			}
			return
		}
	}
}

// run writes commit c (or fails it with the earlier failure) and releases
// its waiters.
func (st *Store) run(w *txWriter, c *commit, failed *commit) {
	if failed != nil {
		c.err = failed.err
	} else {
		start := time.Now()
		err := w.commit(st.db, c.changes)
		st.syncNs.Add(int64(time.Since(start)))
		if err != nil {
			err = fmt.Errorf("store %s: commit: %w", st.path, err)
			st.log.Error("store commit failed; later writes fail too until restart", "err", err)
			st.mu.Lock()
			if st.failed == nil {
				st.failed = failedCommit(err)
			}
			st.mu.Unlock()
		} else {
			st.commits.Add(1)
			st.changes.Add(uint64(len(c.changes)))
			if n := int64(len(c.changes)); n > st.maxBatch.Load() {
				st.maxBatch.Store(n)
			}
		}
		c.err = err
	}
	close(c.done)
	clear(c.changes)
	if cap(c.changes) <= 4096 {
		st.mu.Lock()
		st.spare = c.changes[:0]
		st.mu.Unlock()
	}
	c.changes = nil
}

// txWriter applies changes in a bbolt transaction. Its arena holds the
// keys and values of one transaction (bbolt keeps references to them until
// the commit) and is reused by the next.
type txWriter struct {
	arena []byte
	keys  [][]byte
}

// hold copies b into the arena and returns the copy.
func (w *txWriter) hold(f func([]byte) []byte) []byte {
	start := len(w.arena)
	w.arena = f(w.arena)
	return w.arena[start:len(w.arena):len(w.arena)]
}

// commit writes changes in one transaction; it turns a bbolt panic into
// an error.
func (w *txWriter) commit(db *bolt.DB, changes []broker.Change) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt: %v", r)
		}
		w.arena = w.arena[:0]
		if cap(w.arena) > 8<<20 {
			w.arena = nil
		}
	}()
	return db.Update(func(tx *bolt.Tx) error {
		b := buckets{tx.Bucket(bucketSessions), tx.Bucket(bucketMessages), tx.Bucket(bucketRetained)}
		if b.sessions == nil || b.messages == nil || b.retained == nil {
			return fmt.Errorf("%w: buckets missing", ErrCorrupt)
		}
		b.messages.FillPercent = 0.9 // keys mostly grow at the end of a session's range
		for i := range changes {
			if err := w.apply(&b, &changes[i]); err != nil {
				return fmt.Errorf("change %d (kind %d): %w", i, changes[i].Kind, err)
			}
		}
		return nil
	})
}

type buckets struct{ sessions, messages, retained *bolt.Bucket }

// apply writes one change.
func (w *txWriter) apply(b *buckets, c *broker.Change) error {
	switch c.Kind {
	case broker.PutSession:
		if c.Session == nil {
			return fmt.Errorf("PutSession without a record")
		}
		k := w.hold(func(a []byte) []byte { return append(a, nameKey(c.Session.ClientID)...) })
		v := w.hold(func(a []byte) []byte { return encodeSession(a, c.Session) })
		return b.sessions.Put(k, v)
	case broker.DeleteSession:
		sk := nameKey(c.ClientID)
		if err := b.sessions.Delete(sk); err != nil {
			return err
		}
		return w.deletePrefix(b.messages, msgPrefix(nil, sk))
	case broker.PutMessage:
		if c.Message.Msg == nil {
			return fmt.Errorf("PutMessage without a message")
		}
		k := w.hold(func(a []byte) []byte { return msgKey(a, nameKey(c.ClientID), c.Message.Seq) })
		v := w.hold(func(a []byte) []byte { return encodeStored(a, &c.Message) })
		return b.messages.Put(k, v)
	case broker.DeleteMessage:
		return b.messages.Delete(msgKey(nil, nameKey(c.ClientID), c.Message.Seq))
	case broker.PutRetained:
		m := c.Message.Msg
		if m == nil {
			return fmt.Errorf("PutRetained without a message")
		}
		k := w.hold(func(a []byte) []byte { return append(a, nameKey(m.Topic)...) })
		v := w.hold(func(a []byte) []byte { return encodeRetained(a, m) })
		return b.retained.Put(k, v)
	case broker.DeleteRetained:
		return b.retained.Delete(nameKey(c.Topic))
	}
	return fmt.Errorf("unknown change kind %d", c.Kind)
}

// deletePrefix deletes the keys of bucket b that start with prefix.
func (w *txWriter) deletePrefix(b *bolt.Bucket, prefix []byte) error {
	w.keys = w.keys[:0]
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		w.keys = append(w.keys, k)
	}
	for _, k := range w.keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	clear(w.keys)
	return nil
}

// Flush waits until everything staged so far is durable.
func (st *Store) Flush() error { return st.Stage(nil).Wait() }
