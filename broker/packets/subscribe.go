package packets

// SubOption is one topic filter of a SUBSCRIBE packet with its options.
type SubOption struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	// RetainHandling: 0 send retained messages on subscribe, 1 only for
	// a new subscription, 2 never.
	RetainHandling byte
}

func (o *SubOption) options(version byte) byte {
	b := o.QoS & 3
	if version == V5 {
		if o.NoLocal {
			b |= 0x04
		}
		if o.RetainAsPublished {
			b |= 0x08
		}
		b |= (o.RetainHandling & 3) << 4
	}
	return b
}

// Subscribe is a SUBSCRIBE packet.
type Subscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []SubOption
}

// Type implements Packet.
func (*Subscribe) Type() byte { return SUBSCRIBE }

// Decode parses the body of a SUBSCRIBE packet.
func (s *Subscribe) Decode(body []byte, version byte) error {
	*s = Subscribe{}
	d := decoder{b: body, what: "SUBSCRIBE"}
	s.PacketID = d.uint16("packet identifier")
	if d.err == nil && s.PacketID == 0 {
		return protocolErr("SUBSCRIBE: packet identifier 0")
	}
	if version == V5 {
		s.Props.decode(&d, SUBSCRIBE)
	}
	for d.err == nil && d.remaining() > 0 {
		o := SubOption{Filter: d.str("topic filter")}
		b := d.byte1("subscription options")
		if d.err != nil {
			break
		}
		o.QoS = b & 3
		if o.QoS == 3 {
			return malformed("SUBSCRIBE: requested QoS 3")
		}
		if version == V5 {
			if b&0xC0 != 0 {
				return malformed("SUBSCRIBE: reserved subscription option bits set")
			}
			o.NoLocal = b&0x04 != 0
			o.RetainAsPublished = b&0x08 != 0
			o.RetainHandling = (b >> 4) & 3
			if o.RetainHandling == 3 {
				return protocolErr("SUBSCRIBE: retain handling 3")
			}
		} else if b&0xFC != 0 {
			return malformed("SUBSCRIBE: reserved bits set in requested QoS")
		}
		s.Filters = append(s.Filters, o)
	}
	if d.err != nil {
		return d.err
	}
	if len(s.Filters) == 0 {
		return protocolErr("SUBSCRIBE: no topic filter")
	}
	return nil
}

// Append implements Packet.
func (s *Subscribe) Append(dst []byte, version byte) ([]byte, error) {
	n := 2
	var ps int
	if version == V5 {
		if err := s.Props.check("SUBSCRIBE", SUBSCRIBE); err != nil {
			return dst, err
		}
		ps = s.Props.size(SUBSCRIBE)
		n += varintLen(uint32(ps)) + ps
	}
	for i := range s.Filters {
		if err := checkLen("SUBSCRIBE", "topic filter", len(s.Filters[i].Filter)); err != nil {
			return dst, err
		}
		n += 3 + len(s.Filters[i].Filter)
	}
	dst, err := appendHeader(dst, SUBSCRIBE<<4|2, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, s.PacketID)
	if version == V5 {
		dst = s.Props.appendProps(dst, SUBSCRIBE, ps)
	}
	for i := range s.Filters {
		dst = appendString(dst, s.Filters[i].Filter)
		dst = append(dst, s.Filters[i].options(version))
	}
	return dst, nil
}

// Suback is a SUBACK packet.
type Suback struct {
	PacketID uint16
	Props    Properties
	// ReasonCodes has one entry per filter of the SUBSCRIBE: the granted
	// QoS, or a failure code (0x80 for MQTT 3.1.1).
	ReasonCodes []byte
}

// Type implements Packet.
func (*Suback) Type() byte { return SUBACK }

// Decode parses the body of a SUBACK packet.
func (s *Suback) Decode(body []byte, version byte) error {
	*s = Suback{}
	d := decoder{b: body, what: "SUBACK"}
	s.PacketID = d.uint16("packet identifier")
	if version == V5 {
		s.Props.decode(&d, SUBACK)
	}
	if d.err != nil {
		return d.err
	}
	if d.remaining() == 0 {
		return protocolErr("SUBACK: no reason code")
	}
	s.ReasonCodes = make([]byte, d.remaining())
	copy(s.ReasonCodes, body[d.off:])
	for _, rc := range s.ReasonCodes {
		if version == V5 {
			if e := checkReason(SUBACK, rc); e != nil {
				return e
			}
		} else if rc > 2 && rc != 0x80 {
			return protocolErr("SUBACK: invalid return code 0x%02X", rc)
		}
	}
	return nil
}

