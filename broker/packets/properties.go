package packets

import "math/bits"

// MQTT 5 property identifiers.
const (
	PropPayloadFormat        byte = 0x01
	PropMessageExpiry        byte = 0x02
	PropContentType          byte = 0x03
	PropResponseTopic        byte = 0x08
	PropCorrelationData      byte = 0x09
	PropSubscriptionID       byte = 0x0B
	PropSessionExpiry        byte = 0x11
	PropAssignedClientID     byte = 0x12
	PropServerKeepAlive      byte = 0x13
	PropAuthMethod           byte = 0x15
	PropAuthData             byte = 0x16
	PropRequestProblemInfo   byte = 0x17
	PropWillDelay            byte = 0x18
	PropRequestResponseInfo  byte = 0x19
	PropResponseInfo         byte = 0x1A
	PropServerReference      byte = 0x1C
	PropReasonString         byte = 0x1F
	PropReceiveMaximum       byte = 0x21
	PropTopicAliasMaximum    byte = 0x22
	PropTopicAlias           byte = 0x23
	PropMaximumQoS           byte = 0x24
	PropRetainAvailable      byte = 0x25
	PropUser                 byte = 0x26
	PropMaximumPacketSize    byte = 0x27
	PropWildcardSubAvailable byte = 0x28
	PropSubIDAvailable       byte = 0x29
	PropSharedSubAvailable   byte = 0x2A
)

// willKind is the property "packet kind" of the will properties in CONNECT.
const willKind = 16

// UserProperty is one MQTT 5 User Property (a name/value pair).
type UserProperty struct {
	Key, Value string
}

// Properties holds every MQTT 5 property. Present has bit i set when the
// property with identifier i was decoded. When encoding, a property is
// written if its Present bit is set or its field is non-zero, and only if
// the packet type allows it; set the bit (Set) to send a zero value such as
// Maximum QoS 0 or Retain Available 0.
type Properties struct {
	Present uint64

	PayloadFormat        byte
	RequestProblemInfo   byte
	RequestResponseInfo  byte
	MaximumQoS           byte
	RetainAvailable      byte
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte
	ServerKeepAlive      uint16
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MessageExpiry        uint32
	SessionExpiry        uint32
	WillDelay            uint32
	MaximumPacketSize    uint32
	ContentType          string
	ResponseTopic        string
	AssignedClientID     string
	AuthMethod           string
	ResponseInfo         string
	ServerReference      string
	ReasonString         string
	CorrelationData      []byte
	AuthData             []byte
	// SubscriptionIDs holds the Subscription Identifiers: several in a
	// PUBLISH sent to a client, at most one in SUBSCRIBE.
	SubscriptionIDs []uint32
	User            []UserProperty
}

// Has reports whether the property with identifier id was decoded (or
// marked with Set).
func (p *Properties) Has(id byte) bool { return id < 64 && p.Present&(1<<id) != 0 }

// Set marks the property with identifier id present, so that it is encoded
// even when its value is zero.
func (p *Properties) Set(id byte) {
	if id < 64 {
		p.Present |= 1 << id
	}
}

type propType byte

const (
	ptNone propType = iota
	ptByte
	ptUint16
	ptUint32
	ptVarint
	ptString
	ptBinary
	ptPair
)

var propTypes = [64]propType{
	PropPayloadFormat: ptByte, PropMessageExpiry: ptUint32, PropContentType: ptString,
	PropResponseTopic: ptString, PropCorrelationData: ptBinary, PropSubscriptionID: ptVarint,
	PropSessionExpiry: ptUint32, PropAssignedClientID: ptString, PropServerKeepAlive: ptUint16,
	PropAuthMethod: ptString, PropAuthData: ptBinary, PropRequestProblemInfo: ptByte,
	PropWillDelay: ptUint32, PropRequestResponseInfo: ptByte, PropResponseInfo: ptString,
	PropServerReference: ptString, PropReasonString: ptString, PropReceiveMaximum: ptUint16,
	PropTopicAliasMaximum: ptUint16, PropTopicAlias: ptUint16, PropMaximumQoS: ptByte,
	PropRetainAvailable: ptByte, PropUser: ptPair, PropMaximumPacketSize: ptUint32,
	PropWildcardSubAvailable: ptByte, PropSubIDAvailable: ptByte, PropSharedSubAvailable: ptByte,
}

func idSet(ids ...byte) uint64 {
	var m uint64
	for _, id := range ids {
		m |= 1 << id
	}
	return m
}

