package radios

import (
	"encoding/binary"
	"fmt"
)

// XBee API frame types used by the gateway.
const (
	XBeeTypeTransmitRequest = 0x10 // Transmit Request (Zigbee / XBee3 802.15.4)
	XBeeTypeModemStatus     = 0x8A // Modem Status
	XBeeTypeTransmitStatus  = 0x8B // Transmit Status
	XBeeTypeReceivePacket   = 0x90 // Receive Packet (AO=0)
)

// XBee addresses with a special meaning.
const (
	// XBeeBroadcast64 is the 64-bit broadcast destination.
	XBeeBroadcast64 uint64 = 0x000000000000FFFF
	// XBeeUnknown16 is the 16-bit address meaning "unknown, use the
	// 64-bit address"; broadcasts also use it.
	XBeeUnknown16 uint16 = 0xFFFE
)

// Receive Packet option bits.
const (
	XBeeRxAcked       = 0x01 // packet acknowledged
	XBeeRxBroadcast   = 0x02 // packet was a broadcast
	XBeeRxEncrypted   = 0x20 // APS-encrypted
	XBeeRxFromEndDev  = 0x40 // sent from an end device
	xbeeTxRequestHead = 14   // type, frame ID, dest64, dest16, radius, options
	xbeeRxPacketHead  = 12   // type, src64, src16, options
	xbeeTxStatusLen   = 7    // type, frame ID, dest16, retries, delivery, discovery
)

// XBee Transmit Status delivery codes (a selection; any other value is
// also a failure).
const (
	XBeeDeliverySuccess       = 0x00 // delivered
	XBeeDeliveryMACAckFail    = 0x01 // no MAC acknowledgement
	XBeeDeliveryCCAFail       = 0x02 // clear channel assessment failed
	XBeeDeliveryNetworkAck    = 0x21 // no network acknowledgement
	XBeeDeliveryNotJoined     = 0x22 // not joined to a network
	XBeeDeliveryAddrNotFound  = 0x24 // address not found
	XBeeDeliveryRouteNotFound = 0x25 // route not found
	XBeeDeliveryTooLarge      = 0x74 // payload too large
)

// XBeeDeliveryText names a Transmit Status delivery code for logs.
func XBeeDeliveryText(code uint8) string {
	switch code {
	case XBeeDeliverySuccess:
		return "success"
	case XBeeDeliveryMACAckFail:
		return "MAC ACK failure"
	case XBeeDeliveryCCAFail:
		return "CCA failure"
	case XBeeDeliveryNetworkAck:
		return "network ACK failure"
	case XBeeDeliveryNotJoined:
		return "not joined to network"
	case XBeeDeliveryAddrNotFound:
		return "address not found"
	case XBeeDeliveryRouteNotFound:
		return "route not found"
	case XBeeDeliveryTooLarge:
		return "payload too large"
	}
	return fmt.Sprintf("delivery status 0x%02X", code)
}

// XBeeTxRequest is a Transmit Request (0x10) frame.
type XBeeTxRequest struct {
	FrameID uint8  // 0 suppresses the Transmit Status
	Dest64  uint64 // XBeeBroadcast64 for broadcast
	Dest16  uint16 // XBeeUnknown16 when unknown
	Radius  uint8  // broadcast radius, 0 = maximum hops
	Options uint8  // transmit options
	Data    []byte // RF payload
}

// AppendFrameData appends the frame data (type byte onwards, without the
// API envelope) to dst.
func (r *XBeeTxRequest) AppendFrameData(dst []byte) []byte {
	dst = append(dst, XBeeTypeTransmitRequest, r.FrameID)
	dst = binary.BigEndian.AppendUint64(dst, r.Dest64)
	dst = binary.BigEndian.AppendUint16(dst, r.Dest16)
	dst = append(dst, r.Radius, r.Options)
	return append(dst, r.Data...)
}

