package sn

// Subscribe is SUBSCRIBE. With TopicIDType normal it carries a topic filter
// in TopicName; with predefined or short it carries TopicID.
type Subscribe struct {
	Dup         bool        // Dup marks a retransmission.
	QoS         QoS         // QoS is the requested QoS.
	TopicIDType TopicIDType // TopicIDType selects TopicName (normal) or TopicID.
	MsgID       uint16      // MsgID matches the SUBACK.
	TopicID     uint16      // TopicID is the pre-defined ID or short name; unused for normal.
	TopicName   []byte      // TopicName is the topic filter, for normal only; it must not be empty.
}

// Type returns TypeSubscribe.
func (m *Subscribe) Type() MsgType { return TypeSubscribe }

// Len returns the encoded length of m.
func (m *Subscribe) Len() int { return frameLen(3 + topicFieldLen(m.TopicIDType, m.TopicName)) }

// Append appends the encoded message to dst.
func (m *Subscribe) Append(dst []byte) ([]byte, error) {
	if err := checkQoS(TypeSubscribe, m.QoS); err != nil {
		return dst, err
	}
	f := Flags(0).with(FlagDup, m.Dup).WithQoS(m.QoS)
	return appendTopicRequest(dst, TypeSubscribe, f, m.TopicIDType, m.MsgID, m.TopicID, m.TopicName)
}

func (m *Subscribe) decodeBody(b []byte, off int) error {
	f, mid, tid, name, err := decodeTopicRequest(TypeSubscribe, b, off)
	*m = Subscribe{Dup: f.Dup(), QoS: f.QoS(), TopicIDType: f.TopicIDType(), MsgID: mid, TopicID: tid, TopicName: name}
	return err
}

// Suback is SUBACK: the answer to SUBSCRIBE.
type Suback struct {
	QoS        QoS        // QoS is the granted QoS.
	TopicID    uint16     // TopicID is the ID for the topic; 0 for wildcard filters.
	MsgID      uint16     // MsgID echoes the SUBSCRIBE.
	ReturnCode ReturnCode // ReturnCode is Accepted or the reason for rejection.
}

// Type returns TypeSuback.
func (m *Suback) Type() MsgType { return TypeSuback }

// Len returns the encoded length of m.
func (m *Suback) Len() int { return 8 }

// Append appends the encoded message to dst.
func (m *Suback) Append(dst []byte) ([]byte, error) {
	if err := checkQoS(TypeSuback, m.QoS); err != nil {
		return dst, err
	}
	if err := checkRC(TypeSuback, m.ReturnCode); err != nil {
		return dst, err
	}
	dst, err := appendHeader(dst, TypeSuback, 6)
	if err != nil {
		return dst, err
	}
	dst = append16(append16(append(dst, byte(Flags(0).WithQoS(m.QoS))), m.TopicID), m.MsgID)
	return append(dst, byte(m.ReturnCode)), nil
}

func (m *Suback) decodeBody(b []byte, off int) error {
	if err := exactBody(TypeSuback, b, off, 6); err != nil {
		return err
	}
	rc, err := decodeRC(TypeSuback, b[5], off+5)
	*m = Suback{QoS: Flags(b[0]).QoS(), TopicID: be16(b[1:]), MsgID: be16(b[3:]), ReturnCode: rc}
	return err
}

// Unsubscribe is UNSUBSCRIBE, laid out like Subscribe without QoS and DUP.
type Unsubscribe struct {
	TopicIDType TopicIDType // TopicIDType selects TopicName (normal) or TopicID.
	MsgID       uint16      // MsgID matches the UNSUBACK.
	TopicID     uint16      // TopicID is the pre-defined ID or short name; unused for normal.
	TopicName   []byte      // TopicName is the topic filter, for normal only; it must not be empty.
}

// Type returns TypeUnsubscribe.
func (m *Unsubscribe) Type() MsgType { return TypeUnsubscribe }

// Len returns the encoded length of m.
func (m *Unsubscribe) Len() int { return frameLen(3 + topicFieldLen(m.TopicIDType, m.TopicName)) }

// Append appends the encoded message to dst.
func (m *Unsubscribe) Append(dst []byte) ([]byte, error) {
	return appendTopicRequest(dst, TypeUnsubscribe, 0, m.TopicIDType, m.MsgID, m.TopicID, m.TopicName)
}

func (m *Unsubscribe) decodeBody(b []byte, off int) error {
	f, mid, tid, name, err := decodeTopicRequest(TypeUnsubscribe, b, off)
	*m = Unsubscribe{TopicIDType: f.TopicIDType(), MsgID: mid, TopicID: tid, TopicName: name}
	return err
}

// Unsuback is UNSUBACK: the answer to UNSUBSCRIBE.
type Unsuback struct {
	MsgID uint16 // MsgID echoes the UNSUBSCRIBE.
}

// Type returns TypeUnsuback.
func (m *Unsuback) Type() MsgType { return TypeUnsuback }

// Len returns the encoded length of m.
func (m *Unsuback) Len() int { return 4 }

// Append appends the encoded message to dst.
func (m *Unsuback) Append(dst []byte) ([]byte, error) {
	return appendMsgID(dst, TypeUnsuback, m.MsgID)
}

func (m *Unsuback) decodeBody(b []byte, off int) (err error) {
	m.MsgID, err = decodeMsgID(TypeUnsuback, b, off)
	return err
}

// topicFieldLen is the size of the topic field of SUBSCRIBE/UNSUBSCRIBE.
func topicFieldLen(tt TopicIDType, name []byte) int {
	if tt == TopicIDNormal {
		return len(name)
	}
	return 2
}

// appendTopicRequest encodes SUBSCRIBE and UNSUBSCRIBE: Flags, MsgId, then
// a topic name or a 2-byte topic ID.
func appendTopicRequest(dst []byte, t MsgType, f Flags, tt TopicIDType, msgID, topicID uint16, name []byte) ([]byte, error) {
	if err := checkTopicIDType(t, tt); err != nil {
		return dst, err
	}
	if tt == TopicIDNormal && len(name) == 0 {
		return dst, encodeErr(t, "TopicName", ErrEmptyField, "")
	}
	dst, err := appendHeader(dst, t, 3+topicFieldLen(tt, name))
	if err != nil {
		return dst, err
	}
	dst = append16(append(dst, byte(f.WithTopicIDType(tt))), msgID)
	if tt == TopicIDNormal {
		return append(dst, name...), nil
	}
	return append16(dst, topicID), nil
}

// decodeTopicRequest decodes SUBSCRIBE and UNSUBSCRIBE. Exactly one of
// topicID and name is meaningful, chosen by the TopicIdType in f.
func decodeTopicRequest(t MsgType, b []byte, off int) (f Flags, msgID, topicID uint16, name []byte, err error) {
	if err = minBody(t, b, off, 4); err != nil {
		return 0, 0, 0, nil, err
	}
	f = Flags(b[0])
	tt, err := decodeTopicIDType(t, f, off)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	msgID = be16(b[1:])
	if tt == TopicIDNormal {
		return f, msgID, 0, b[3:], nil
	}
	if err = exactBody(t, b, off, 5); err != nil {
		return 0, 0, 0, nil, err
	}
	return f, msgID, be16(b[3:]), nil, nil
}
