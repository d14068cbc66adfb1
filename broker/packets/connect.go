package packets

// Connect is a CONNECT packet.
type Connect struct {
	// ProtocolName is "MQTT" (3.1.1 and 5) or "MQIsdp" (3.1). Append
	// fills it in from the version when empty.
	ProtocolName string
	// Version is the protocol level: V31, V311 or V5. Decode sets it
	// before any other check, so it is valid even when Decode fails. When
	// Decode fails with reason code UnsupportedProtocolVersion,
	// ProtocolName is set if the name was right (the level is the
	// problem) and empty if the name was unknown.
	Version    byte
	CleanStart bool
	KeepAlive  uint16
	ClientID   string
	// Will fields are used when WillFlag is set.
	WillFlag    bool
	WillQoS     byte
	WillRetain  bool
	WillTopic   string
	WillPayload []byte
	WillProps   Properties
	// UsernameFlag and PasswordFlag tell a present but empty value from
	// an absent one.
	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte
	Props        Properties
}

// Type implements Packet.
func (*Connect) Type() byte { return CONNECT }

// Decode parses the body of a CONNECT packet. The protocol level comes
// from the packet itself.
func (c *Connect) Decode(body []byte) error {
	*c = Connect{}
	d := decoder{b: body, what: "CONNECT"}
	name := d.rawString("protocol name")
	c.Version = d.byte1("protocol level")
	if d.err != nil {
		return d.err
	}
	switch {
	case string(name) == "MQTT" && (c.Version == V311 || c.Version == V5):
		c.ProtocolName = "MQTT"
	case string(name) == "MQIsdp" && c.Version == V31:
		c.ProtocolName = "MQIsdp"
	case string(name) == "MQTT" || string(name) == "MQIsdp":
		c.ProtocolName = string(name)
		return &Error{Code: UnsupportedProtocolVersion,
			Reason: "CONNECT: unsupported protocol level " + itoa(int(c.Version))}
	default:
		return &Error{Code: UnsupportedProtocolVersion,
			Reason: "CONNECT: unknown protocol name " + quote(name)}
	}
	flags := d.byte1("connect flags")
	c.KeepAlive = d.uint16("keep alive")
	if d.err != nil {
		return d.err
	}
	if flags&0x01 != 0 {
		return malformed("CONNECT: reserved connect flag is set")
	}
	c.CleanStart = flags&0x02 != 0
	c.WillFlag = flags&0x04 != 0
	c.WillQoS = (flags >> 3) & 3
	c.WillRetain = flags&0x20 != 0
	c.PasswordFlag = flags&0x40 != 0
	c.UsernameFlag = flags&0x80 != 0
	if c.WillQoS == 3 {
		return malformed("CONNECT: will QoS is 3")
	}
	if !c.WillFlag && (c.WillQoS != 0 || c.WillRetain) {
		return malformed("CONNECT: will QoS or retain set without the will flag")
	}
	if c.Version != V5 && c.PasswordFlag && !c.UsernameFlag {
		return malformed("CONNECT: password flag set without the user name flag")
	}
	if c.Version == V5 {
		c.Props.decode(&d, CONNECT)
	}
	c.ClientID = d.str("client identifier")
	if c.WillFlag {
		if c.Version == V5 {
			c.WillProps.decode(&d, willKind)
		}
		c.WillTopic = d.str("will topic")
		c.WillPayload = d.binaryData("will payload")
	}
	if c.UsernameFlag {
		c.Username = d.str("user name")
	}
	if c.PasswordFlag {
		c.Password = d.binaryData("password")
	}
	if d.err != nil {
		return d.err
	}
	if d.remaining() != 0 {
		return malformed("CONNECT: %d unexpected bytes after the payload", d.remaining())
	}
	return nil
}

func quote(b []byte) string {
	const max = 16
	if len(b) > max {
		b = b[:max]
	}
	out := make([]byte, 0, len(b)+2)
	out = append(out, '"')
	for _, c := range b {
		if c < 0x20 || c >= 0x7F || c == '"' {
			out = append(out, '?')
		} else {
			out = append(out, c)
		}
	}
	return string(append(out, '"'))
}

