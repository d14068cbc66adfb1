package packets

import (
	"errors"
	"fmt"
)

// ReasonCode is an MQTT 5 reason code. MQTT 3.1.1 return codes are
// separate small integers (see ConnackV3Code).
type ReasonCode = byte

// MQTT 5 reason codes.
const (
	Success                     ReasonCode = 0x00
	NormalDisconnection         ReasonCode = 0x00
	GrantedQoS0                 ReasonCode = 0x00
	GrantedQoS1                 ReasonCode = 0x01
	GrantedQoS2                 ReasonCode = 0x02
	DisconnectWithWill          ReasonCode = 0x04
	NoMatchingSubscribers       ReasonCode = 0x10
	NoSubscriptionExisted       ReasonCode = 0x11
	ContinueAuthentication      ReasonCode = 0x18
	ReAuthenticate              ReasonCode = 0x19
	UnspecifiedError            ReasonCode = 0x80
	MalformedPacket             ReasonCode = 0x81
	ProtocolError               ReasonCode = 0x82
	ImplementationSpecific      ReasonCode = 0x83
	UnsupportedProtocolVersion  ReasonCode = 0x84
	ClientIDNotValid            ReasonCode = 0x85
	BadUsernameOrPassword       ReasonCode = 0x86
	NotAuthorized               ReasonCode = 0x87
	ServerUnavailable           ReasonCode = 0x88
	ServerBusy                  ReasonCode = 0x89
	Banned                      ReasonCode = 0x8A
	ServerShuttingDown          ReasonCode = 0x8B
	BadAuthenticationMethod     ReasonCode = 0x8C
	KeepAliveTimeout            ReasonCode = 0x8D
	SessionTakenOver            ReasonCode = 0x8E
	TopicFilterInvalid          ReasonCode = 0x8F
	TopicNameInvalid            ReasonCode = 0x90
	PacketIDInUse               ReasonCode = 0x91
	PacketIDNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded      ReasonCode = 0x93
	TopicAliasInvalid           ReasonCode = 0x94
	PacketTooLarge              ReasonCode = 0x95
	MessageRateTooHigh          ReasonCode = 0x96
	QuotaExceeded               ReasonCode = 0x97
	AdministrativeAction        ReasonCode = 0x98
	PayloadFormatInvalid        ReasonCode = 0x99
	RetainNotSupported          ReasonCode = 0x9A
	QoSNotSupported             ReasonCode = 0x9B
	UseAnotherServer            ReasonCode = 0x9C
	ServerMoved                 ReasonCode = 0x9D
	SharedSubsNotSupported      ReasonCode = 0x9E
	ConnectionRateExceeded      ReasonCode = 0x9F
	MaximumConnectTime          ReasonCode = 0xA0
	SubscriptionIDsNotSupported ReasonCode = 0xA1
	WildcardSubsNotSupported    ReasonCode = 0xA2
)

// MQTT 3.1.1 CONNACK return codes.
const (
	V3Accepted           byte = 0
	V3BadProtocolVersion byte = 1
	V3IdentifierRejected byte = 2
	V3ServerUnavailable  byte = 3
	V3BadUserOrPassword  byte = 4
	V3NotAuthorized      byte = 5
)

// ConnackV3Code maps an MQTT 5 CONNACK reason code to the nearest MQTT
// 3.1.1 return code.
func ConnackV3Code(rc ReasonCode) byte {
	switch rc {
	case Success:
		return V3Accepted
	case UnsupportedProtocolVersion:
		return V3BadProtocolVersion
	case ClientIDNotValid:
		return V3IdentifierRejected
	case BadUsernameOrPassword:
		return V3BadUserOrPassword
	case NotAuthorized, Banned, BadAuthenticationMethod:
		return V3NotAuthorized
	default:
		return V3ServerUnavailable
	}
}

// Error is a decoding failure. Code is the MQTT 5 reason code the receiver
// reports in its CONNACK or DISCONNECT; Reason says what was wrong and is
// suitable for a Reason String.
type Error struct {
	Code   ReasonCode
	Reason string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("packets: %s (reason code 0x%02X)", e.Reason, e.Code)
}

// Is matches any *Error with the same reason code, so that
// errors.Is(err, packets.ErrMalformed) holds for every malformed packet.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinel errors for errors.Is; decoding returns *Error values with the
// same codes and a specific reason. errors.Is matches by reason code.
var (
	// ErrMalformed matches every Malformed Packet (0x81) error.
	ErrMalformed = &Error{Code: MalformedPacket, Reason: "malformed packet"}
	// ErrProtocol matches every Protocol Error (0x82).
	ErrProtocol = &Error{Code: ProtocolError, Reason: "protocol error"}
	// ErrTooLarge matches packets over the maximum size (0x95).
	ErrTooLarge = &Error{Code: PacketTooLarge, Reason: "packet too large"}
	// ErrBadVersion matches a CONNECT with an unknown protocol name or
	// level (0x84); see Connect.Decode for telling them apart.
	ErrBadVersion = &Error{Code: UnsupportedProtocolVersion, Reason: "unsupported protocol version"}
)

func malformed(format string, args ...any) *Error {
	return &Error{Code: MalformedPacket, Reason: fmt.Sprintf(format, args...)}
}

func protocolErr(format string, args ...any) *Error {
	return &Error{Code: ProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// CodeOf returns the reason code carried by err: the Code of an *Error in
// its chain, or UnspecifiedError for any other non-nil error and Success
// for nil.
func CodeOf(err error) ReasonCode {
	if err == nil {
		return Success
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return UnspecifiedError
}

// validReason lists, per packet type, the reason codes a sender may use.
var validReason = [16]codeSet{
	CONNACK: set(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
		0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F),
	PUBACK:   set(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99),
	PUBREC:   set(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99),
	PUBREL:   set(0x00, 0x92),
	PUBCOMP:  set(0x00, 0x92),
	SUBACK:   set(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2),
	UNSUBACK: set(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91),
	DISCONNECT: set(0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F,
		0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F,
		0xA0, 0xA1, 0xA2),
	AUTH: set(0x00, 0x18, 0x19),
}

// codeSet is a bitmap of byte values.
type codeSet [4]uint64

func (s *codeSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

func set(codes ...byte) codeSet {
	var s codeSet
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

// checkReason reports a protocol error when rc is not a reason code that
// packet type t may carry.
func checkReason(t byte, rc byte) *Error {
	if t >= 16 || !validReason[t].has(rc) {
		return protocolErr("%s: invalid reason code 0x%02X", TypeName(t), rc)
	}
	return nil
}
