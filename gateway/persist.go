package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Persistent topic IDs. The topic IDs a client registered itself
// (REGISTER, SUBSCRIBE by topic name) belong to its session: when the
// session is persistent (CleanSession false) they are saved with the
// broker session, as its front-end state, and restored when the client
// resumes the session, after a DISCONNECT or a gateway restart alike. The
// save is durable before the REGACK or SUBACK that announces the ID goes
// out. IDs the gateway assigned for its own deliveries are not saved:
// after a restart the gateway registers those topics again.
//
// Encoding: version byte, uvarint next ID, uvarint count, then per entry
// uvarint ID and a length-prefixed name.

// topicsVersion is the version byte of the saved registrations.
const topicsVersion = 1

// encodeTopics returns the client registrations of r.
func encodeTopics(r *registry) []byte {
	b := []byte{topicsVersion}
	b = binary.AppendUvarint(b, uint64(r.next))
	n := 0
	for i := range r.e {
		if !r.e[i].gw && !r.e[i].pending {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i := range r.e {
		if e := &r.e[i]; !e.gw && !e.pending {
			b = binary.AppendUvarint(b, uint64(e.id))
			b = binary.AppendUvarint(b, uint64(len(e.name)))
			b = append(b, e.name...)
		}
	}
	return b
}

var errTopicsState = errors.New("malformed saved topic IDs")

// decodeTopics rebuilds a registry from encodeTopics' output, keeping at
// most max entries.
func decodeTopics(b []byte, max int) (registry, error) {
	var r registry
	if len(b) == 0 || b[0] != topicsVersion {
		return r, fmt.Errorf("%w: version", errTopicsState)
	}
	b = b[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	next, ok1 := uv()
	count, ok2 := uv()
	if !ok1 || !ok2 || next > 0xFFFF || count > uint64(len(b)/2) {
		return r, fmt.Errorf("%w: header", errTopicsState)
	}
	r.next = uint16(next)
	for range count {
		id, ok1 := uv()
		size, ok2 := uv()
		if !ok1 || !ok2 || id == 0 || id >= 0xFFFF || size == 0 || size > uint64(len(b)) {
			return registry{}, fmt.Errorf("%w: entry", errTopicsState)
		}
		name := string(b[:size])
		b = b[size:]
		if !utf8.ValidString(name) || hasWildcard(name) || r.find(name) >= 0 || r.findID(uint16(id)) >= 0 {
			return registry{}, fmt.Errorf("%w: entry %q", errTopicsState, name)
		}
		if len(r.e) < max {
			r.e = append(r.e, topicEntry{name: name, id: uint16(id)})
			if r.byName == nil && len(r.e) > indexAt {
				r.reindex()
			} else if r.byName != nil {
				r.byName[name], r.byID[uint16(id)] = len(r.e)-1, len(r.e)-1
			}
		}
	}
	if len(b) != 0 {
		return registry{}, fmt.Errorf("%w: trailing bytes", errTopicsState)
	}
	return r, nil
}

// noteTopics queues c for saveTopics when it registered a topic and its
// session is persistent.
func (sh *shard) noteTopics(c *client) {
	if c.topics.dirty && !c.clean && c.sess != nil && !c.removed {
		sh.dirty = append(sh.dirty, c)
	}
}

// saveTopics saves the registrations of the queued clients and waits
// until they are durable (one wait: the broker's store commits in order).
func (sh *shard) saveTopics() {
	if len(sh.dirty) == 0 {
		return
	}
	var last interface{ Wait() error }
	var lastID string
	for i, c := range sh.dirty {
		sh.dirty[i] = nil
		if !c.topics.dirty || c.sess == nil || c.removed {
			continue
		}
		c.topics.dirty = false
		last, lastID = c.sess.SetFrontendState(encodeTopics(&c.topics)), c.id
	}
	sh.dirty = sh.dirty[:0]
	if last != nil {
		if err := last.Wait(); err != nil {
			sh.g.log.Warn("topic IDs not saved", "client", lastID, "err", err)
		}
	}
}

// restoreTopics loads the registrations saved with c's resumed session,
// unless c still has its own (it reconnected without leaving).
func (sh *shard) restoreTopics(c *client) {
	if len(c.topics.e) > 0 || c.sess == nil {
		return
	}
	b := c.sess.FrontendState()
	if len(b) == 0 {
		return
	}
	r, err := decodeTopics(b, sh.g.cfg.MaxTopicIDs)
	if err != nil {
		sh.g.log.Warn("saved topic IDs ignored", "client", c.id, "err", err)
		return
	}
	c.topics = r
}
