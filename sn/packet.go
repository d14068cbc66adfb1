package sn

// Message is implemented by a pointer to every message struct of this
// package (*Publish, *Connect, ...).
type Message interface {
	// Type returns the message type.
	Type() MsgType
	// Len returns the encoded length in bytes, header included.
	Len() int
	// Append appends the encoded message to dst and returns the result. On
	// error it returns dst unchanged.
	Append(dst []byte) ([]byte, error)
	// String returns a one-line, tshark-like rendering of the message.
	String() string

	// decodeBody decodes the variable part b, which starts at offset off of
	// the message.
	decodeBody(b []byte, off int) error
}

// Packet holds one decoded message of any type. Type says which field is
// valid; the others keep stale values. Reuse one Packet across Decode calls
// to decode without allocating.
type Packet struct {
	Type       MsgType // Type says which message field holds the decoded message.
	LongLength bool    // LongLength reports that the 3-byte length form was used.

	Advertise     Advertise     // Advertise is valid when Type is TypeAdvertise.
	SearchGW      SearchGW      // SearchGW is valid when Type is TypeSearchGW.
	GWInfo        GWInfo        // GWInfo is valid when Type is TypeGWInfo.
	Connect       Connect       // Connect is valid when Type is TypeConnect.
	Connack       Connack       // Connack is valid when Type is TypeConnack.
	WillTopicReq  WillTopicReq  // WillTopicReq is valid when Type is TypeWillTopicReq.
	WillTopic     WillTopic     // WillTopic is valid when Type is TypeWillTopic.
	WillMsgReq    WillMsgReq    // WillMsgReq is valid when Type is TypeWillMsgReq.
	WillMsg       WillMsg       // WillMsg is valid when Type is TypeWillMsg.
	Register      Register      // Register is valid when Type is TypeRegister.
	Regack        Regack        // Regack is valid when Type is TypeRegack.
	Publish       Publish       // Publish is valid when Type is TypePublish.
	Puback        Puback        // Puback is valid when Type is TypePuback.
	Pubcomp       Pubcomp       // Pubcomp is valid when Type is TypePubcomp.
	Pubrec        Pubrec        // Pubrec is valid when Type is TypePubrec.
	Pubrel        Pubrel        // Pubrel is valid when Type is TypePubrel.
	Subscribe     Subscribe     // Subscribe is valid when Type is TypeSubscribe.
	Suback        Suback        // Suback is valid when Type is TypeSuback.
	Unsubscribe   Unsubscribe   // Unsubscribe is valid when Type is TypeUnsubscribe.
	Unsuback      Unsuback      // Unsuback is valid when Type is TypeUnsuback.
	Pingreq       Pingreq       // Pingreq is valid when Type is TypePingreq.
	Pingresp      Pingresp      // Pingresp is valid when Type is TypePingresp.
	Disconnect    Disconnect    // Disconnect is valid when Type is TypeDisconnect.
	WillTopicUpd  WillTopicUpd  // WillTopicUpd is valid when Type is TypeWillTopicUpd.
	WillTopicResp WillTopicResp // WillTopicResp is valid when Type is TypeWillTopicResp.
	WillMsgUpd    WillMsgUpd    // WillMsgUpd is valid when Type is TypeWillMsgUpd.
	WillMsgResp   WillMsgResp   // WillMsgResp is valid when Type is TypeWillMsgResp.
	Encapsulated  Encapsulated  // Encapsulated is valid when Type is TypeEncapsulated.
}

// Message returns a pointer to the field that holds the decoded message,
// or nil when Type is TypeInvalid. It does not allocate.
func (p *Packet) Message() Message {
	return p.field(p.Type)
}

