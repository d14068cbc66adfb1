package packets

import (
	"bufio"
	"fmt"
	"io"
)

// ParseFixedHeader decodes a fixed header from the start of b. It returns
// io.ErrUnexpectedEOF when b holds only part of a header. A Remaining
// Length that makes the packet longer than maxSize (0 for no limit other
// than the protocol's) yields an *Error with code PacketTooLarge.
func ParseFixedHeader(b []byte, maxSize uint32) (FixedHeader, error) {
	if len(b) == 0 {
		return FixedHeader{}, io.ErrUnexpectedEOF
	}
	var h FixedHeader
	var rem uint32
	for i := 1; ; i++ {
		if i > 4 {
			return h, malformed("remaining length longer than 4 bytes")
		}
		if i >= len(b) {
			return h, io.ErrUnexpectedEOF
		}
		c := b[i]
		rem |= uint32(c&0x7F) << (7 * (i - 1))
		if c&0x80 == 0 {
			if c == 0 && i > 1 {
				return h, malformed("remaining length not minimally encoded")
			}
			h.Size = i + 1
			break
		}
	}
	return finishHeader(b[0], rem, h.Size, maxSize)
}

// ReadFixedHeader reads a fixed header from r, validating the packet type,
// its flags and the size limit as ParseFixedHeader does.
func ReadFixedHeader(r io.ByteReader, maxSize uint32) (FixedHeader, error) {
	first, err := r.ReadByte()
	if err != nil {
		return FixedHeader{}, err
	}
	var rem uint32
	size := 1
	for i := 0; ; i++ {
		if i == 4 {
			return FixedHeader{}, malformed("remaining length longer than 4 bytes")
		}
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return FixedHeader{}, err
		}
		size++
		rem |= uint32(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return FixedHeader{}, malformed("remaining length not minimally encoded")
			}
			break
		}
	}
	return finishHeader(first, rem, size, maxSize)
}

func finishHeader(first byte, rem uint32, size int, maxSize uint32) (FixedHeader, error) {
	h := FixedHeader{Type: first >> 4, Flags: first & 0x0F, Remaining: int(rem), Size: size}
	if h.Type == 0 {
		return h, malformed("reserved packet type 0")
	}
	if h.Type != PUBLISH && h.Flags != flagsFor[h.Type] {
		return h, malformed("%s: invalid fixed header flags 0x%X", TypeName(h.Type), h.Flags)
	}
	if maxSize > 0 && uint64(size)+uint64(rem) > uint64(maxSize) {
		return h, &Error{Code: PacketTooLarge,
			Reason: fmt.Sprintf("%s of %d bytes exceeds the maximum packet size %d",
				TypeName(h.Type), uint64(size)+uint64(rem), maxSize)}
	}
	return h, nil
}

// DecodeBody decodes the body of a packet whose fixed header is h into a
// new Packet. version is the connection's protocol level (ignored for
// CONNECT, which carries its own).
func DecodeBody(h FixedHeader, body []byte, version byte) (Packet, error) {
	if len(body) != h.Remaining {
		return nil, malformed("%s: body is %d bytes, remaining length says %d",
			TypeName(h.Type), len(body), h.Remaining)
	}
	switch h.Type {
	case CONNECT:
		p := new(Connect)
		return p, p.Decode(body)
	case CONNACK:
		p := new(Connack)
		return p, p.Decode(body, version)
	case PUBLISH:
		p := new(Publish)
		return p, p.Decode(h, body, version)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		p := new(Ack)
		return p, p.Decode(h.Type, body, version)
	case SUBSCRIBE:
		p := new(Subscribe)
		return p, p.Decode(body, version)
	case SUBACK:
		p := new(Suback)
		return p, p.Decode(body, version)
	case UNSUBSCRIBE:
		p := new(Unsubscribe)
		return p, p.Decode(body, version)
	case UNSUBACK:
		p := new(Unsuback)
		return p, p.Decode(body, version)
	case PINGREQ, PINGRESP:
		if len(body) != 0 {
			return nil, malformed("%s: %d unexpected bytes", TypeName(h.Type), len(body))
		}
		if h.Type == PINGREQ {
			return &Pingreq{}, nil
		}
		return &Pingresp{}, nil
	case DISCONNECT:
		p := new(Disconnect)
		return p, p.Decode(body, version)
	case AUTH:
		p := new(Auth)
		return p, p.Decode(body, version)
	}
	return nil, malformed("reserved packet type %d", h.Type)
}

// Decode decodes the first packet in data and returns it with the number
// of bytes it used. It returns io.ErrUnexpectedEOF when data holds only
// part of a packet.
func Decode(data []byte, version byte, maxSize uint32) (Packet, int, error) {
	h, err := ParseFixedHeader(data, maxSize)
	if err != nil {
		return nil, 0, err
	}
	end := h.Size + h.Remaining
	if len(data) < end {
		return nil, 0, io.ErrUnexpectedEOF
	}
	p, err := DecodeBody(h, data[h.Size:end], version)
	if err != nil {
		return nil, 0, err
	}
	return p, end, nil
}

// ReadPacket reads and decodes one packet from r. It allocates a body
// buffer per packet; connections on the hot path use ReadFixedHeader and
// the per-type Decode methods instead.
func ReadPacket(r *bufio.Reader, version byte, maxSize uint32) (Packet, error) {
	h, err := ReadFixedHeader(r, maxSize)
	if err != nil {
		return nil, err
	}
	body := make([]byte, h.Remaining)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("packets: read %s body: %w", TypeName(h.Type), err)
	}
	return DecodeBody(h, body, version)
}
