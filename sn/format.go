package sn

import "strconv"

// line builds the one-line "NAME key=value ..." rendering of a message.
type line []byte

func newLine(t MsgType) line { return append(make(line, 0, 96), t.String()...) }

func (l line) key(k string) line { return append(append(append(l, ' '), k...), '=') }

func (l line) str(k, v string) line { return append(l.key(k), v...) }

func (l line) uint(k string, v uint64) line { return strconv.AppendUint(l.key(k), v, 10) }

func (l line) hex8(k string, v uint8) line {
	return append(l.key(k), '0', 'x', hexDigits[v>>4], hexDigits[v&15])
}

func (l line) bit(k string, v bool) line {
	if v {
		return append(l.key(k), '1')
	}
	return append(l.key(k), '0')
}

func (l line) quote(k string, v []byte) line { return strconv.AppendQuote(l.key(k), string(v)) }

func (l line) rc(c ReturnCode) line {
	switch c {
	case Accepted:
		return l.str("rc", "accepted")
	case RejectedCongestion:
		return l.str("rc", "congestion")
	case RejectedInvalidTopicID:
		return l.str("rc", "invalidTopicId")
	case RejectedNotSupported:
		return l.str("rc", "notSupported")
	}
	return l.hex8("rc", uint8(c))
}

// topic renders a topic ID field according to its type: a number, or the
// two characters of a short name.
func (l line) topic(tt TopicIDType, id uint16) line {
	if tt == TopicIDShort {
		return strconv.AppendQuote(l.key("topicId"), ShortTopicName(id))
	}
	return l.uint("topicId", uint64(id))
}

// String returns the rendered line.
func (l line) String() string { return string(l) }

// String renders m on one line.
func (m *Advertise) String() string {
	return newLine(TypeAdvertise).uint("gwId", uint64(m.GwID)).uint("duration", uint64(m.Duration)).String()
}

// String renders m on one line.
func (m *SearchGW) String() string {
	return newLine(TypeSearchGW).uint("radius", uint64(m.Radius)).String()
}

// String renders m on one line.
func (m *GWInfo) String() string {
	l := newLine(TypeGWInfo).uint("gwId", uint64(m.GwID))
	if len(m.GwAdd) > 0 {
		l = appendHex(l.key("gwAdd"), m.GwAdd)
	}
	return l.String()
}

// String renders m on one line.
func (m *Connect) String() string {
	return newLine(TypeConnect).bit("will", m.Will).bit("clean", m.CleanSession).
		hex8("protocolId", uint8(m.ProtocolID)).uint("duration", uint64(m.Duration)).
		quote("clientId", m.ClientID).String()
}

// String renders m on one line.
func (m *Connack) String() string { return newLine(TypeConnack).rc(m.ReturnCode).String() }

// String renders m on one line.
func (m *WillTopicReq) String() string { return TypeWillTopicReq.String() }

// String renders m on one line.
func (m *WillTopic) String() string {
	return formatWillTopic(TypeWillTopic, m.QoS, m.Retain, m.Topic)
}

// String renders m on one line.
func (m *WillMsgReq) String() string { return TypeWillMsgReq.String() }

// String renders m on one line.
func (m *WillMsg) String() string {
	return newLine(TypeWillMsg).uint("len", uint64(len(m.Msg))).quote("msg", m.Msg).String()
}

// String renders m on one line.
func (m *Register) String() string {
	return newLine(TypeRegister).uint("topicId", uint64(m.TopicID)).uint("msgId", uint64(m.MsgID)).
		quote("topic", m.TopicName).String()
}

// String renders m on one line.
func (m *Regack) String() string {
	return newLine(TypeRegack).uint("topicId", uint64(m.TopicID)).uint("msgId", uint64(m.MsgID)).
		rc(m.ReturnCode).String()
}

// String renders m on one line, for example
// "PUBLISH dup=0 qos=1 retain=0 topicType=normal topicId=1 msgId=5 len=2".
func (m *Publish) String() string {
	return newLine(TypePublish).bit("dup", m.Dup).str("qos", m.QoS.String()).bit("retain", m.Retain).
		str("topicType", m.TopicIDType.String()).topic(m.TopicIDType, m.TopicID).
		uint("msgId", uint64(m.MsgID)).uint("len", uint64(len(m.Data))).String()
}

