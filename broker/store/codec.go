package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sngate/sngate/broker"
)

// Record encoding. Every value starts with a version byte (recordVersion);
// the rest is a compact binary layout: unsigned varints for lengths,
// counts and durations, a zigzag varint for times (Unix nanoseconds), and
// length-prefixed strings and byte slices. A decoder never panics: a short
// or malformed record is an error.
//
//	session:  v flags str(clientID) str(username) uvarint(expiry ns)
//	          [varint(disconnectedAt)] uvarint(n) n*(str(filter) opts uvarint(id))
//	          [message uvarint(delay ns) uvarint(msgExpiry ns)] bytes(frontend)
//	message:  v flags qos uvarint(packetID) uvarint(n) n*uvarint(subID) message
//	retained: v message
//	message body: flags qos str(topic) bytes(payload) [varint(expiry)]
//	          [str(from)] [props]
//	props:    payloadFormat str(contentType) str(responseTopic)
//	          bytes(correlation) uvarint(n) n*(str(key) str(value))

// recordVersion is the version byte of every record this build writes.
const recordVersion = 1

// errShort is the cause of every truncated-record error.
var errShort = errors.New("record truncated")

// Session record flags.
const (
	sessQueueQoS0 = 1 << iota
	sessWill
	sessDisconnected
)

// Stored-message flags.
const (
	smRetain = 1 << iota
	smSent
	smReleased
)

// Message body flags.
const (
	msgRetain = 1 << iota
	msgExpiry
	msgFrom
	msgProps
)

// enc appends encoded fields to a buffer.
type enc struct{ b []byte }

func (e *enc) byte1(v byte)     { e.b = append(e.b, v) }
func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(b []byte)   { e.uvarint(uint64(len(b))); e.b = append(e.b, b...) }
func (e *enc) duration(d time.Duration) {
	if d < 0 {
		d = 0
	}
	e.uvarint(uint64(d))
}

func (e *enc) message(m *broker.Message) {
	var f byte
	if m.Retain {
		f |= msgRetain
	}
	if !m.Expiry.IsZero() {
		f |= msgExpiry
	}
	if m.From != "" {
		f |= msgFrom
	}
	if m.Props != nil {
		f |= msgProps
	}
	e.byte1(f)
	e.byte1(m.QoS)
	e.str(m.Topic)
	e.bytes(m.Payload)
	if f&msgExpiry != 0 {
		e.varint(m.Expiry.UnixNano())
	}
	if f&msgFrom != 0 {
		e.str(m.From)
	}
	if p := m.Props; p != nil {
		e.byte1(p.PayloadFormat)
		e.str(p.ContentType)
		e.str(p.ResponseTopic)
		e.bytes(p.CorrelationData)
		e.uvarint(uint64(len(p.User)))
		for _, u := range p.User {
			e.str(u.Key)
			e.str(u.Value)
		}
	}
}

// encodeSession appends the record of rec.
func encodeSession(b []byte, rec *broker.SessionRecord) []byte {
	e := enc{b}
	e.byte1(recordVersion)
	var f byte
	if rec.QueueQoS0 {
		f |= sessQueueQoS0
	}
	if rec.Will != nil {
		f |= sessWill
	}
	if !rec.DisconnectedAt.IsZero() {
		f |= sessDisconnected
	}
	e.byte1(f)
	e.str(rec.ClientID)
	e.str(rec.Username)
	e.duration(rec.Expiry)
	if f&sessDisconnected != 0 {
		e.varint(rec.DisconnectedAt.UnixNano())
	}
	e.uvarint(uint64(len(rec.Subscriptions)))
	for i := range rec.Subscriptions {
		s := &rec.Subscriptions[i]
		e.str(s.Filter)
		opts := s.QoS&3 | (s.RetainHandling&3)<<2
		if s.NoLocal {
			opts |= 1 << 4
		}
		if s.RetainAsPublished {
			opts |= 1 << 5
		}
		e.byte1(opts)
		e.uvarint(uint64(s.ID))
	}
	if w := rec.Will; w != nil {
		e.message(&w.Msg)
		e.duration(w.Delay)
		e.duration(w.MsgExpiry)
	}
	e.bytes(rec.FrontendState)
	return e.b
}

