package gateway

import (
	"strings"

	"github.com/sngate/sngate/sn"
)

// topicEntry is one normal topic ID of a client.
type topicEntry struct {
	name    string
	id      uint16
	pending bool // gateway REGISTER sent, REGACK not yet received
	gw      bool // assigned by the gateway for a delivery: may be recycled
}

// indexAt is the table size from which a registry also keeps maps.
const indexAt = 16

// registry is a client's table of normal topic IDs, both directions. A
// few entries live in a slice searched linearly (small and cheap for a
// sleeping client); larger tables add two index maps.
type registry struct {
	e      []topicEntry
	byName map[string]int
	byID   map[uint16]int
	next   uint16
	cycle  int  // next gateway entry to recycle
	dirty  bool // a client registration was added since the last save (persist.go)
}

func (r *registry) find(name string) int {
	if r.byName != nil {
		if i, ok := r.byName[name]; ok {
			return i
		}
		return -1
	}
	for i := range r.e {
		if r.e[i].name == name {
			return i
		}
	}
	return -1
}

func (r *registry) findID(id uint16) int {
	if r.byID != nil {
		if i, ok := r.byID[id]; ok {
			return i
		}
		return -1
	}
	for i := range r.e {
		if r.e[i].id == id {
			return i
		}
	}
	return -1
}

// name returns the topic registered as id.
func (r *registry) name(id uint16) (string, bool) {
	if i := r.findID(id); i >= 0 {
		return r.e[i].name, true
	}
	return "", false
}

// lookup returns the ID of a topic and whether the client has confirmed it.
func (r *registry) lookup(name string) (id uint16, ready, ok bool) {
	if i := r.find(name); i >= 0 {
		return r.e[i].id, !r.e[i].pending, true
	}
	return 0, false, false
}

// add registers name and returns its ID. When the table holds max
// entries, a gateway entry is recycled if gw (reported by recycled), else
// add fails.
func (r *registry) add(name string, gw, pending bool, max int) (id uint16, recycled, ok bool) {
	if i := r.find(name); i >= 0 {
		return r.e[i].id, false, true
	}
	if len(r.e) >= max {
		if !gw {
			return 0, false, false
		}
		for k := 0; k < len(r.e); k++ {
			i := (r.cycle + k) % len(r.e)
			if en := &r.e[i]; en.gw && !en.pending {
				r.cycle = i + 1
				if r.byName != nil {
					delete(r.byName, en.name)
					r.byName[name] = i
				}
				en.name, en.pending = name, pending
				return en.id, true, true
			}
		}
		return 0, false, false
	}
	id = r.allocID()
	r.e = append(r.e, topicEntry{name: name, id: id, pending: pending, gw: gw})
	r.dirty = r.dirty || !gw
	if r.byName != nil {
		r.byName[name] = len(r.e) - 1
		r.byID[id] = len(r.e) - 1
	} else if len(r.e) > indexAt {
		r.reindex()
	}
	return id, false, true
}

func (r *registry) allocID() uint16 {
	for {
		r.next++
		if r.next == 0 || r.next == 0xFFFF {
			r.next = 1
		}
		if r.findID(r.next) < 0 {
			return r.next
		}
	}
}

// confirm marks id as known to the client (REGACK accepted).
func (r *registry) confirm(id uint16) {
	if i := r.findID(id); i >= 0 {
		r.e[i].pending = false
	}
}

// remove forgets id.
func (r *registry) remove(id uint16) {
	i := r.findID(id)
	if i < 0 {
		return
	}
	last := len(r.e) - 1
	r.e[i] = r.e[last]
	r.e[last] = topicEntry{}
	r.e = r.e[:last]
	if r.byName != nil {
		r.reindex()
	}
}

// reset forgets every registration (CleanSession).
func (r *registry) reset() { *r = registry{} }

func (r *registry) reindex() {
	r.byName = make(map[string]int, len(r.e))
	r.byID = make(map[uint16]int, len(r.e))
	for i := range r.e {
		r.byName[r.e[i].name] = i
		r.byID[r.e[i].id] = i
	}
}

// hasWildcard reports whether a topic contains MQTT wildcards.
func hasWildcard(s string) bool { return strings.ContainsAny(s, "+#") }

// onRegister handles a client's REGISTER: it assigns (or returns) the
// topic ID for the name and answers REGACK.
func (sh *shard) onRegister(c *client, m *sn.Register) {
	g := sh.g
	rc := sn.Accepted
	var id uint16
	name := string(m.TopicName) // one allocation per new registration
	switch {
	case sh.rejectCongested(c.link, c): // radiolink.go
		rc = sn.RejectedCongestion
	case hasWildcard(name):
		rc = sn.RejectedNotSupported
	default:
		var ok bool
		if id, _, ok = c.topics.add(name, false, false, g.cfg.MaxTopicIDs); !ok {
			rc = sn.RejectedCongestion
		}
	}
	if rc != sn.Accepted {
		g.stats.rejectRegister.Add(1)
		g.log.Debug("REGISTER rejected", "client", c.id, "topic", name, "rc", rc.String())
	}
	sh.send(c, &sn.Regack{TopicID: id, MsgID: m.MsgID, ReturnCode: rc})
}

// onRegack handles the answer to the gateway's REGISTER.
func (sh *shard) onRegack(c *client, m *sn.Regack) {
	o := c.out
	if o == nil || o.kind != outRegister || o.msgID != m.MsgID {
		sh.g.stats.unexpected.Add(1)
		return
	}
	sh.clearOut(c)
	if m.ReturnCode == sn.Accepted {
		c.topics.confirm(o.topicID)
	} else {
		// The client refuses the topic: drop the deliveries waiting for it.
		sh.g.stats.deliveryRejected.Add(1)
		c.topics.remove(o.topicID)
		sh.dropHeld(c, o.name)
	}
	sh.pump(c)
}
