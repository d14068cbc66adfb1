package broker

// qitem is a message waiting in a session's queue.
type qitem struct {
	msg    *Message
	ids    []uint32
	seq    uint64 // store key; 0 when not persisted
	qos    QoS
	retain bool
	// unsynced marks a message not yet durable in the Store: delivery
	// stops at it until the publisher's Apply has returned.
	unsynced bool
	// admitted marks a QoS 1/2 message whose publisher passed the queue
	// check: it may exceed the queue bound (session.enqueueLocked).
	admitted bool
}

// expired reports whether the message's expiry has passed; the clock is
// read only for messages that have one.
func (it *qitem) expired(c Clock) bool {
	return !it.msg.Expiry.IsZero() && !c.Now().Before(it.msg.Expiry)
}

// ring is a growable FIFO of queued messages. The zero value is empty and
// allocates nothing.
type ring struct {
	buf  []qitem
	head int
	n    int
	// qos0 and expiring count the QoS 0 items and the items with an
	// expiry, so that a full queue knows in O(1) whether it can evict.
	qos0, expiring int
}

func (r *ring) count(it *qitem, d int) {
	if it.qos == 0 {
		r.qos0 += d
	}
	if !it.msg.Expiry.IsZero() {
		r.expiring += d
	}
}

func (r *ring) len() int { return r.n }

func (r *ring) at(i int) *qitem { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) grow() {
	size := 2 * len(r.buf)
	if size == 0 {
		size = 4
	}
	nb := make([]qitem, size)
	for i := 0; i < r.n; i++ {
		nb[i] = *r.at(i)
	}
	r.buf, r.head = nb, 0
}

func (r *ring) pushBack(it qitem) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = it
	r.n++
	r.count(&it, 1)
}

func (r *ring) pushFront(it qitem) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
	r.buf[r.head] = it
	r.n++
	r.count(&it, 1)
}

func (r *ring) popFront() qitem {
	p := r.at(0)
	it := *p
	*p = qitem{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.count(&it, -1)
	r.shrink()
	return it
}

// removeAt removes item i, keeping the order of the others.
func (r *ring) removeAt(i int) qitem {
	it := *r.at(i)
	for j := i; j < r.n-1; j++ {
		*r.at(j) = *r.at(j + 1)
	}
	*r.at(r.n - 1) = qitem{}
	r.n--
	r.count(&it, -1)
	r.shrink()
	return it
}

// shrink releases the buffer of an emptied queue that had grown large, so
// idle sessions cost little memory.
func (r *ring) shrink() {
	if r.n == 0 {
		r.head = 0
		if len(r.buf) > 64 {
			r.buf = nil
		}
	}
}

// inflight is an outbound QoS 1/2 message waiting for PUBACK, PUBREC or
// PUBCOMP.
type inflight struct {
	msg      *Message
	ids      []uint32
	seq      uint64
	id       uint16
	qos      QoS
	retain   bool
	sent     bool // accepted by a sink at least once: resend with Dup
	resend   bool // must be offered (again) to the current sink
	released bool // PUBREC received: resend PUBREL, not PUBLISH
	// syncGen is non-zero while the packet ID of a stored QoS 2 message
	// is being made durable (session.syncLocked): it is not offered
	// until then.
	syncGen uint64
}

func (f *inflight) delivery() Delivery {
	return Delivery{Msg: f.msg, QoS: f.qos, PacketID: f.id, Retain: f.retain,
		Dup: f.sent && !f.released, SubscriptionIDs: f.ids, Release: f.released}
}

func (f *inflight) stored() StoredMessage {
	return StoredMessage{Seq: f.seq, Msg: f.msg, QoS: f.qos, Retain: f.retain, SubIDs: f.ids,
		PacketID: f.id, Sent: f.sent, Released: f.released}
}

func (it *qitem) stored() StoredMessage {
	return StoredMessage{Seq: it.seq, Msg: it.msg, QoS: it.qos, Retain: it.retain, SubIDs: it.ids}
}
