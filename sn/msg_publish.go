package sn

// Register is REGISTER. A client sends it with TopicID 0 to ask for a topic
// ID; a gateway sends it to tell a client the ID it will use for a topic.
type Register struct {
	TopicID   uint16 // TopicID is 0 from a client, the assigned ID from a gateway.
	MsgID     uint16 // MsgID matches the REGACK.
	TopicName []byte // TopicName is the topic; it must not be empty.
}

// Type returns TypeRegister.
func (m *Register) Type() MsgType { return TypeRegister }

// Len returns the encoded length of m.
func (m *Register) Len() int { return frameLen(4 + len(m.TopicName)) }

// Append appends the encoded message to dst.
func (m *Register) Append(dst []byte) ([]byte, error) {
	if len(m.TopicName) == 0 {
		return dst, encodeErr(TypeRegister, "TopicName", ErrEmptyField, "")
	}
	dst, err := appendHeader(dst, TypeRegister, 4+len(m.TopicName))
	if err != nil {
		return dst, err
	}
	dst = append16(append16(dst, m.TopicID), m.MsgID)
	return append(dst, m.TopicName...), nil
}

func (m *Register) decodeBody(b []byte, off int) error {
	if err := minBody(TypeRegister, b, off, 5); err != nil {
		return err
	}
	*m = Register{TopicID: be16(b), MsgID: be16(b[2:]), TopicName: b[4:]}
	return nil
}

// Regack is REGACK: the answer to REGISTER.
type Regack struct {
	TopicID    uint16     // TopicID is the assigned topic ID (gateway to client).
	MsgID      uint16     // MsgID echoes the REGISTER.
	ReturnCode ReturnCode // ReturnCode is Accepted or the reason for rejection.
}

// Type returns TypeRegack.
func (m *Regack) Type() MsgType { return TypeRegack }

// Len returns the encoded length of m.
func (m *Regack) Len() int { return 7 }

// Append appends the encoded message to dst.
func (m *Regack) Append(dst []byte) ([]byte, error) {
	return appendIDsRC(dst, TypeRegack, m.TopicID, m.MsgID, m.ReturnCode)
}

func (m *Regack) decodeBody(b []byte, off int) error {
	tid, mid, rc, err := decodeIDsRC(TypeRegack, b, off)
	*m = Regack{TopicID: tid, MsgID: mid, ReturnCode: rc}
	return err
}

// Publish is PUBLISH, in either direction.
type Publish struct {
	Dup         bool        // Dup marks a retransmission.
	QoS         QoS         // QoS is 0, 1, 2 or QoSMinus1.
	Retain      bool        // Retain asks the broker to retain the message.
	TopicIDType TopicIDType // TopicIDType says how to read TopicID.
	TopicID     uint16      // TopicID is a registered or pre-defined ID, or a short name (see ShortTopicID).
	MsgID       uint16      // MsgID is the message ID; 0 for QoS 0 and -1.
	Data        []byte      // Data is the payload. A decoded Data aliases the input.
}

// Type returns TypePublish.
func (m *Publish) Type() MsgType { return TypePublish }

// Len returns the encoded length of m.
func (m *Publish) Len() int { return frameLen(5 + len(m.Data)) }

// Flags returns the Flags byte m encodes to.
func (m *Publish) Flags() Flags {
	return Flags(0).with(FlagDup, m.Dup).WithQoS(m.QoS).with(FlagRetain, m.Retain).
		WithTopicIDType(m.TopicIDType)
}

// Append appends the encoded message to dst.
func (m *Publish) Append(dst []byte) ([]byte, error) {
	if !m.QoS.Valid() {
		return dst, checkQoS(TypePublish, m.QoS)
	}
	if m.TopicIDType >= TopicIDReserved {
		return dst, checkTopicIDType(TypePublish, m.TopicIDType)
	}
	dst, err := appendHeader(dst, TypePublish, 5+len(m.Data))
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(m.Flags()), byte(m.TopicID>>8), byte(m.TopicID), byte(m.MsgID>>8), byte(m.MsgID))
	return append(dst, m.Data...), nil
}

func (m *Publish) decodeBody(b []byte, off int) error {
	if len(b) < 5 {
		return minBody(TypePublish, b, off, 5)
	}
	f := Flags(b[0])
	if f&flagTopicMask == Flags(TopicIDReserved) {
		return decodeErr(TypePublish, off, "TopicIdType", ErrReserved, "0b11")
	}
	m.Dup = f&FlagDup != 0
	m.QoS = f.QoS()
	m.Retain = f&FlagRetain != 0
	m.TopicIDType = f.TopicIDType()
	m.TopicID = be16(b[1:])
	m.MsgID = be16(b[3:])
	m.Data = nilIfEmpty(b[5:])
	return nil
}