// Append implements Packet.
func (s *Suback) Append(dst []byte, version byte) ([]byte, error) {
	n := 2 + len(s.ReasonCodes)
	var ps int
	if version == V5 {
		if err := s.Props.check("SUBACK", SUBACK); err != nil {
			return dst, err
		}
		ps = s.Props.size(SUBACK)
		n += varintLen(uint32(ps)) + ps
	}
	dst, err := appendHeader(dst, SUBACK<<4, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, s.PacketID)
	if version == V5 {
		dst = s.Props.appendProps(dst, SUBACK, ps)
	}
	return append(dst, s.ReasonCodes...), nil
}

// Unsubscribe is an UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Type implements Packet.
func (*Unsubscribe) Type() byte { return UNSUBSCRIBE }

// Decode parses the body of an UNSUBSCRIBE packet.
func (u *Unsubscribe) Decode(body []byte, version byte) error {
	*u = Unsubscribe{}
	d := decoder{b: body, what: "UNSUBSCRIBE"}
	u.PacketID = d.uint16("packet identifier")
	if d.err == nil && u.PacketID == 0 {
		return protocolErr("UNSUBSCRIBE: packet identifier 0")
	}
	if version == V5 {
		u.Props.decode(&d, UNSUBSCRIBE)
	}
	for d.err == nil && d.remaining() > 0 {
		f := d.str("topic filter")
		if d.err == nil {
			u.Filters = append(u.Filters, f)
		}
	}
	if d.err != nil {
		return d.err
	}
	if len(u.Filters) == 0 {
		return protocolErr("UNSUBSCRIBE: no topic filter")
	}
	return nil
}

// Append implements Packet.
func (u *Unsubscribe) Append(dst []byte, version byte) ([]byte, error) {
	n := 2
	var ps int
	if version == V5 {
		if err := u.Props.check("UNSUBSCRIBE", UNSUBSCRIBE); err != nil {
			return dst, err
		}
		ps = u.Props.size(UNSUBSCRIBE)
		n += varintLen(uint32(ps)) + ps
	}
	for _, f := range u.Filters {
		if err := checkLen("UNSUBSCRIBE", "topic filter", len(f)); err != nil {
			return dst, err
		}
		n += 2 + len(f)
	}
	dst, err := appendHeader(dst, UNSUBSCRIBE<<4|2, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, u.PacketID)
	if version == V5 {
		dst = u.Props.appendProps(dst, UNSUBSCRIBE, ps)
	}
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

// Unsuback is an UNSUBACK packet. MQTT 3.1.1 UNSUBACKs carry only the
// packet identifier.
type Unsuback struct {
	PacketID uint16
	Props    Properties
	// ReasonCodes has one entry per filter (MQTT 5 only).
	ReasonCodes []byte
}

// Type implements Packet.
func (*Unsuback) Type() byte { return UNSUBACK }

// Decode parses the body of an UNSUBACK packet.
func (u *Unsuback) Decode(body []byte, version byte) error {
	*u = Unsuback{}
	d := decoder{b: body, what: "UNSUBACK"}
	u.PacketID = d.uint16("packet identifier")
	if version != V5 {
		if d.err == nil && d.remaining() != 0 {
			return malformed("UNSUBACK: %d unexpected bytes", d.remaining())
		}
		if d.err != nil {
			return d.err
		}
		return nil
	}
	u.Props.decode(&d, UNSUBACK)
	if d.err != nil {
		return d.err
	}
	if d.remaining() == 0 {
		return protocolErr("UNSUBACK: no reason code")
	}
	u.ReasonCodes = make([]byte, d.remaining())
	copy(u.ReasonCodes, body[d.off:])
	for _, rc := range u.ReasonCodes {
		if e := checkReason(UNSUBACK, rc); e != nil {
			return e
		}
	}
	return nil
}

// Append implements Packet.
func (u *Unsuback) Append(dst []byte, version byte) ([]byte, error) {
	if version != V5 {
		return append(dst, UNSUBACK<<4, 2, byte(u.PacketID>>8), byte(u.PacketID)), nil
	}
	if err := u.Props.check("UNSUBACK", UNSUBACK); err != nil {
		return dst, err
	}
	ps := u.Props.size(UNSUBACK)
	dst, err := appendHeader(dst, UNSUBACK<<4, 2+varintLen(uint32(ps))+ps+len(u.ReasonCodes))
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, u.PacketID)
	dst = u.Props.appendProps(dst, UNSUBACK, ps)
	return append(dst, u.ReasonCodes...), nil
}
