package radios

import (
	"encoding/binary"
	"fmt"
)

// LoRaLink payload types (the byte after the address fields).
const (
	LoRaLinkMQTTSN    = 0x40 // payload is an MQTT-SN message
	LoRaLinkAck       = 0x80 // TX modem: frame sent
	LoRaLinkNoFreeCh  = 0x81 // TX modem: no free channel after listen-before-talk
	LoRaLinkTxTimeout = 0x82 // TX modem: transmission timed out
	LoRaLinkReqUTC    = 0x83 // modem asks for the time
	LoRaLinkRspUTC    = 0x84 // time answer
	LoRaLinkChgParam  = 0x85 // change task parameters
	LoRaLinkReqReset  = 0x86 // reset request
)

// LoRaLink node addresses with a special meaning.
const (
	LoRaLinkBroadcast = 0xFF // destination of broadcasts
	loraLinkRxHead    = 6    // src, rssi(2), snr(2), type
	loraLinkTxHead    = 2    // dest, type
)

// loraLinkFraming is the XBee-style escaped framing used by LoRaLink, whose
// length field also counts the checksum byte.
var loraLinkFraming = apiFraming{escaped: true, lenWithChecksum: true}

// LoRaLinkTx is a frame from the gateway to the TX modem.
type LoRaLinkTx struct {
	Dest    uint8 // node address 1..254, or LoRaLinkBroadcast
	Type    uint8 // LoRaLinkMQTTSN for MQTT-SN payloads
	Payload []byte
}

// AppendLoRaLinkTx appends the complete, escaped frame for t to dst.
func AppendLoRaLinkTx(dst []byte, t LoRaLinkTx) ([]byte, error) {
	if len(t.Payload) > 0xFFFF-loraLinkTxHead-1 {
		return dst, fmt.Errorf("loralink: %w: %d bytes", ErrFrameTooLarge, len(t.Payload))
	}
	var head [loraLinkTxHead]byte
	head[0], head[1] = t.Dest, t.Type
	return appendLoRaLink(dst, head[:], t.Payload)
}

// ParseLoRaLinkTx decodes the frame data of a gateway-to-modem frame (as
// a LoRaLink decoder hands it out). Payload aliases fd.
func ParseLoRaLinkTx(fd []byte) (LoRaLinkTx, error) {
	if len(fd) < loraLinkTxHead {
		return LoRaLinkTx{}, fmt.Errorf("loralink tx: %w (%d bytes)", ErrShortFrame, len(fd))
	}
	return LoRaLinkTx{Dest: fd[0], Type: fd[1], Payload: fd[2:]}, nil
}

// LoRaLinkRx is a frame from a modem to the gateway: a received radio
// packet, or (Type 0x80..0x82) the TX modem's answer to a transmission.
type LoRaLinkRx struct {
	Src     uint8
	RSSI    int16 // dBm
	SNR     int16 // dB
	Type    uint8
	Payload []byte
}

// AppendLoRaLinkRx appends the complete, escaped frame for r to dst (the
// modem side; used by tests and simulators).
func AppendLoRaLinkRx(dst []byte, r LoRaLinkRx) ([]byte, error) {
	if len(r.Payload) > 0xFFFF-loraLinkRxHead-1 {
		return dst, fmt.Errorf("loralink: %w: %d bytes", ErrFrameTooLarge, len(r.Payload))
	}
	var head [loraLinkRxHead]byte
	head[0] = r.Src
	binary.BigEndian.PutUint16(head[1:3], uint16(r.RSSI))
	binary.BigEndian.PutUint16(head[3:5], uint16(r.SNR))
	head[5] = r.Type
	return appendLoRaLink(dst, head[:], r.Payload)
}

// ParseLoRaLinkRx decodes the frame data of a modem-to-gateway frame.
// Payload aliases fd.
func ParseLoRaLinkRx(fd []byte) (LoRaLinkRx, error) {
	if len(fd) < loraLinkRxHead {
		return LoRaLinkRx{}, fmt.Errorf("loralink rx: %w (%d bytes)", ErrShortFrame, len(fd))
	}
	return LoRaLinkRx{
		Src:     fd[0],
		RSSI:    int16(binary.BigEndian.Uint16(fd[1:3])),
		SNR:     int16(binary.BigEndian.Uint16(fd[3:5])),
		Type:    fd[5],
		Payload: fd[6:],
	}, nil
}

// appendLoRaLink frames head+payload without building a joined copy.
func appendLoRaLink(dst, head, payload []byte) ([]byte, error) {
	n := len(head) + len(payload) + 1
	sum := 0xFF - checksum(head) + 0xFF - checksum(payload)
	dst = append(dst, apiStart)
	dst = appendMaybeEscaped(dst, byte(n>>8), true)
	dst = appendMaybeEscaped(dst, byte(n), true)
	for _, b := range head {
		dst = appendMaybeEscaped(dst, b, true)
	}
	for _, b := range payload {
		dst = appendMaybeEscaped(dst, b, true)
	}
	return appendMaybeEscaped(dst, 0xFF-sum, true), nil
}

// NewLoRaLinkDecoder returns a streaming decoder for LoRaLink frames
// (either direction) whose frame data is at most maxFrame bytes (0 means
// 512). It hands out the frame data between length and checksum; parse it
// with ParseLoRaLinkRx or ParseLoRaLinkTx.
func NewLoRaLinkDecoder(maxFrame int) *APIDecoder {
	return newAPIDecoder(loraLinkFraming, maxFrame)
}