// String renders m on one line.
func (m *Puback) String() string {
	return newLine(TypePuback).uint("topicId", uint64(m.TopicID)).uint("msgId", uint64(m.MsgID)).
		rc(m.ReturnCode).String()
}

// String renders m on one line.
func (m *Pubcomp) String() string {
	return newLine(TypePubcomp).uint("msgId", uint64(m.MsgID)).String()
}

// String renders m on one line.
func (m *Pubrec) String() string { return newLine(TypePubrec).uint("msgId", uint64(m.MsgID)).String() }

// String renders m on one line.
func (m *Pubrel) String() string { return newLine(TypePubrel).uint("msgId", uint64(m.MsgID)).String() }

// String renders m on one line.
func (m *Subscribe) String() string {
	l := newLine(TypeSubscribe).bit("dup", m.Dup).str("qos", m.QoS.String())
	return formatTopicRequest(l, m.TopicIDType, m.MsgID, m.TopicID, m.TopicName)
}

// String renders m on one line.
func (m *Suback) String() string {
	return newLine(TypeSuback).str("qos", m.QoS.String()).uint("topicId", uint64(m.TopicID)).
		uint("msgId", uint64(m.MsgID)).rc(m.ReturnCode).String()
}

// String renders m on one line.
func (m *Unsubscribe) String() string {
	return formatTopicRequest(newLine(TypeUnsubscribe), m.TopicIDType, m.MsgID, m.TopicID, m.TopicName)
}

// String renders m on one line.
func (m *Unsuback) String() string {
	return newLine(TypeUnsuback).uint("msgId", uint64(m.MsgID)).String()
}

// String renders m on one line.
func (m *Pingreq) String() string {
	l := newLine(TypePingreq)
	if len(m.ClientID) > 0 {
		l = l.quote("clientId", m.ClientID)
	}
	return l.String()
}

// String renders m on one line.
func (m *Pingresp) String() string { return TypePingresp.String() }

// String renders m on one line.
func (m *Disconnect) String() string {
	l := newLine(TypeDisconnect)
	if m.HasDuration {
		l = l.uint("duration", uint64(m.Duration))
	}
	return l.String()
}

// String renders m on one line.
func (m *WillTopicUpd) String() string {
	return formatWillTopic(TypeWillTopicUpd, m.QoS, m.Retain, m.Topic)
}

// String renders m on one line.
func (m *WillTopicResp) String() string { return newLine(TypeWillTopicResp).rc(m.ReturnCode).String() }

// String renders m on one line.
func (m *WillMsgUpd) String() string {
	return newLine(TypeWillMsgUpd).uint("len", uint64(len(m.Msg))).quote("msg", m.Msg).String()
}

// String renders m on one line.
func (m *WillMsgResp) String() string { return newLine(TypeWillMsgResp).rc(m.ReturnCode).String() }

// String renders the frame and, in braces, the encapsulated message.
func (m *Encapsulated) String() string {
	l := newLine(TypeEncapsulated).hex8("ctrl", m.Ctrl).uint("radius", uint64(m.Radius()))
	l = appendHex(l.key("nodeId"), m.NodeID)
	if m.WholeLength {
		l = l.bit("wholeLength", true)
	}
	var p Packet
	if err := Decode(m.Message, &p); err != nil {
		l = append(l, " {"...)
		l = append(l, err.Error()...)
		return append(l, '}').String()
	}
	l = append(l, " {"...)
	l = append(l, p.String()...)
	return append(l, '}').String()
}

func formatWillTopic(t MsgType, q QoS, retain bool, topic []byte) string {
	l := newLine(t)
	if len(topic) == 0 {
		return l.str("topic", `""`).String()
	}
	return l.str("qos", q.String()).bit("retain", retain).quote("topic", topic).String()
}

func formatTopicRequest(l line, tt TopicIDType, msgID, topicID uint16, name []byte) string {
	l = l.str("topicType", tt.String()).uint("msgId", uint64(msgID))
	if tt == TopicIDNormal {
		return l.quote("topic", name).String()
	}
	return l.topic(tt, topicID).String()
}

func appendHex(l line, b []byte) line {
	l = append(l, '0', 'x')
	for _, c := range b {
		l = append(l, hexDigits[c>>4], hexDigits[c&15])
	}
	return l
}