// field returns a pointer to the message field for t.
func (p *Packet) field(t MsgType) Message {
	switch t {
	case TypeAdvertise:
		return &p.Advertise
	case TypeSearchGW:
		return &p.SearchGW
	case TypeGWInfo:
		return &p.GWInfo
	case TypeConnect:
		return &p.Connect
	case TypeConnack:
		return &p.Connack
	case TypeWillTopicReq:
		return &p.WillTopicReq
	case TypeWillTopic:
		return &p.WillTopic
	case TypeWillMsgReq:
		return &p.WillMsgReq
	case TypeWillMsg:
		return &p.WillMsg
	case TypeRegister:
		return &p.Register
	case TypeRegack:
		return &p.Regack
	case TypePublish:
		return &p.Publish
	case TypePuback:
		return &p.Puback
	case TypePubcomp:
		return &p.Pubcomp
	case TypePubrec:
		return &p.Pubrec
	case TypePubrel:
		return &p.Pubrel
	case TypeSubscribe:
		return &p.Subscribe
	case TypeSuback:
		return &p.Suback
	case TypeUnsubscribe:
		return &p.Unsubscribe
	case TypeUnsuback:
		return &p.Unsuback
	case TypePingreq:
		return &p.Pingreq
	case TypePingresp:
		return &p.Pingresp
	case TypeDisconnect:
		return &p.Disconnect
	case TypeWillTopicUpd:
		return &p.WillTopicUpd
	case TypeWillTopicResp:
		return &p.WillTopicResp
	case TypeWillMsgUpd:
		return &p.WillMsgUpd
	case TypeWillMsgResp:
		return &p.WillMsgResp
	case TypeEncapsulated:
		return &p.Encapsulated
	}
	return nil
}

// String renders the decoded message on one line, or "INVALID".
func (p *Packet) String() string {
	if m := p.Message(); m != nil {
		return m.String()
	}
	return "INVALID"
}

// Append re-encodes the decoded message to dst (in the shortest length
// form).
func (p *Packet) Append(dst []byte) ([]byte, error) {
	m := p.Message()
	if m == nil {
		return dst, encodeErr(TypeInvalid, "MsgType", ErrUnknownType, "empty Packet")
	}
	return m.Append(dst)
}

// Decode decodes one MQTT-SN 1.2 message, the whole of datagram b, into p.
// Slices in the decoded message alias b. On error p.Type is TypeInvalid and
// the error wraps one of the Err* sentinels. Decode never panics and
// allocates only to report an error.
func Decode(b []byte, p *Packet) error {
	return V12.Decode(b, p)
}