// allowed is, per packet type (and willKind), the set of properties it may
// carry.
var allowed = [17]uint64{
	CONNECT: idSet(PropSessionExpiry, PropAuthMethod, PropAuthData, PropRequestProblemInfo,
		PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropUser,
		PropMaximumPacketSize),
	CONNACK: idSet(PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive, PropAuthMethod,
		PropAuthData, PropResponseInfo, PropServerReference, PropReasonString,
		PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable,
		PropUser, PropMaximumPacketSize, PropWildcardSubAvailable, PropSubIDAvailable,
		PropSharedSubAvailable),
	PUBLISH: idSet(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
		PropCorrelationData, PropSubscriptionID, PropTopicAlias, PropUser),
	PUBACK:      idSet(PropReasonString, PropUser),
	PUBREC:      idSet(PropReasonString, PropUser),
	PUBREL:      idSet(PropReasonString, PropUser),
	PUBCOMP:     idSet(PropReasonString, PropUser),
	SUBSCRIBE:   idSet(PropSubscriptionID, PropUser),
	SUBACK:      idSet(PropReasonString, PropUser),
	UNSUBSCRIBE: idSet(PropUser),
	UNSUBACK:    idSet(PropReasonString, PropUser),
	DISCONNECT:  idSet(PropSessionExpiry, PropServerReference, PropReasonString, PropUser),
	AUTH:        idSet(PropAuthMethod, PropAuthData, PropReasonString, PropUser),
	willKind: idSet(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
		PropCorrelationData, PropWillDelay, PropUser),
}

func kindName(kind byte) string {
	if kind == willKind {
		return "will properties"
	}
	return TypeName(kind)
}

// decode reads a property length and the properties that follow into p,
// which must be zero.
func (p *Properties) decode(d *decoder, kind byte) {
	n := int(d.varint("property length"))
	if d.err != nil {
		return
	}
	if n > d.remaining() {
		d.fail(malformed("%s: property length %d exceeds the packet", d.what, n))
		return
	}
	end := d.off + n
	outer := d.b
	d.b = d.b[:end]
	for d.err == nil && d.off < end {
		p.decodeOne(d, kind)
	}
	d.b = outer
}

func (p *Properties) decodeOne(d *decoder, kind byte) {
	idv := d.varint("property identifier")
	if d.err != nil {
		return
	}
	if idv >= 64 || propTypes[idv] == ptNone {
		d.fail(malformed("%s: unknown property identifier 0x%02X", d.what, idv))
		return
	}
	id := byte(idv)
	if allowed[kind]&(1<<id) == 0 {
		d.fail(malformed("%s: property 0x%02X not allowed in %s", d.what, id, kindName(kind)))
		return
	}
	repeatable := id == PropUser || (id == PropSubscriptionID && kind == PUBLISH)
	if p.Present&(1<<id) != 0 && !repeatable {
		d.fail(protocolErr("%s: property 0x%02X appears more than once", d.what, id))
		return
	}
	p.Present |= 1 << id
	const field = "property value"
	switch id {
	case PropPayloadFormat:
		p.PayloadFormat = d.flag(id, field)
	case PropRequestProblemInfo:
		p.RequestProblemInfo = d.flag(id, field)
	case PropRequestResponseInfo:
		p.RequestResponseInfo = d.flag(id, field)
	case PropMaximumQoS:
		p.MaximumQoS = d.flag(id, field)
	case PropRetainAvailable:
		p.RetainAvailable = d.flag(id, field)
	case PropWildcardSubAvailable:
		p.WildcardSubAvailable = d.flag(id, field)
	case PropSubIDAvailable:
		p.SubIDAvailable = d.flag(id, field)
	case PropSharedSubAvailable:
		p.SharedSubAvailable = d.flag(id, field)
	case PropServerKeepAlive:
		p.ServerKeepAlive = d.uint16(field)
	case PropReceiveMaximum:
		p.ReceiveMaximum = d.uint16(field)
		if d.err == nil && p.ReceiveMaximum == 0 {
			d.fail(protocolErr("%s: Receive Maximum is 0", d.what))
		}
	case PropTopicAliasMaximum:
		p.TopicAliasMaximum = d.uint16(field)
	case PropTopicAlias:
		p.TopicAlias = d.uint16(field)
		if d.err == nil && p.TopicAlias == 0 {
			d.fail(&Error{Code: TopicAliasInvalid, Reason: d.what + ": Topic Alias is 0"})
		}
	case PropMessageExpiry:
		p.MessageExpiry = d.uint32(field)
	case PropSessionExpiry:
		p.SessionExpiry = d.uint32(field)
	case PropWillDelay:
		p.WillDelay = d.uint32(field)
	case PropMaximumPacketSize:
		p.MaximumPacketSize = d.uint32(field)
		if d.err == nil && p.MaximumPacketSize == 0 {
			d.fail(protocolErr("%s: Maximum Packet Size is 0", d.what))
		}
	case PropSubscriptionID:
		v := d.varint("subscription identifier")
		if d.err == nil && v == 0 {
			d.fail(protocolErr("%s: Subscription Identifier is 0", d.what))
		}
		if d.err == nil {
			p.SubscriptionIDs = append(p.SubscriptionIDs, v)
		}
	case PropContentType:
		p.ContentType = d.str("Content Type")
	case PropResponseTopic:
		p.ResponseTopic = d.str("Response Topic")
	case PropAssignedClientID:
		p.AssignedClientID = d.str("Assigned Client Identifier")
	case PropAuthMethod:
		p.AuthMethod = d.str("Authentication Method")
	case PropResponseInfo:
		p.ResponseInfo = d.str("Response Information")
	case PropServerReference:
		p.ServerReference = d.str("Server Reference")
	case PropReasonString:
		p.ReasonString = d.str("Reason String")
	case PropCorrelationData:
		p.CorrelationData = d.binaryData("Correlation Data")
	case PropAuthData:
		p.AuthData = d.binaryData("Authentication Data")
	case PropUser:
		k := d.str("User Property name")
		v := d.str("User Property value")
		if d.err == nil {
			p.User = append(p.User, UserProperty{Key: k, Value: v})
		}
	}
}