// LongTopic splits the payload of a QoS -1 PUBLISH that uses the Paho
// "long topic name" extension (QoS -1 with TopicIDType normal): there
// TopicID holds the length of a topic name that precedes the payload in
// Data. It reports false when m is not such a message or the name does not
// fit. Both results alias m.Data.
func (m *Publish) LongTopic() (name, payload []byte, ok bool) {
	if m.QoS != QoSMinus1 || m.TopicIDType != TopicIDNormal {
		return nil, nil, false
	}
	n := int(m.TopicID)
	if n == 0 || n > len(m.Data) {
		return nil, nil, false
	}
	return m.Data[:n], m.Data[n:], true
}

// Puback is PUBACK: the answer to a QoS 1 PUBLISH, or a rejection of a
// PUBLISH of any QoS.
type Puback struct {
	TopicID    uint16     // TopicID echoes the PUBLISH.
	MsgID      uint16     // MsgID echoes the PUBLISH.
	ReturnCode ReturnCode // ReturnCode is Accepted or the reason for rejection.
}

// Type returns TypePuback.
func (m *Puback) Type() MsgType { return TypePuback }

// Len returns the encoded length of m.
func (m *Puback) Len() int { return 7 }

// Append appends the encoded message to dst.
func (m *Puback) Append(dst []byte) ([]byte, error) {
	return appendIDsRC(dst, TypePuback, m.TopicID, m.MsgID, m.ReturnCode)
}

func (m *Puback) decodeBody(b []byte, off int) error {
	tid, mid, rc, err := decodeIDsRC(TypePuback, b, off)
	*m = Puback{TopicID: tid, MsgID: mid, ReturnCode: rc}
	return err
}

// Pubcomp is PUBCOMP: the last step of a QoS 2 flow.
type Pubcomp struct {
	MsgID uint16 // MsgID echoes the PUBLISH.
}

// Type returns TypePubcomp.
func (m *Pubcomp) Type() MsgType { return TypePubcomp }

// Len returns the encoded length of m.
func (m *Pubcomp) Len() int { return 4 }

// Append appends the encoded message to dst.
func (m *Pubcomp) Append(dst []byte) ([]byte, error) {
	return appendMsgID(dst, TypePubcomp, m.MsgID)
}

func (m *Pubcomp) decodeBody(b []byte, off int) (err error) {
	m.MsgID, err = decodeMsgID(TypePubcomp, b, off)
	return err
}

// Pubrec is PUBREC: the first answer in a QoS 2 flow.
type Pubrec struct {
	MsgID uint16 // MsgID echoes the PUBLISH.
}

// Type returns TypePubrec.
func (m *Pubrec) Type() MsgType { return TypePubrec }

// Len returns the encoded length of m.
func (m *Pubrec) Len() int { return 4 }

// Append appends the encoded message to dst.
func (m *Pubrec) Append(dst []byte) ([]byte, error) {
	return appendMsgID(dst, TypePubrec, m.MsgID)
}

func (m *Pubrec) decodeBody(b []byte, off int) (err error) {
	m.MsgID, err = decodeMsgID(TypePubrec, b, off)
	return err
}

// Pubrel is PUBREL: the sender's release in a QoS 2 flow.
type Pubrel struct {
	MsgID uint16 // MsgID echoes the PUBLISH.
}

// Type returns TypePubrel.
func (m *Pubrel) Type() MsgType { return TypePubrel }

// Len returns the encoded length of m.
func (m *Pubrel) Len() int { return 4 }

// Append appends the encoded message to dst.
func (m *Pubrel) Append(dst []byte) ([]byte, error) {
	return appendMsgID(dst, TypePubrel, m.MsgID)
}

func (m *Pubrel) decodeBody(b []byte, off int) (err error) {
	m.MsgID, err = decodeMsgID(TypePubrel, b, off)
	return err
}

// appendMsgID encodes a message whose only field is a MsgId.
func appendMsgID(dst []byte, t MsgType, id uint16) ([]byte, error) {
	dst, err := appendHeader(dst, t, 2)
	if err != nil {
		return dst, err
	}
	return append16(dst, id), nil
}

// decodeMsgID decodes a variable part that is exactly one MsgId.
func decodeMsgID(t MsgType, b []byte, off int) (uint16, error) {
	if err := exactBody(t, b, off, 2); err != nil {
		return 0, err
	}
	return be16(b), nil
}

// appendIDsRC encodes REGACK and PUBACK: TopicId, MsgId, ReturnCode.
func appendIDsRC(dst []byte, t MsgType, topicID, msgID uint16, rc ReturnCode) ([]byte, error) {
	if err := checkRC(t, rc); err != nil {
		return dst, err
	}
	dst, err := appendHeader(dst, t, 5)
	if err != nil {
		return dst, err
	}
	return append(append16(append16(dst, topicID), msgID), byte(rc)), nil
}

// decodeIDsRC decodes REGACK and PUBACK.
func decodeIDsRC(t MsgType, b []byte, off int) (topicID, msgID uint16, rc ReturnCode, err error) {
	if err = exactBody(t, b, off, 5); err != nil {
		return 0, 0, 0, err
	}
	rc, err = decodeRC(t, b[4], off+4)
	return be16(b), be16(b[2:]), rc, err
}
