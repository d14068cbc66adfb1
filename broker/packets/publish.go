package packets

import (
	"strings"
	"unsafe"
)

// Publish is a PUBLISH packet.
type Publish struct {
	Dup    bool
	QoS    byte
	Retain bool
	// Topic is the topic name; empty when an MQTT 5 Topic Alias stands
	// for it.
	Topic string
	// PacketID is set when QoS > 0.
	PacketID uint16
	Props    Properties
	// Payload is the application message.
	Payload []byte
}

// Type implements Packet.
func (*Publish) Type() byte { return PUBLISH }

// Decode parses the body of a PUBLISH packet whose fixed header is h. The
// decoded Topic and Payload share one new allocation and never alias body,
// so the caller may reuse body at once.
func (p *Publish) Decode(h FixedHeader, body []byte, version byte) error {
	p.Props = Properties{}
	p.Dup = h.Flags&0x08 != 0
	p.QoS = (h.Flags >> 1) & 3
	p.Retain = h.Flags&0x01 != 0
	p.PacketID = 0
	if p.QoS == 3 {
		return malformed("PUBLISH: QoS 3")
	}
	if p.Dup && p.QoS == 0 {
		return malformed("PUBLISH: DUP set on a QoS 0 message")
	}
	d := decoder{b: body, what: "PUBLISH"}
	topic := d.rawString("topic name")
	if p.QoS > 0 {
		p.PacketID = d.uint16("packet identifier")
		if d.err == nil && p.PacketID == 0 {
			return protocolErr("PUBLISH: packet identifier 0 with QoS %d", p.QoS)
		}
	}
	if version == V5 {
		p.Props.decode(&d, PUBLISH)
	}
	if d.err != nil {
		return d.err
	}
	for _, c := range topic {
		if c == '+' || c == '#' {
			return &Error{Code: TopicNameInvalid, Reason: "PUBLISH: wildcard in topic name"}
		}
	}
	if len(topic) == 0 && !p.Props.Has(PropTopicAlias) {
		return protocolErr("PUBLISH: empty topic name without a topic alias")
	}
	payload := body[d.off:]
	buf := make([]byte, len(topic)+len(payload))
	copy(buf, topic)
	copy(buf[len(topic):], payload)
	if len(topic) > 0 {
		p.Topic = unsafe.String(unsafe.SliceData(buf), len(topic))
	} else {
		p.Topic = ""
	}
	p.Payload = buf[len(topic):len(buf):len(buf)]
	return nil
}

// Size returns the encoded length of the packet for version.
func (p *Publish) Size(version byte) int {
	n, _ := p.remaining(version)
	return 1 + varintLen(uint32(n)) + n
}

func (p *Publish) remaining(version byte) (n, ps int) {
	n = 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if version == V5 {
		ps = p.Props.size(PUBLISH)
		n += varintLen(uint32(ps)) + ps
	}
	return n, ps
}

// Append implements Packet. It does not allocate beyond growing dst.
func (p *Publish) Append(dst []byte, version byte) ([]byte, error) {
	if len(p.Topic) > 65535 {
		return dst, checkLen("PUBLISH", "topic name", len(p.Topic))
	}
	if p.QoS > 2 {
		return dst, &encodeErr{what: "PUBLISH", field: "QoS", n: int(p.QoS)}
	}
	if version == V5 {
		if err := p.Props.check("PUBLISH", PUBLISH); err != nil {
			return dst, err
		}
	}
	n, ps := p.remaining(version)
	first := PUBLISH<<4 | p.QoS<<1
	if p.Dup && p.QoS > 0 {
		first |= 0x08
	}
	if p.Retain {
		first |= 0x01
	}
	dst, err := appendHeader(dst, first, n)
	if err != nil {
		return dst, err
	}
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if version == V5 {
		dst = p.Props.appendProps(dst, PUBLISH, ps)
	}
	return append(dst, p.Payload...), nil
}

// ValidTopicName reports whether s can be a PUBLISH topic name: non-empty
// valid UTF-8 without wildcards.
func ValidTopicName(s string) bool {
	return s != "" && !strings.ContainsAny(s, "+#") && ValidUTF8(s)
}

// Ack is one of the four QoS 1/2 acknowledgement packets: PUBACK, PUBREC,
// PUBREL or PUBCOMP.
type Ack struct {
	// Kind is PUBACK, PUBREC, PUBREL or PUBCOMP.
	Kind       byte
	PacketID   uint16
	ReasonCode byte
	Props      Properties
}

// Type implements Packet.
func (a *Ack) Type() byte { return a.Kind }

// Decode parses the body of an acknowledgement of type kind.
func (a *Ack) Decode(kind byte, body []byte, version byte) error {
	*a = Ack{Kind: kind}
	d := decoder{b: body, what: TypeName(kind)}
	a.PacketID = d.uint16("packet identifier")
	if d.err != nil {
		return d.err
	}
	if a.PacketID == 0 {
		return protocolErr("%s: packet identifier 0", d.what)
	}
	if version == V5 {
		if d.remaining() > 0 {
			a.ReasonCode = d.byte1("reason code")
			if e := checkReason(kind, a.ReasonCode); e != nil {
				return e
			}
		}
		if d.remaining() > 0 {
			a.Props.decode(&d, kind)
		}
	}
	if d.err != nil {
		return d.err
	}
	if d.remaining() != 0 {
		return malformed("%s: %d unexpected bytes", d.what, d.remaining())
	}
	return nil
}

// Append implements Packet.
func (a *Ack) Append(dst []byte, version byte) ([]byte, error) {
	if a.Kind < PUBACK || a.Kind > PUBCOMP {
		return dst, &encodeErr{what: "acknowledgement", field: "kind", n: int(a.Kind)}
	}
	first := a.Kind<<4 | flagsFor[a.Kind]
	if version != V5 {
		return append(dst, first, 2, byte(a.PacketID>>8), byte(a.PacketID)), nil
	}
	if err := a.Props.check(TypeName(a.Kind), a.Kind); err != nil {
		return dst, err
	}
	ps := a.Props.size(a.Kind)
	if ps == 0 {
		if a.ReasonCode == 0 {
			return append(dst, first, 2, byte(a.PacketID>>8), byte(a.PacketID)), nil
		}
		return append(dst, first, 3, byte(a.PacketID>>8), byte(a.PacketID), a.ReasonCode), nil
	}
	dst, err := appendHeader(dst, first, 3+varintLen(uint32(ps))+ps)
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(a.PacketID>>8), byte(a.PacketID), a.ReasonCode)
	return a.Props.appendProps(dst, a.Kind, ps), nil
}

// AppendAck appends a PUBACK, PUBREC, PUBREL or PUBCOMP without
// properties: the common case, with no Ack value to build.
func AppendAck(dst []byte, kind byte, id uint16, code ReasonCode, version byte) []byte {
	first := kind<<4 | flagsFor[kind&15]
	if version != V5 || code == 0 {
		return append(dst, first, 2, byte(id>>8), byte(id))
	}
	return append(dst, first, 3, byte(id>>8), byte(id), code)
}
