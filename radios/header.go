package radios

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The raw-LoRa address header (see docs/RADIO_HEADER.md). Four bytes go in
// front of every MQTT-SN message sent over a link that has no addressing
// of its own (RN2483, RAK RUI3 P2P, the Semtech packet forwarder):
//
//	byte 0   control: 1 1 0 1 D 0 V V
//	           bits 7-4 = 0b1101 magic
//	           bit  3   = D, direction: 0 uplink (node to gateway),
//	                      1 downlink (gateway to node)
//	           bit  2   = reserved, 0
//	           bits 1-0 = V, header version, 1 today (never 0)
//	byte 1   network ID
//	byte 2-3 node ID, big endian: the sensor (source of an uplink,
//	         destination of a downlink); 0xFFFF = every node (downlink
//	         broadcast); 0x0000 is invalid
//
// A LoRaWAN frame starts with MHDR = MType(3) | RFU(3) = 000 | Major(2) =
// 00, so bits 4-0 of every LoRaWAN R1 MHDR are zero. The control byte has
// bit 4 set and a non-zero version in bits 1-0, so it is never a LoRaWAN
// MHDR and LoRaWAN stacks discard our frames as well.
const (
	// HeaderLen is the size of the address header in bytes.
	HeaderLen = 4
	// HeaderVersion is the header version this package writes.
	HeaderVersion = 1
	// NodeBroadcast addresses every node in a downlink.
	NodeBroadcast uint16 = 0xFFFF

	headerMagic     = 0xD0
	headerMagicMask = 0xF4 // magic bits plus the reserved bit
	headerDownlink  = 0x08
	headerVerMask   = 0x03
)

// Errors returned by DecodeHeader. Callers count them per kind.
var (
	// ErrHeaderShort: the frame is shorter than the header.
	ErrHeaderShort = errors.New("radios: frame shorter than address header")
	// ErrLoRaWAN: the frame looks like a LoRaWAN frame (valid MHDR).
	ErrLoRaWAN = errors.New("radios: LoRaWAN frame, not ours")
	// ErrHeaderMagic: the first byte is neither our header nor LoRaWAN.
	ErrHeaderMagic = errors.New("radios: unknown frame (bad header magic)")
	// ErrHeaderVersion: our magic, but a header version this code does
	// not speak.
	ErrHeaderVersion = errors.New("radios: unsupported address header version")
	// ErrOtherNetwork: our header, another network ID.
	ErrOtherNetwork = errors.New("radios: frame of another network")
	// ErrWrongDirection: an uplink where a downlink was expected or the
	// reverse (e.g. another gateway's downlink heard by this gateway).
	ErrWrongDirection = errors.New("radios: frame travels the other way")
	// ErrNodeID: node ID 0x0000, or broadcast in an uplink.
	ErrNodeID = errors.New("radios: invalid node ID")
)

// Header is the decoded raw-LoRa address header.
type Header struct {
	Downlink bool   // gateway to node
	Network  uint8  // network ID; frames of other networks are ignored
	Node     uint16 // sensor node ID; NodeBroadcast in broadcast downlinks
}

// IsLoRaWANMHDR reports whether b is a valid LoRaWAN R1 MHDR byte (RFU
// bits and major version zero), i.e. the first byte of a LoRaWAN frame.
func IsLoRaWANMHDR(b byte) bool { return b&0x1F == 0 }

// AppendHeader appends the encoded header to dst.
func AppendHeader(dst []byte, h Header) []byte {
	c := byte(headerMagic | HeaderVersion)
	if h.Downlink {
		c |= headerDownlink
	}
	dst = append(dst, c, h.Network)
	return binary.BigEndian.AppendUint16(dst, h.Node)
}

// DecodeHeader parses the header at the start of frame and returns it
// with the MQTT-SN payload that follows (aliasing frame). It rejects
// LoRaWAN frames, unknown magic or version, node ID 0 and uplink
// broadcasts. It does not check the network or direction: use
// CheckHeader for that.
func DecodeHeader(frame []byte) (Header, []byte, error) {
	var h Header
	if len(frame) < HeaderLen {
		return h, nil, fmt.Errorf("%w: %d bytes", ErrHeaderShort, len(frame))
	}
	c := frame[0]
	if c&headerMagicMask != headerMagic {
		if IsLoRaWANMHDR(c) {
			return h, nil, fmt.Errorf("%w: MHDR 0x%02X", ErrLoRaWAN, c)
		}
		return h, nil, fmt.Errorf("%w: 0x%02X", ErrHeaderMagic, c)
	}
	if v := c & headerVerMask; v != HeaderVersion {
		return h, nil, fmt.Errorf("%w %d", ErrHeaderVersion, v)
	}
	h.Downlink = c&headerDownlink != 0
	h.Network = frame[1]
	h.Node = binary.BigEndian.Uint16(frame[2:4])
	if h.Node == 0 || (!h.Downlink && h.Node == NodeBroadcast) {
		return h, nil, fmt.Errorf("%w 0x%04X", ErrNodeID, h.Node)
	}
	return h, frame[HeaderLen:], nil
}

// DecodeUplink parses a frame received by a gateway of network netID:
// the header must be an uplink of that network.
func DecodeUplink(frame []byte, netID uint8) (node uint16, payload []byte, err error) {
	h, payload, err := DecodeHeader(frame)
	if err != nil {
		return 0, nil, err
	}
	if err := CheckHeader(h, netID, false); err != nil {
		return 0, nil, err
	}
	return h.Node, payload, nil
}

// CheckHeader verifies the network ID and direction of a decoded header.
func CheckHeader(h Header, netID uint8, downlink bool) error {
	if h.Network != netID {
		return fmt.Errorf("%w: %d, want %d", ErrOtherNetwork, h.Network, netID)
	}
	if h.Downlink != downlink {
		return ErrWrongDirection
	}
	return nil
}