// flag reads a one-byte property that may only be 0 or 1.
func (d *decoder) flag(id byte, field string) byte {
	v := d.byte1(field)
	if d.err == nil && v > 1 {
		d.fail(protocolErr("%s: property 0x%02X has value %d, want 0 or 1", d.what, id, v))
	}
	return v
}

// isZero reports whether no property would be encoded, quickly.
func (p *Properties) isZero() bool {
	return p.Present == 0 && p.PayloadFormat|p.RequestProblemInfo|p.RequestResponseInfo|
		p.MaximumQoS|p.RetainAvailable|p.WildcardSubAvailable|p.SubIDAvailable|
		p.SharedSubAvailable == 0 &&
		p.ServerKeepAlive|p.ReceiveMaximum|p.TopicAliasMaximum|p.TopicAlias == 0 &&
		p.MessageExpiry|p.SessionExpiry|p.WillDelay|p.MaximumPacketSize == 0 &&
		len(p.ContentType)|len(p.ResponseTopic)|len(p.AssignedClientID)|len(p.AuthMethod)|
			len(p.ResponseInfo)|len(p.ServerReference)|len(p.ReasonString)|
			len(p.CorrelationData)|len(p.AuthData)|len(p.SubscriptionIDs)|len(p.User) == 0
}

// emit reports whether property id is to be encoded.
func (p *Properties) emit(id byte) bool {
	if p.Present&(1<<id) != 0 {
		return true
	}
	switch id {
	case PropPayloadFormat:
		return p.PayloadFormat != 0
	case PropRequestProblemInfo:
		return p.RequestProblemInfo != 0
	case PropRequestResponseInfo:
		return p.RequestResponseInfo != 0
	case PropMaximumQoS:
		return p.MaximumQoS != 0
	case PropRetainAvailable:
		return p.RetainAvailable != 0
	case PropWildcardSubAvailable:
		return p.WildcardSubAvailable != 0
	case PropSubIDAvailable:
		return p.SubIDAvailable != 0
	case PropSharedSubAvailable:
		return p.SharedSubAvailable != 0
	case PropServerKeepAlive:
		return p.ServerKeepAlive != 0
	case PropReceiveMaximum:
		return p.ReceiveMaximum != 0
	case PropTopicAliasMaximum:
		return p.TopicAliasMaximum != 0
	case PropTopicAlias:
		return p.TopicAlias != 0
	case PropMessageExpiry:
		return p.MessageExpiry != 0
	case PropSessionExpiry:
		return p.SessionExpiry != 0
	case PropWillDelay:
		return p.WillDelay != 0
	case PropMaximumPacketSize:
		return p.MaximumPacketSize != 0
	case PropContentType:
		return p.ContentType != ""
	case PropResponseTopic:
		return p.ResponseTopic != ""
	case PropAssignedClientID:
		return p.AssignedClientID != ""
	case PropAuthMethod:
		return p.AuthMethod != ""
	case PropResponseInfo:
		return p.ResponseInfo != ""
	case PropServerReference:
		return p.ServerReference != ""
	case PropReasonString:
		return p.ReasonString != ""
	case PropCorrelationData:
		return len(p.CorrelationData) != 0
	case PropAuthData:
		return len(p.AuthData) != 0
	case PropSubscriptionID:
		return len(p.SubscriptionIDs) != 0
	case PropUser:
		return len(p.User) != 0
	}
	return false
}

