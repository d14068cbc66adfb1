package sn

import "strconv"

// MsgType is a logical MQTT-SN message type. It is not the wire code: a
// Version maps between the two, because MQTT-SN 2.0 numbers its packets
// differently from 1.2.
type MsgType uint8

// Message types of MQTT-SN 1.2. TypeInvalid is the zero value and never
// appears on the wire.
const (
	TypeInvalid       MsgType = iota // TypeInvalid is the zero MsgType; no message has it.
	TypeAdvertise                    // TypeAdvertise is ADVERTISE.
	TypeSearchGW                     // TypeSearchGW is SEARCHGW.
	TypeGWInfo                       // TypeGWInfo is GWINFO.
	TypeConnect                      // TypeConnect is CONNECT.
	TypeConnack                      // TypeConnack is CONNACK.
	TypeWillTopicReq                 // TypeWillTopicReq is WILLTOPICREQ.
	TypeWillTopic                    // TypeWillTopic is WILLTOPIC.
	TypeWillMsgReq                   // TypeWillMsgReq is WILLMSGREQ.
	TypeWillMsg                      // TypeWillMsg is WILLMSG.
	TypeRegister                     // TypeRegister is REGISTER.
	TypeRegack                       // TypeRegack is REGACK.
	TypePublish                      // TypePublish is PUBLISH.
	TypePuback                       // TypePuback is PUBACK.
	TypePubcomp                      // TypePubcomp is PUBCOMP.
	TypePubrec                       // TypePubrec is PUBREC.
	TypePubrel                       // TypePubrel is PUBREL.
	TypeSubscribe                    // TypeSubscribe is SUBSCRIBE.
	TypeSuback                       // TypeSuback is SUBACK.
	TypeUnsubscribe                  // TypeUnsubscribe is UNSUBSCRIBE.
	TypeUnsuback                     // TypeUnsuback is UNSUBACK.
	TypePingreq                      // TypePingreq is PINGREQ.
	TypePingresp                     // TypePingresp is PINGRESP.
	TypeDisconnect                   // TypeDisconnect is DISCONNECT.
	TypeWillTopicUpd                 // TypeWillTopicUpd is WILLTOPICUPD.
	TypeWillTopicResp                // TypeWillTopicResp is WILLTOPICRESP.
	TypeWillMsgUpd                   // TypeWillMsgUpd is WILLMSGUPD.
	TypeWillMsgResp                  // TypeWillMsgResp is WILLMSGRESP.
	TypeEncapsulated                 // TypeEncapsulated is the forwarder encapsulation (ENCAPSULATED).

	numMsgTypes // numMsgTypes bounds the per-version tables.
)

var msgTypeNames = [numMsgTypes]string{
	TypeInvalid:       "INVALID",
	TypeAdvertise:     "ADVERTISE",
	TypeSearchGW:      "SEARCHGW",
	TypeGWInfo:        "GWINFO",
	TypeConnect:       "CONNECT",
	TypeConnack:       "CONNACK",
	TypeWillTopicReq:  "WILLTOPICREQ",
	TypeWillTopic:     "WILLTOPIC",
	TypeWillMsgReq:    "WILLMSGREQ",
	TypeWillMsg:       "WILLMSG",
	TypeRegister:      "REGISTER",
	TypeRegack:        "REGACK",
	TypePublish:       "PUBLISH",
	TypePuback:        "PUBACK",
	TypePubcomp:       "PUBCOMP",
	TypePubrec:        "PUBREC",
	TypePubrel:        "PUBREL",
	TypeSubscribe:     "SUBSCRIBE",
	TypeSuback:        "SUBACK",
	TypeUnsubscribe:   "UNSUBSCRIBE",
	TypeUnsuback:      "UNSUBACK",
	TypePingreq:       "PINGREQ",
	TypePingresp:      "PINGRESP",
	TypeDisconnect:    "DISCONNECT",
	TypeWillTopicUpd:  "WILLTOPICUPD",
	TypeWillTopicResp: "WILLTOPICRESP",
	TypeWillMsgUpd:    "WILLMSGUPD",
	TypeWillMsgResp:   "WILLMSGRESP",
	TypeEncapsulated:  "ENCAPSULATED",
}

// String returns the specification's name of t, such as "PUBLISH".
func (t MsgType) String() string {
	if t < numMsgTypes {
		return msgTypeNames[t]
	}
	return "MsgType(" + strconv.Itoa(int(t)) + ")"
}

// Version identifies an MQTT-SN protocol version by the protocol ID that its
// CONNECT carries.
type Version uint8