// encodeStored appends the record of a session's message.
func encodeStored(b []byte, sm *broker.StoredMessage) []byte {
	e := enc{b}
	e.byte1(recordVersion)
	var f byte
	if sm.Retain {
		f |= smRetain
	}
	if sm.Sent {
		f |= smSent
	}
	if sm.Released {
		f |= smReleased
	}
	e.byte1(f)
	e.byte1(sm.QoS)
	e.uvarint(uint64(sm.PacketID))
	e.uvarint(uint64(len(sm.SubIDs)))
	for _, id := range sm.SubIDs {
		e.uvarint(uint64(id))
	}
	e.message(sm.Msg)
	return e.b
}

// encodeRetained appends the record of a retained message.
func encodeRetained(b []byte, m *broker.Message) []byte {
	e := enc{b}
	e.byte1(recordVersion)
	e.message(m)
	return e.b
}

// dec reads fields from a record; the first error sticks and every later
// read returns zero values.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *dec) byte1() byte {
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("%w: bad varint", errShort))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("%w: bad varint", errShort))
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an element count, bounded by the bytes left (each element
// takes at least min bytes), so that a corrupt count cannot make the
// decoder allocate much.
func (d *dec) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail(fmt.Errorf("%w: count %d exceeds the record", errShort, n))
		return 0
	}
	return int(n)
}

func (d *dec) raw() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("%w: length %d exceeds the record", errShort, n))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string { return string(d.raw()) }

// bytes returns a copy (nil when empty): records live in the database's
// memory map, valid only during the transaction.
func (d *dec) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *dec) duration() time.Duration {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.fail(fmt.Errorf("duration %d out of range", v))
		return 0
	}
	return time.Duration(v)
}

func (d *dec) qos() byte {
	q := d.byte1()
	if q > 2 {
		d.fail(fmt.Errorf("QoS %d", q))
	}
	return q
}

func (d *dec) version() {
	switch v := d.byte1(); {
	case d.err != nil:
	case v == 0 || v > recordVersion:
		d.fail(fmt.Errorf("record version %d (this build reads up to %d)", v, recordVersion))
	}
}

// end checks that the whole record was read.
func (d *dec) end() error {
	if d.err == nil && len(d.b) > 0 {
		return fmt.Errorf("%d unexpected bytes at the end of the record", len(d.b))
	}
	return d.err
}

func (d *dec) message() *broker.Message {
	f := d.byte1()
	m := &broker.Message{QoS: d.qos(), Retain: f&msgRetain != 0}
	m.Topic = d.str()
	m.Payload = d.bytes()
	if f&msgExpiry != 0 {
		m.Expiry = time.Unix(0, d.varint())
	}
	if f&msgFrom != 0 {
		m.From = d.str()
	}
	if f&msgProps != 0 {
		p := &broker.Properties{PayloadFormat: d.byte1()}
		p.ContentType = d.str()
		p.ResponseTopic = d.str()
		p.CorrelationData = d.bytes()
		if n := d.count(2); n > 0 {
			p.User = make([]broker.UserProperty, n)
			for i := range p.User {
				p.User[i] = broker.UserProperty{Key: d.str(), Value: d.str()}
			}
		}
		m.Props = p
	}
	return m
}

