package sn

// Connect is CONNECT: a client opens a session.
type Connect struct {
	Will         bool    // Will asks the gateway to prompt for the will topic and message.
	CleanSession bool    // CleanSession discards any previous session state.
	ProtocolID   Version // ProtocolID is the protocol version; V12 for MQTT-SN 1.2. It is encoded as given.
	Duration     uint16  // Duration is the keep-alive period in seconds.
	ClientID     []byte  // ClientID identifies the client; it must not be empty.
}

// Type returns TypeConnect.
func (m *Connect) Type() MsgType { return TypeConnect }

// Len returns the encoded length of m.
func (m *Connect) Len() int { return frameLen(4 + len(m.ClientID)) }

// Append appends the encoded message to dst.
func (m *Connect) Append(dst []byte) ([]byte, error) {
	if len(m.ClientID) == 0 {
		return dst, encodeErr(TypeConnect, "ClientId", ErrEmptyClientID, "")
	}
	dst, err := appendHeader(dst, TypeConnect, 4+len(m.ClientID))
	if err != nil {
		return dst, err
	}
	f := Flags(0).with(FlagWill, m.Will).with(FlagCleanSession, m.CleanSession)
	dst = append16(append(dst, byte(f), byte(m.ProtocolID)), m.Duration)
	return append(dst, m.ClientID...), nil
}

func (m *Connect) decodeBody(b []byte, off int) error {
	if len(b) == 4 {
		return decodeErr(TypeConnect, off+4, "ClientId", ErrEmptyClientID, "")
	}
	if err := minBody(TypeConnect, b, off, 5); err != nil {
		return err
	}
	f := Flags(b[0])
	*m = Connect{
		Will:         f.Will(),
		CleanSession: f.CleanSession(),
		ProtocolID:   Version(b[1]),
		Duration:     be16(b[2:]),
		ClientID:     b[4:],
	}
	return nil
}

// Connack is CONNACK: the gateway's answer to CONNECT.
type Connack struct {
	ReturnCode ReturnCode // ReturnCode is Accepted or the reason for rejection.
}

// Type returns TypeConnack.
func (m *Connack) Type() MsgType { return TypeConnack }

// Len returns the encoded length of m.
func (m *Connack) Len() int { return frameLen(1) }

// Append appends the encoded message to dst.
func (m *Connack) Append(dst []byte) ([]byte, error) {
	return appendRC(dst, TypeConnack, m.ReturnCode)
}

func (m *Connack) decodeBody(b []byte, off int) error {
	rc, err := decodeRCBody(TypeConnack, b, off)
	m.ReturnCode = rc
	return err
}

// WillTopicReq is WILLTOPICREQ: the gateway asks for the will topic.
type WillTopicReq struct{}

// Type returns TypeWillTopicReq.
func (m *WillTopicReq) Type() MsgType { return TypeWillTopicReq }

// Len returns the encoded length of m.
func (m *WillTopicReq) Len() int { return 2 }

// Append appends the encoded message to dst.
func (m *WillTopicReq) Append(dst []byte) ([]byte, error) {
	return appendHeader(dst, TypeWillTopicReq, 0)
}

func (m *WillTopicReq) decodeBody(b []byte, off int) error {
	return exactBody(TypeWillTopicReq, b, off, 0)
}

// WillTopic is WILLTOPIC: the client's will topic, sent during CONNECT. An
// empty Topic encodes as the header-only form, which means "no will".
type WillTopic struct {
	QoS    QoS    // QoS is the will message's QoS.
	Retain bool   // Retain is the will message's retain flag.
	Topic  []byte // Topic is the will topic name; empty for the header-only form.
}

// Type returns TypeWillTopic.
func (m *WillTopic) Type() MsgType { return TypeWillTopic }

// Len returns the encoded length of m.
func (m *WillTopic) Len() int { return willTopicLen(m.Topic) }

// Append appends the encoded message to dst.
func (m *WillTopic) Append(dst []byte) ([]byte, error) {
	return appendWillTopic(dst, TypeWillTopic, m.QoS, m.Retain, m.Topic)
}

func (m *WillTopic) decodeBody(b []byte, off int) error {
	q, r, t, err := decodeWillTopic(TypeWillTopic, b, off)
	*m = WillTopic{QoS: q, Retain: r, Topic: t}
	return err
}

// WillMsgReq is WILLMSGREQ: the gateway asks for the will message.
type WillMsgReq struct{}

// Type returns TypeWillMsgReq.
func (m *WillMsgReq) Type() MsgType { return TypeWillMsgReq }

// Len returns the encoded length of m.
func (m *WillMsgReq) Len() int { return 2 }

// Append appends the encoded message to dst.
func (m *WillMsgReq) Append(dst []byte) ([]byte, error) {
	return appendHeader(dst, TypeWillMsgReq, 0)
}