// Decode decodes one message of version v; see the package function Decode.
// Only V12 is implemented; other versions return ErrUnsupportedVersion.
func (v Version) Decode(b []byte, p *Packet) error {
	p.Type = TypeInvalid
	tbl := v.table()
	if tbl == nil {
		return &Error{Op: "decode", Offset: -1, Err: ErrUnsupportedVersion, Detail: v.String()}
	}
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	t := tbl.lookup(h.Code)
	if t == TypeInvalid {
		return decodeErr(TypeInvalid, h.LengthSize, "MsgType", ErrUnknownType, "code 0x"+hex2(h.Code))
	}
	if t == TypeEncapsulated {
		if err := decodeEncapsulated(b, h, &p.Encapsulated); err != nil {
			return err
		}
		p.Type, p.LongLength = t, h.LengthSize == 3
		return nil
	}
	if h.Length != len(b) {
		return decodeErr(t, 0, "Length", ErrBadLength,
			"Length "+itoa(h.Length)+", datagram "+itoa(len(b))+" bytes")
	}
	hs := h.Size()
	body := b[hs:]
	// An explicit switch, rather than a call through the Message
	// interface, lets the compiler prove that p does not escape, so a
	// Packet on the caller's stack stays there.
	switch t {
	case TypeAdvertise:
		err = p.Advertise.decodeBody(body, hs)
	case TypeSearchGW:
		err = p.SearchGW.decodeBody(body, hs)
	case TypeGWInfo:
		err = p.GWInfo.decodeBody(body, hs)
	case TypeConnect:
		err = p.Connect.decodeBody(body, hs)
	case TypeConnack:
		err = p.Connack.decodeBody(body, hs)
	case TypeWillTopicReq:
		err = p.WillTopicReq.decodeBody(body, hs)
	case TypeWillTopic:
		err = p.WillTopic.decodeBody(body, hs)
	case TypeWillMsgReq:
		err = p.WillMsgReq.decodeBody(body, hs)
	case TypeWillMsg:
		err = p.WillMsg.decodeBody(body, hs)
	case TypeRegister:
		err = p.Register.decodeBody(body, hs)
	case TypeRegack:
		err = p.Regack.decodeBody(body, hs)
	case TypePublish:
		err = p.Publish.decodeBody(body, hs)
	case TypePuback:
		err = p.Puback.decodeBody(body, hs)
	case TypePubcomp:
		err = p.Pubcomp.decodeBody(body, hs)
	case TypePubrec:
		err = p.Pubrec.decodeBody(body, hs)
	case TypePubrel:
		err = p.Pubrel.decodeBody(body, hs)
	case TypeSubscribe:
		err = p.Subscribe.decodeBody(body, hs)
	case TypeSuback:
		err = p.Suback.decodeBody(body, hs)
	case TypeUnsubscribe:
		err = p.Unsubscribe.decodeBody(body, hs)
	case TypeUnsuback:
		err = p.Unsuback.decodeBody(body, hs)
	case TypePingreq:
		err = p.Pingreq.decodeBody(body, hs)
	case TypePingresp:
		err = p.Pingresp.decodeBody(body, hs)
	case TypeDisconnect:
		err = p.Disconnect.decodeBody(body, hs)
	case TypeWillTopicUpd:
		err = p.WillTopicUpd.decodeBody(body, hs)
	case TypeWillTopicResp:
		err = p.WillTopicResp.decodeBody(body, hs)
	case TypeWillMsgUpd:
		err = p.WillMsgUpd.decodeBody(body, hs)
	case TypeWillMsgResp:
		err = p.WillMsgResp.decodeBody(body, hs)
	}
	if err != nil {
		return err
	}
	p.Type, p.LongLength = t, h.LengthSize == 3
	return nil
}

// DecodeMessage decodes one MQTT-SN 1.2 message into a newly allocated
// message struct. It is a convenience for tools and tests; the gateway's
// hot path uses Decode with a reused Packet.
func DecodeMessage(b []byte) (Message, error) {
	var p Packet
	if err := Decode(b, &p); err != nil {
		return nil, err
	}
	return cloneMessage(p.Message()), nil
}

// cloneMessage returns a heap copy of the message m points into (slices
// still alias the input).
func cloneMessage(m Message) Message {
	switch v := m.(type) {
	case *Advertise:
		return clone(v)
	case *SearchGW:
		return clone(v)
	case *GWInfo:
		return clone(v)
	case *Connect:
		return clone(v)
	case *Connack:
		return clone(v)
	case *WillTopicReq:
		return clone(v)
	case *WillTopic:
		return clone(v)
	case *WillMsgReq:
		return clone(v)
	case *WillMsg:
		return clone(v)
	case *Register:
		return clone(v)
	case *Regack:
		return clone(v)
	case *Publish:
		return clone(v)
	case *Puback:
		return clone(v)
	case *Pubcomp:
		return clone(v)
	case *Pubrec:
		return clone(v)
	case *Pubrel:
		return clone(v)
	case *Subscribe:
		return clone(v)
	case *Suback:
		return clone(v)
	case *Unsubscribe:
		return clone(v)
	case *Unsuback:
		return clone(v)
	case *Pingreq:
		return clone(v)
	case *Pingresp:
		return clone(v)
	case *Disconnect:
		return clone(v)
	case *WillTopicUpd:
		return clone(v)
	case *WillTopicResp:
		return clone(v)
	case *WillMsgUpd:
		return clone(v)
	case *WillMsgResp:
		return clone(v)
	case *Encapsulated:
		return clone(v)
	}
	return m
}

func clone[T any](v *T) *T {
	c := *v
	return &c
}