// decodeSession decodes a session record.
func decodeSession(b []byte) (*broker.SessionRecord, error) {
	d := dec{b: b}
	d.version()
	f := d.byte1()
	rec := &broker.SessionRecord{QueueQoS0: f&sessQueueQoS0 != 0}
	rec.ClientID = d.str()
	rec.Username = d.str()
	rec.Expiry = d.duration()
	if f&sessDisconnected != 0 {
		rec.DisconnectedAt = time.Unix(0, d.varint())
	}
	if n := d.count(3); n > 0 {
		rec.Subscriptions = make([]broker.Subscription, n)
		for i := range rec.Subscriptions {
			s := &rec.Subscriptions[i]
			s.Filter = d.str()
			opts := d.byte1()
			s.QoS, s.RetainHandling = opts&3, opts>>2&3
			s.NoLocal, s.RetainAsPublished = opts&(1<<4) != 0, opts&(1<<5) != 0
			if s.QoS > 2 || s.RetainHandling > 2 {
				d.fail(fmt.Errorf("subscription options %#x", opts))
			}
			id := d.uvarint()
			if id > math.MaxUint32 {
				d.fail(fmt.Errorf("subscription identifier %d", id))
			}
			s.ID = uint32(id)
		}
	}
	if f&sessWill != 0 {
		w := &broker.Will{Msg: *d.message()}
		w.Delay = d.duration()
		w.MsgExpiry = d.duration()
		rec.Will = w
	}
	rec.FrontendState = d.bytes()
	if err := d.end(); err != nil {
		return nil, err
	}
	return rec, nil
}

// decodeStored decodes a session's message record.
func decodeStored(b []byte) (broker.StoredMessage, error) {
	d := dec{b: b}
	d.version()
	f := d.byte1()
	sm := broker.StoredMessage{Retain: f&smRetain != 0, Sent: f&smSent != 0, Released: f&smReleased != 0}
	sm.QoS = d.qos()
	id := d.uvarint()
	if id > math.MaxUint16 {
		d.fail(fmt.Errorf("packet identifier %d", id))
	}
	sm.PacketID = uint16(id)
	if n := d.count(1); n > 0 {
		sm.SubIDs = make([]uint32, n)
		for i := range sm.SubIDs {
			v := d.uvarint()
			if v > math.MaxUint32 {
				d.fail(fmt.Errorf("subscription identifier %d", v))
			}
			sm.SubIDs[i] = uint32(v)
		}
	}
	sm.Msg = d.message()
	if err := d.end(); err != nil {
		return broker.StoredMessage{}, err
	}
	return sm, nil
}

// decodeRetained decodes a retained-message record.
func decodeRetained(b []byte) (*broker.Message, error) {
	d := dec{b: b}
	d.version()
	m := d.message()
	if err := d.end(); err != nil {
		return nil, err
	}
	return m, nil
}

// maxPlainKey is the longest client ID or topic used as a key as is;
// longer ones (up to 65535 bytes, beyond bbolt's key limit) are keyed by
// hashedKey + their SHA-256. 0xFF never occurs in UTF-8, so a hashed key
// cannot collide with a plain one.
const (
	maxPlainKey = 512
	hashedKey   = 0xFF
)

// nameKey returns the key of a client ID or topic.
func nameKey(name string) []byte {
	if len(name) <= maxPlainKey {
		return []byte(name)
	}
	h := sha256.Sum256([]byte(name))
	return append([]byte{hashedKey}, h[:]...)
}

// msgPrefix returns the key prefix of the messages of the session with
// key sk: its length as a uvarint, then sk.
func msgPrefix(b, sk []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(sk)))
	return append(b, sk...)
}

// msgKey returns the key of message seq of the session with key sk: the
// prefix, then seq in big-endian order, so a session's messages are
// contiguous and sorted.
func msgKey(b, sk []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(msgPrefix(b, sk), seq)
}

// splitMsgKey returns the session key and seq of a message key.
func splitMsgKey(k []byte) (sk []byte, seq uint64, err error) {
	n, w := binary.Uvarint(k)
	if w <= 0 || n > uint64(len(k)) || uint64(len(k)-w) != n+8 {
		return nil, 0, fmt.Errorf("malformed message key %x", k)
	}
	return k[w : w+int(n)], binary.BigEndian.Uint64(k[w+int(n):]), nil
}