// size returns, for properties encoded in ascending identifier order, the encoded length of the properties allowed in kind, not
// counting the property length prefix. A nil p has size 0.
func (p *Properties) size(kind byte) int {
	if p == nil || p.isZero() {
		return 0
	}
	n := 0
	for m := allowed[kind]; m != 0; m &= m - 1 {
		id := byte(bits.TrailingZeros64(m))
		if !p.emit(id) {
			continue
		}
		switch propTypes[id] {
		case ptByte:
			n += 2
		case ptUint16:
			n += 3
		case ptUint32:
			n += 5
		case ptString:
			n += 3 + len(p.stringOf(id))
		case ptBinary:
			n += 3 + len(p.binaryOf(id))
		case ptVarint:
			for _, v := range p.SubscriptionIDs {
				n += 1 + varintLen(v)
			}
		case ptPair:
			for _, u := range p.User {
				n += 5 + len(u.Key) + len(u.Value)
			}
		}
	}
	return n
}

// binaryOf returns the value of a binary property.
func (p *Properties) binaryOf(id byte) []byte {
	if id == PropCorrelationData {
		return p.CorrelationData
	}
	return p.AuthData
}

// stringOf returns the value of a string property.
func (p *Properties) stringOf(id byte) string {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	}
	return p.ReasonString
}

func (p *Properties) byteOf(id byte) byte {
	switch id {
	case PropPayloadFormat:
		return p.PayloadFormat
	case PropRequestProblemInfo:
		return p.RequestProblemInfo
	case PropRequestResponseInfo:
		return p.RequestResponseInfo
	case PropMaximumQoS:
		return p.MaximumQoS
	case PropRetainAvailable:
		return p.RetainAvailable
	case PropWildcardSubAvailable:
		return p.WildcardSubAvailable
	case PropSubIDAvailable:
		return p.SubIDAvailable
	}
	return p.SharedSubAvailable
}

func (p *Properties) uint16Of(id byte) uint16 {
	switch id {
	case PropServerKeepAlive:
		return p.ServerKeepAlive
	case PropReceiveMaximum:
		return p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return p.TopicAliasMaximum
	}
	return p.TopicAlias
}

func (p *Properties) uint32Of(id byte) uint32 {
	switch id {
	case PropMessageExpiry:
		return p.MessageExpiry
	case PropSessionExpiry:
		return p.SessionExpiry
	case PropWillDelay:
		return p.WillDelay
	}
	return p.MaximumPacketSize
}

// check reports strings or binaries too long to encode.
func (p *Properties) check(what string, kind byte) error {
	if p == nil || p.isZero() {
		return nil
	}
	for m := allowed[kind]; m != 0; m &= m - 1 {
		id := byte(bits.TrailingZeros64(m))
		if !p.emit(id) {
			continue
		}
		switch propTypes[id] {
		case ptString:
			if err := checkLen(what, "property", len(p.stringOf(id))); err != nil {
				return err
			}
		case ptBinary:
			if err := checkLen(what, "property", len(p.binaryOf(id))); err != nil {
				return err
			}
		case ptPair:
			for _, u := range p.User {
				if err := checkLen(what, "user property", max(len(u.Key), len(u.Value))); err != nil {
					return err
				}
			}
		case ptVarint:
			for _, v := range p.SubscriptionIDs {
				if v == 0 || v > MaxVarint {
					return &encodeErr{what: what, field: "subscription identifier", n: int(v)}
				}
			}
		}
	}
	return nil
}

// appendProps writes the property length and the properties of kind. The
// caller passes size, the value returned by p.size(kind).
func (p *Properties) appendProps(dst []byte, kind byte, size int) []byte {
	dst = appendVarint(dst, uint32(size))
	if size == 0 {
		return dst
	}
	for m := allowed[kind]; m != 0; m &= m - 1 {
		id := byte(bits.TrailingZeros64(m))
		if !p.emit(id) {
			continue
		}
		switch propTypes[id] {
		case ptByte:
			dst = append(dst, id, p.byteOf(id))
		case ptUint16:
			dst = appendUint16(append(dst, id), p.uint16Of(id))
		case ptUint32:
			dst = appendUint32(append(dst, id), p.uint32Of(id))
		case ptString:
			dst = appendString(append(dst, id), p.stringOf(id))
		case ptBinary:
			dst = appendBinary(append(dst, id), p.binaryOf(id))
		case ptVarint:
			for _, v := range p.SubscriptionIDs {
				dst = appendVarint(append(dst, id), v)
			}
		case ptPair:
			for _, u := range p.User {
				dst = appendString(append(dst, id), u.Key)
				dst = appendString(dst, u.Value)
			}
		}
	}
	return dst
}