func (m *WillMsgReq) decodeBody(b []byte, off int) error {
	return exactBody(TypeWillMsgReq, b, off, 0)
}

// WillMsg is WILLMSG: the client's will message, sent during CONNECT.
type WillMsg struct {
	Msg []byte // Msg is the will message payload; it may be empty.
}

// Type returns TypeWillMsg.
func (m *WillMsg) Type() MsgType { return TypeWillMsg }

// Len returns the encoded length of m.
func (m *WillMsg) Len() int { return frameLen(len(m.Msg)) }

// Append appends the encoded message to dst.
func (m *WillMsg) Append(dst []byte) ([]byte, error) {
	dst, err := appendHeader(dst, TypeWillMsg, len(m.Msg))
	if err != nil {
		return dst, err
	}
	return append(dst, m.Msg...), nil
}

func (m *WillMsg) decodeBody(b []byte, off int) error {
	m.Msg = nilIfEmpty(b)
	return nil
}

// Pingreq is PINGREQ: a keep-alive probe, or, with a ClientID, a sleeping
// client waking up to collect buffered messages.
type Pingreq struct {
	ClientID []byte // ClientID is present only when a sleeping client wakes.
}

// Type returns TypePingreq.
func (m *Pingreq) Type() MsgType { return TypePingreq }

// Len returns the encoded length of m.
func (m *Pingreq) Len() int { return frameLen(len(m.ClientID)) }

// Append appends the encoded message to dst.
func (m *Pingreq) Append(dst []byte) ([]byte, error) {
	dst, err := appendHeader(dst, TypePingreq, len(m.ClientID))
	if err != nil {
		return dst, err
	}
	return append(dst, m.ClientID...), nil
}

func (m *Pingreq) decodeBody(b []byte, off int) error {
	m.ClientID = nilIfEmpty(b)
	return nil
}

// Pingresp is PINGRESP: the answer to PINGREQ; for a waking client it
// also ends the awake period.
type Pingresp struct{}

// Type returns TypePingresp.
func (m *Pingresp) Type() MsgType { return TypePingresp }

// Len returns the encoded length of m.
func (m *Pingresp) Len() int { return 2 }

// Append appends the encoded message to dst.
func (m *Pingresp) Append(dst []byte) ([]byte, error) {
	return appendHeader(dst, TypePingresp, 0)
}

func (m *Pingresp) decodeBody(b []byte, off int) error {
	return exactBody(TypePingresp, b, off, 0)
}

// Disconnect is DISCONNECT. With HasDuration set, a client announces that
// it goes to sleep for Duration seconds.
type Disconnect struct {
	HasDuration bool   // HasDuration says whether the Duration field is present (4-byte form).
	Duration    uint16 // Duration is the sleep duration in seconds, when HasDuration is set.
}

// Type returns TypeDisconnect.
func (m *Disconnect) Type() MsgType { return TypeDisconnect }

// Len returns the encoded length of m.
func (m *Disconnect) Len() int {
	if m.HasDuration {
		return 4
	}
	return 2
}

// Append appends the encoded message to dst.
func (m *Disconnect) Append(dst []byte) ([]byte, error) {
	if !m.HasDuration {
		return appendHeader(dst, TypeDisconnect, 0)
	}
	dst, err := appendHeader(dst, TypeDisconnect, 2)
	if err != nil {
		return dst, err
	}
	return append16(dst, m.Duration), nil
}

func (m *Disconnect) decodeBody(b []byte, off int) error {
	switch len(b) {
	case 0:
		*m = Disconnect{}
		return nil
	case 2:
		*m = Disconnect{HasDuration: true, Duration: be16(b)}
		return nil
	}
	return decodeErr(TypeDisconnect, off, "", ErrBadLength,
		"must be 2 or 4 bytes, message has "+itoa(off+len(b)))
}

// WillTopicUpd is WILLTOPICUPD: the client changes its will topic. An empty
// Topic (header-only form) deletes the will topic and message.
type WillTopicUpd struct {
	QoS    QoS    // QoS is the will message's QoS.
	Retain bool   // Retain is the will message's retain flag.
	Topic  []byte // Topic is the new will topic; empty for the header-only form.
}

// Type returns TypeWillTopicUpd.
func (m *WillTopicUpd) Type() MsgType { return TypeWillTopicUpd }

// Len returns the encoded length of m.
func (m *WillTopicUpd) Len() int { return willTopicLen(m.Topic) }

// Append appends the encoded message to dst.
func (m *WillTopicUpd) Append(dst []byte) ([]byte, error) {
	return appendWillTopic(dst, TypeWillTopicUpd, m.QoS, m.Retain, m.Topic)
}