// ParseXBeeTxRequest decodes a Transmit Request from frame data. Data
// aliases fd.
func ParseXBeeTxRequest(fd []byte) (XBeeTxRequest, error) {
	var r XBeeTxRequest
	if len(fd) < xbeeTxRequestHead {
		return r, fmt.Errorf("xbee transmit request: %w (%d bytes)", ErrShortFrame, len(fd))
	}
	if fd[0] != XBeeTypeTransmitRequest {
		return r, fmt.Errorf("xbee transmit request: %w 0x%02X", ErrFrameType, fd[0])
	}
	r.FrameID = fd[1]
	r.Dest64 = binary.BigEndian.Uint64(fd[2:10])
	r.Dest16 = binary.BigEndian.Uint16(fd[10:12])
	r.Radius, r.Options = fd[12], fd[13]
	r.Data = fd[14:]
	return r, nil
}

// XBeeTxStatus is a Transmit Status (0x8B) frame.
type XBeeTxStatus struct {
	FrameID   uint8
	Dest16    uint16
	Retries   uint8
	Delivery  uint8 // XBeeDeliverySuccess or a failure code
	Discovery uint8
}

// OK reports whether the frame was delivered.
func (s XBeeTxStatus) OK() bool { return s.Delivery == XBeeDeliverySuccess }

// AppendFrameData appends the frame data to dst.
func (s *XBeeTxStatus) AppendFrameData(dst []byte) []byte {
	dst = append(dst, XBeeTypeTransmitStatus, s.FrameID)
	dst = binary.BigEndian.AppendUint16(dst, s.Dest16)
	return append(dst, s.Retries, s.Delivery, s.Discovery)
}

// ParseXBeeTxStatus decodes a Transmit Status from frame data.
func ParseXBeeTxStatus(fd []byte) (XBeeTxStatus, error) {
	var s XBeeTxStatus
	if len(fd) < xbeeTxStatusLen {
		return s, fmt.Errorf("xbee transmit status: %w (%d bytes)", ErrShortFrame, len(fd))
	}
	if fd[0] != XBeeTypeTransmitStatus {
		return s, fmt.Errorf("xbee transmit status: %w 0x%02X", ErrFrameType, fd[0])
	}
	s.FrameID = fd[1]
	s.Dest16 = binary.BigEndian.Uint16(fd[2:4])
	s.Retries, s.Delivery, s.Discovery = fd[4], fd[5], fd[6]
	return s, nil
}

// XBeeRxPacket is a Receive Packet (0x90) frame.
type XBeeRxPacket struct {
	Src64   uint64
	Src16   uint16
	Options uint8  // XBeeRx* bits
	Data    []byte // RF payload
}

// Broadcast reports whether the packet was sent as a broadcast.
func (p XBeeRxPacket) Broadcast() bool { return p.Options&XBeeRxBroadcast != 0 }

// AppendFrameData appends the frame data to dst.
func (p *XBeeRxPacket) AppendFrameData(dst []byte) []byte {
	dst = append(dst, XBeeTypeReceivePacket)
	dst = binary.BigEndian.AppendUint64(dst, p.Src64)
	dst = binary.BigEndian.AppendUint16(dst, p.Src16)
	dst = append(dst, p.Options)
	return append(dst, p.Data...)
}

// ParseXBeeRxPacket decodes a Receive Packet from frame data. Data
// aliases fd.
func ParseXBeeRxPacket(fd []byte) (XBeeRxPacket, error) {
	var p XBeeRxPacket
	if len(fd) < xbeeRxPacketHead {
		return p, fmt.Errorf("xbee receive packet: %w (%d bytes)", ErrShortFrame, len(fd))
	}
	if fd[0] != XBeeTypeReceivePacket {
		return p, fmt.Errorf("xbee receive packet: %w 0x%02X", ErrFrameType, fd[0])
	}
	p.Src64 = binary.BigEndian.Uint64(fd[1:9])
	p.Src16 = binary.BigEndian.Uint16(fd[9:11])
	p.Options = fd[11]
	p.Data = fd[12:]
	return p, nil
}