// V12 is MQTT-SN 1.2, protocol ID 0x01. MQTT-SN 2.0 (protocol ID 0x02) is
// not supported yet; it will get its own code table beside v12Table.
const V12 Version = 0x01

// String returns the version number, such as "1.2".
func (v Version) String() string {
	if v == V12 {
		return "1.2"
	}
	return "Version(" + strconv.Itoa(int(v)) + ")"
}

// typeTable maps between logical message types and wire codes for one
// protocol version.
type typeTable struct {
	code   [numMsgTypes]uint16 // wire code + 1; 0 = not in this version
	byCode [256]MsgType        // TypeInvalid = reserved in this version
}

func newTypeTable(codes map[MsgType]byte) *typeTable {
	t := new(typeTable)
	for mt, c := range codes {
		t.code[mt] = uint16(c) + 1
		t.byCode[c] = mt
	}
	return t
}

// lookup returns the message type of wire code c, or TypeInvalid.
func (t *typeTable) lookup(c byte) MsgType { return t.byCode[c] }

// wire returns the wire code of mt and whether this version has it.
func (t *typeTable) wire(mt MsgType) (byte, bool) {
	if mt >= numMsgTypes || t.code[mt] == 0 {
		return 0, false
	}
	return byte(t.code[mt] - 1), true
}

// v12Table is the MQTT-SN 1.2 code table.
var v12Table = newTypeTable(map[MsgType]byte{
	TypeAdvertise:     0x00,
	TypeSearchGW:      0x01,
	TypeGWInfo:        0x02,
	TypeConnect:       0x04,
	TypeConnack:       0x05,
	TypeWillTopicReq:  0x06,
	TypeWillTopic:     0x07,
	TypeWillMsgReq:    0x08,
	TypeWillMsg:       0x09,
	TypeRegister:      0x0A,
	TypeRegack:        0x0B,
	TypePublish:       0x0C,
	TypePuback:        0x0D,
	TypePubcomp:       0x0E,
	TypePubrec:        0x0F,
	TypePubrel:        0x10,
	TypeSubscribe:     0x12,
	TypeSuback:        0x13,
	TypeUnsubscribe:   0x14,
	TypeUnsuback:      0x15,
	TypePingreq:       0x16,
	TypePingresp:      0x17,
	TypeDisconnect:    0x18,
	TypeWillTopicUpd:  0x1A,
	TypeWillTopicResp: 0x1B,
	TypeWillMsgUpd:    0x1C,
	TypeWillMsgResp:   0x1D,
	TypeEncapsulated:  0xFE,
})

// table returns the code table of v, or nil when v is not supported.
func (v Version) table() *typeTable {
	if v == V12 {
		return v12Table
	}
	return nil
}

// Code returns the wire code of message type t in version v, and false when
// v does not have t or v is not supported.
func (v Version) Code(t MsgType) (byte, bool) {
	tbl := v.table()
	if tbl == nil {
		return 0, false
	}
	return tbl.wire(t)
}

// MsgType returns the message type that wire code c denotes in version v,
// or TypeInvalid when c is reserved there or v is not supported.
func (v Version) MsgType(c byte) MsgType {
	tbl := v.table()
	if tbl == nil {
		return TypeInvalid
	}
	return tbl.lookup(c)
}

// QoS is an MQTT-SN quality of service level, as carried in the Flags
// QoS bits (wire values 0..3).
type QoS uint8

// QoS levels. QoSMinus1 ("QoS -1", publish without connection) is wire
// value 3.
const (
	QoS0      QoS = 0 // QoS0 is at most once.
	QoS1      QoS = 1 // QoS1 is at least once.
	QoS2      QoS = 2 // QoS2 is exactly once.
	QoSMinus1 QoS = 3 // QoSMinus1 is QoS -1: publish without a connection, never acknowledged.
)

// String returns "0", "1", "2" or "-1".
func (q QoS) String() string {
	switch q {
	case QoS0, QoS1, QoS2:
		return strconv.Itoa(int(q))
	case QoSMinus1:
		return "-1"
	}
	return "QoS(" + strconv.Itoa(int(q)) + ")"
}

// Valid reports whether q is one of the four wire values.
func (q QoS) Valid() bool { return q <= QoSMinus1 }

// TopicIDType says what the TopicId field of PUBLISH, SUBSCRIBE and
// UNSUBSCRIBE carries (Flags bits 1-0).
type TopicIDType uint8

// Topic ID types. Wire value 3 is reserved and rejected by the decoder.
const (
	TopicIDNormal     TopicIDType = 0 // TopicIDNormal is a registered topic ID (PUBLISH) or a topic name (SUBSCRIBE, UNSUBSCRIBE).
	TopicIDPredefined TopicIDType = 1 // TopicIDPredefined is a pre-defined topic ID.
	TopicIDShort      TopicIDType = 2 // TopicIDShort is a two-character short topic name carried in the TopicId field.
	TopicIDReserved   TopicIDType = 3 // TopicIDReserved is the reserved value; it is never valid on the wire.
)