func (m *WillTopicUpd) decodeBody(b []byte, off int) error {
	q, r, t, err := decodeWillTopic(TypeWillTopicUpd, b, off)
	*m = WillTopicUpd{QoS: q, Retain: r, Topic: t}
	return err
}

// WillTopicResp is WILLTOPICRESP: the answer to WILLTOPICUPD.
type WillTopicResp struct {
	ReturnCode ReturnCode // ReturnCode is Accepted or the reason for rejection.
}

// Type returns TypeWillTopicResp.
func (m *WillTopicResp) Type() MsgType { return TypeWillTopicResp }

// Len returns the encoded length of m.
func (m *WillTopicResp) Len() int { return frameLen(1) }

// Append appends the encoded message to dst.
func (m *WillTopicResp) Append(dst []byte) ([]byte, error) {
	return appendRC(dst, TypeWillTopicResp, m.ReturnCode)
}

func (m *WillTopicResp) decodeBody(b []byte, off int) error {
	rc, err := decodeRCBody(TypeWillTopicResp, b, off)
	m.ReturnCode = rc
	return err
}

// WillMsgUpd is WILLMSGUPD: the client changes its will message.
type WillMsgUpd struct {
	Msg []byte // Msg is the new will message payload; it may be empty.
}

// Type returns TypeWillMsgUpd.
func (m *WillMsgUpd) Type() MsgType { return TypeWillMsgUpd }

// Len returns the encoded length of m.
func (m *WillMsgUpd) Len() int { return frameLen(len(m.Msg)) }

// Append appends the encoded message to dst.
func (m *WillMsgUpd) Append(dst []byte) ([]byte, error) {
	dst, err := appendHeader(dst, TypeWillMsgUpd, len(m.Msg))
	if err != nil {
		return dst, err
	}
	return append(dst, m.Msg...), nil
}

func (m *WillMsgUpd) decodeBody(b []byte, off int) error {
	m.Msg = nilIfEmpty(b)
	return nil
}

// WillMsgResp is WILLMSGRESP: the answer to WILLMSGUPD.
type WillMsgResp struct {
	ReturnCode ReturnCode // ReturnCode is Accepted or the reason for rejection.
}

// Type returns TypeWillMsgResp.
func (m *WillMsgResp) Type() MsgType { return TypeWillMsgResp }

// Len returns the encoded length of m.
func (m *WillMsgResp) Len() int { return frameLen(1) }

// Append appends the encoded message to dst.
func (m *WillMsgResp) Append(dst []byte) ([]byte, error) {
	return appendRC(dst, TypeWillMsgResp, m.ReturnCode)
}

func (m *WillMsgResp) decodeBody(b []byte, off int) error {
	rc, err := decodeRCBody(TypeWillMsgResp, b, off)
	m.ReturnCode = rc
	return err
}

// appendRC encodes a message whose only field is a ReturnCode.
func appendRC(dst []byte, t MsgType, rc ReturnCode) ([]byte, error) {
	if err := checkRC(t, rc); err != nil {
		return dst, err
	}
	dst, err := appendHeader(dst, t, 1)
	if err != nil {
		return dst, err
	}
	return append(dst, byte(rc)), nil
}

// decodeRCBody decodes a variable part that is exactly one ReturnCode.
func decodeRCBody(t MsgType, b []byte, off int) (ReturnCode, error) {
	if err := exactBody(t, b, off, 1); err != nil {
		return 0, err
	}
	return decodeRC(t, b[0], off)
}

func willTopicLen(topic []byte) int {
	if len(topic) == 0 {
		return 2
	}
	return frameLen(1 + len(topic))
}

// appendWillTopic encodes WILLTOPIC and WILLTOPICUPD.
func appendWillTopic(dst []byte, t MsgType, q QoS, retain bool, topic []byte) ([]byte, error) {
	if len(topic) == 0 {
		return appendHeader(dst, t, 0)
	}
	if err := checkQoS(t, q); err != nil {
		return dst, err
	}
	dst, err := appendHeader(dst, t, 1+len(topic))
	if err != nil {
		return dst, err
	}
	f := Flags(0).WithQoS(q).with(FlagRetain, retain)
	return append(append(dst, byte(f)), topic...), nil
}

// decodeWillTopic decodes WILLTOPIC and WILLTOPICUPD: either header-only,
// or Flags followed by a non-empty topic.
func decodeWillTopic(t MsgType, b []byte, off int) (QoS, bool, []byte, error) {
	switch len(b) {
	case 0:
		return 0, false, nil, nil
	case 1:
		return 0, false, nil, decodeErr(t, off+1, "WillTopic", ErrTruncated,
			"Flags present but no topic (header-only form is 2 bytes)")
	}
	f := Flags(b[0])
	return f.QoS(), f.Retain(), b[1:], nil
}