// Append implements Packet. The version argument is ignored: a CONNECT
// carries its own protocol level in Version.
func (c *Connect) Append(dst []byte, _ byte) ([]byte, error) {
	v := c.Version
	name := c.ProtocolName
	if name == "" {
		name = "MQTT"
		if v == V31 {
			name = "MQIsdp"
		}
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"client identifier", len(c.ClientID)}, {"will topic", len(c.WillTopic)},
		{"will payload", len(c.WillPayload)}, {"user name", len(c.Username)},
		{"password", len(c.Password)}} {
		if err := checkLen("CONNECT", f.name, f.n); err != nil {
			return dst, err
		}
	}
	n := 2 + len(name) + 1 + 1 + 2 + 2 + len(c.ClientID)
	var ps, ws int
	if v == V5 {
		if err := c.Props.check("CONNECT", CONNECT); err != nil {
			return dst, err
		}
		ps = c.Props.size(CONNECT)
		n += varintLen(uint32(ps)) + ps
	}
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	if c.WillFlag {
		flags |= 0x04 | (c.WillQoS&3)<<3
		if c.WillRetain {
			flags |= 0x20
		}
		if v == V5 {
			if err := c.WillProps.check("CONNECT", willKind); err != nil {
				return dst, err
			}
			ws = c.WillProps.size(willKind)
			n += varintLen(uint32(ws)) + ws
		}
		n += 4 + len(c.WillTopic) + len(c.WillPayload)
	}
	if c.UsernameFlag {
		flags |= 0x80
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		flags |= 0x40
		n += 2 + len(c.Password)
	}
	dst, err := appendHeader(dst, CONNECT<<4, n)
	if err != nil {
		return dst, err
	}
	dst = appendString(dst, name)
	dst = append(dst, v, flags)
	dst = appendUint16(dst, c.KeepAlive)
	if v == V5 {
		dst = c.Props.appendProps(dst, CONNECT, ps)
	}
	dst = appendString(dst, c.ClientID)
	if c.WillFlag {
		if v == V5 {
			dst = c.WillProps.appendProps(dst, willKind, ws)
		}
		dst = appendString(dst, c.WillTopic)
		dst = appendBinary(dst, c.WillPayload)
	}
	if c.UsernameFlag {
		dst = appendString(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBinary(dst, c.Password)
	}
	return dst, nil
}

// Connack is a CONNACK packet.
type Connack struct {
	SessionPresent bool
	// ReasonCode is the MQTT 5 reason code, or for MQTT 3.1.1 the return
	// code (0-5, see ConnackV3Code).
	ReasonCode byte
	Props      Properties
}

// Type implements Packet.
func (*Connack) Type() byte { return CONNACK }

// Decode parses the body of a CONNACK packet.
func (c *Connack) Decode(body []byte, version byte) error {
	*c = Connack{}
	d := decoder{b: body, what: "CONNACK"}
	flags := d.byte1("acknowledge flags")
	c.ReasonCode = d.byte1("reason code")
	if d.err != nil {
		return d.err
	}
	if flags&^1 != 0 {
		return malformed("CONNACK: reserved acknowledge flags are set")
	}
	c.SessionPresent = flags&1 != 0
	if version == V5 {
		if e := checkReason(CONNACK, c.ReasonCode); e != nil {
			return e
		}
		c.Props.decode(&d, CONNACK)
	} else if c.ReasonCode > V3NotAuthorized {
		return protocolErr("CONNACK: invalid return code %d", c.ReasonCode)
	}
	if d.err != nil {
		return d.err
	}
	if d.remaining() != 0 {
		return malformed("CONNACK: %d unexpected bytes", d.remaining())
	}
	return nil
}

// Append implements Packet.
func (c *Connack) Append(dst []byte, version byte) ([]byte, error) {
	n := 2
	var ps int
	if version == V5 {
		if err := c.Props.check("CONNACK", CONNACK); err != nil {
			return dst, err
		}
		ps = c.Props.size(CONNACK)
		n += varintLen(uint32(ps)) + ps
	}
	dst, err := appendHeader(dst, CONNACK<<4, n)
	if err != nil {
		return dst, err
	}
	var flags byte
	if c.SessionPresent {
		flags = 1
	}
	dst = append(dst, flags, c.ReasonCode)
	if version == V5 {
		dst = c.Props.appendProps(dst, CONNACK, ps)
	}
	return dst, nil
}