// String returns "normal", "predefined", "short" or "reserved".
func (t TopicIDType) String() string {
	switch t {
	case TopicIDNormal:
		return "normal"
	case TopicIDPredefined:
		return "predefined"
	case TopicIDShort:
		return "short"
	case TopicIDReserved:
		return "reserved"
	}
	return "TopicIDType(" + strconv.Itoa(int(t)) + ")"
}

// Flags is the MQTT-SN 1.2 Flags byte. Which bits are meaningful depends on
// the message type; the message structs expose them as separate fields.
type Flags uint8

// Single-bit flags.
const (
	FlagDup          Flags = 0x80 // FlagDup marks a retransmitted PUBLISH or SUBSCRIBE.
	FlagRetain       Flags = 0x10 // FlagRetain is the retain flag of PUBLISH, WILLTOPIC and WILLTOPICUPD.
	FlagWill         Flags = 0x08 // FlagWill asks the gateway, in CONNECT, to prompt for the will.
	FlagCleanSession Flags = 0x04 // FlagCleanSession is CONNECT's clean-session flag.

	flagQoSMask   Flags = 0x60
	flagQoSShift        = 5
	flagTopicMask Flags = 0x03
)

// Dup reports the DUP bit.
func (f Flags) Dup() bool { return f&FlagDup != 0 }

// Retain reports the Retain bit.
func (f Flags) Retain() bool { return f&FlagRetain != 0 }

// Will reports the Will bit.
func (f Flags) Will() bool { return f&FlagWill != 0 }

// CleanSession reports the CleanSession bit.
func (f Flags) CleanSession() bool { return f&FlagCleanSession != 0 }

// QoS returns the QoS bits.
func (f Flags) QoS() QoS { return QoS((f & flagQoSMask) >> flagQoSShift) }

// TopicIDType returns the TopicIdType bits.
func (f Flags) TopicIDType() TopicIDType { return TopicIDType(f & flagTopicMask) }

// WithQoS returns f with its QoS bits set to q (q is taken modulo 4).
func (f Flags) WithQoS(q QoS) Flags {
	return f&^flagQoSMask | Flags(q&3)<<flagQoSShift
}

// WithTopicIDType returns f with its TopicIdType bits set to t (modulo 4).
func (f Flags) WithTopicIDType(t TopicIDType) Flags {
	return f&^flagTopicMask | Flags(t&3)
}

// with returns f with bit set when on is true.
func (f Flags) with(bit Flags, on bool) Flags {
	if on {
		return f | bit
	}
	return f &^ bit
}

// ReturnCode is the ReturnCode field of CONNACK, REGACK, PUBACK, SUBACK,
// WILLTOPICRESP and WILLMSGRESP.
type ReturnCode uint8

// Return codes of MQTT-SN 1.2; 0x04..0xFF are reserved and rejected by the
// decoder.
const (
	Accepted               ReturnCode = 0x00 // Accepted is success.
	RejectedCongestion     ReturnCode = 0x01 // RejectedCongestion asks the client to retry later (T_WAIT).
	RejectedInvalidTopicID ReturnCode = 0x02 // RejectedInvalidTopicID reports an unknown or invalid topic ID.
	RejectedNotSupported   ReturnCode = 0x03 // RejectedNotSupported reports an unsupported feature.
)

// String returns a short description of c.
func (c ReturnCode) String() string {
	switch c {
	case Accepted:
		return "accepted"
	case RejectedCongestion:
		return "rejected: congestion"
	case RejectedInvalidTopicID:
		return "rejected: invalid topic ID"
	case RejectedNotSupported:
		return "rejected: not supported"
	}
	return "ReturnCode(0x" + strconv.FormatUint(uint64(c), 16) + ")"
}

// Valid reports whether c is one of the four defined codes.
func (c ReturnCode) Valid() bool { return c <= RejectedNotSupported }

// ShortTopicID returns the TopicId value that carries the two-character
// short topic name s (TopicIDShort). It reports false unless len(s) == 2.
func ShortTopicID(s string) (uint16, bool) {
	if len(s) != 2 {
		return 0, false
	}
	return uint16(s[0])<<8 | uint16(s[1]), true
}

// ShortTopicName returns the two-character short topic name carried in a
// TopicId value of type TopicIDShort.
func ShortTopicName(id uint16) string {
	return string([]byte{byte(id >> 8), byte(id)})
}
