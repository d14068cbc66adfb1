package packets

// Pingreq is a PINGREQ packet.
type Pingreq struct{}

// Type implements Packet.
func (*Pingreq) Type() byte { return PINGREQ }

// Append implements Packet.
func (*Pingreq) Append(dst []byte, _ byte) ([]byte, error) {
	return append(dst, PINGREQ<<4, 0), nil
}

// Pingresp is a PINGRESP packet.
type Pingresp struct{}

// Type implements Packet.
func (*Pingresp) Type() byte { return PINGRESP }

// Append implements Packet.
func (*Pingresp) Append(dst []byte, _ byte) ([]byte, error) {
	return append(dst, PINGRESP<<4, 0), nil
}

// Disconnect is a DISCONNECT packet. MQTT 3.1.1 DISCONNECTs are empty.
type Disconnect struct {
	ReasonCode byte
	Props      Properties
}

// Type implements Packet.
func (*Disconnect) Type() byte { return DISCONNECT }

// Decode parses the body of a DISCONNECT packet.
func (p *Disconnect) Decode(body []byte, version byte) error {
	*p = Disconnect{}
	if version != V5 {
		if len(body) != 0 {
			return malformed("DISCONNECT: %d unexpected bytes", len(body))
		}
		return nil
	}
	return decodeReasonProps(body, DISCONNECT, &p.ReasonCode, &p.Props)
}

// decodeReasonProps parses the common "optional reason code, optional
// properties" body of MQTT 5 DISCONNECT and AUTH.
func decodeReasonProps(body []byte, kind byte, rc *byte, props *Properties) error {
	d := decoder{b: body, what: TypeName(kind)}
	if d.remaining() > 0 {
		*rc = d.byte1("reason code")
		if e := checkReason(kind, *rc); e != nil {
			return e
		}
	}
	if d.remaining() > 0 {
		props.decode(&d, kind)
	}
	if d.err != nil {
		return d.err
	}
	if d.remaining() != 0 {
		return malformed("%s: %d unexpected bytes", d.what, d.remaining())
	}
	return nil
}

func appendReasonProps(dst []byte, kind, rc byte, props *Properties) ([]byte, error) {
	if err := props.check(TypeName(kind), kind); err != nil {
		return dst, err
	}
	ps := props.size(kind)
	switch {
	case ps == 0 && rc == 0:
		return append(dst, kind<<4, 0), nil
	case ps == 0:
		return append(dst, kind<<4, 1, rc), nil
	}
	dst, err := appendHeader(dst, kind<<4, 1+varintLen(uint32(ps))+ps)
	if err != nil {
		return dst, err
	}
	dst = append(dst, rc)
	return props.appendProps(dst, kind, ps), nil
}

// Append implements Packet.
func (p *Disconnect) Append(dst []byte, version byte) ([]byte, error) {
	if version != V5 {
		return append(dst, DISCONNECT<<4, 0), nil
	}
	return appendReasonProps(dst, DISCONNECT, p.ReasonCode, &p.Props)
}

// Auth is an MQTT 5 AUTH packet.
type Auth struct {
	ReasonCode byte
	Props      Properties
}

// Type implements Packet.
func (*Auth) Type() byte { return AUTH }

// Decode parses the body of an AUTH packet.
func (p *Auth) Decode(body []byte, version byte) error {
	*p = Auth{}
	if version != V5 {
		return malformed("AUTH packet before MQTT 5")
	}
	return decodeReasonProps(body, AUTH, &p.ReasonCode, &p.Props)
}

// Append implements Packet.
func (p *Auth) Append(dst []byte, version byte) ([]byte, error) {
	if version != V5 {
		return dst, &encodeErr{what: "AUTH", field: "protocol level", n: int(version)}
	}
	return appendReasonProps(dst, AUTH, p.ReasonCode, &p.Props)
}
