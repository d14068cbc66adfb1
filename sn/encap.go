package sn

// Encapsulated is an ENCAPSULATED forwarder frame: a forwarder relays a
// complete MQTT-SN message (Message) to or from the wireless node NodeID.
//
// MQTT-SN 1.2 makes the encapsulation's Length cover only its own header
// (Length, MsgType, Ctrl, NodeID). Some bridges write the length of the
// whole frame instead; the decoder accepts both and records which one it saw
// in WholeLength, so that replies to a forwarder can use its convention.
type Encapsulated struct {
	Ctrl        uint8  // Ctrl is the control byte; bits 1-0 are the broadcast radius.
	NodeID      []byte // NodeID is the forwarder-local wireless node ID; it must not be empty.
	Message     []byte // Message is the complete encapsulated MQTT-SN message, header included.
	WholeLength bool   // WholeLength selects the non-1.2 convention where Length covers the whole frame.
}

// Type returns TypeEncapsulated.
func (m *Encapsulated) Type() MsgType { return TypeEncapsulated }

// Radius returns the broadcast radius carried in Ctrl bits 1-0.
func (m *Encapsulated) Radius() uint8 { return m.Ctrl & 3 }

// bodyLen returns the size of the variable part that the Length field
// counts (after Length and MsgType).
func (m *Encapsulated) bodyLen() int {
	if m.WholeLength {
		return 1 + len(m.NodeID) + len(m.Message)
	}
	return 1 + len(m.NodeID)
}

// Len returns the encoded length of m, inner message included.
func (m *Encapsulated) Len() int {
	n := frameLen(m.bodyLen())
	if m.WholeLength {
		return n
	}
	return n + len(m.Message)
}

// Append appends the encoded frame, inner message included, to dst. The
// inner Message must be a single well-formed MQTT-SN frame header-wise (its
// Length matches its size).
func (m *Encapsulated) Append(dst []byte) ([]byte, error) {
	if len(m.NodeID) == 0 {
		return dst, encodeErr(TypeEncapsulated, "WirelessNodeId", ErrEmptyField, "")
	}
	ih, err := ParseHeader(m.Message)
	if err != nil {
		return dst, encodeErr(TypeEncapsulated, "Message", ErrInvalid, err.Error())
	}
	if ih.Length != len(m.Message) {
		return dst, encodeErr(TypeEncapsulated, "Message", ErrInvalid,
			"inner Length "+itoa(ih.Length)+" but "+itoa(len(m.Message))+" bytes")
	}
	dst, err = appendHeader(dst, TypeEncapsulated, m.bodyLen())
	if err != nil {
		return dst, err
	}
	dst = append(append(dst, m.Ctrl), m.NodeID...)
	return append(dst, m.Message...), nil
}

// decodeEncapsulated decodes a whole forwarder frame b whose header is h.
func decodeEncapsulated(b []byte, h Header, m *Encapsulated) error {
	hs := h.Size()
	if len(b) < hs+1 {
		return decodeErr(TypeEncapsulated, len(b), "Ctrl", ErrTruncated, "frame ends before Ctrl")
	}
	ctrl := b[hs]
	switch {
	case h.Length > len(b):
		return decodeErr(TypeEncapsulated, 0, "Length", ErrBadLength,
			"Length "+itoa(h.Length)+", datagram "+itoa(len(b))+" bytes")
	case h.Length == len(b):
		// Whole-frame convention: the node ID ends where the rest of the
		// frame is exactly one valid, non-encapsulated message. The first
		// such offset wins.
		for k := hs + 2; k+2 <= len(b); k++ {
			if validInner(b[k:]) {
				*m = Encapsulated{Ctrl: ctrl, NodeID: b[hs+1 : k], Message: b[k:], WholeLength: true}
				return nil
			}
		}
		return decodeErr(TypeEncapsulated, hs+1, "Message", ErrBadLength,
			"Length covers the whole frame but no valid message fills the rest")
	case h.Length < hs+1:
		return decodeErr(TypeEncapsulated, 0, "Length", ErrBadLength,
			"Length "+itoa(h.Length)+" shorter than the encapsulation header")
	case h.Length == hs+1:
		return decodeErr(TypeEncapsulated, hs+1, "WirelessNodeId", ErrEmptyField, "")
	}
	inner := b[h.Length:]
	ih, err := ParseHeader(inner)
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.Type, e.Offset, e.Field = TypeEncapsulated, e.Offset+h.Length, "Message."+e.Field
		}
		return err
	}
	if ih.Length != len(inner) {
		return decodeErr(TypeEncapsulated, h.Length, "Message", ErrBadLength,
			"inner Length "+itoa(ih.Length)+", "+itoa(len(inner))+" bytes follow the header")
	}
	*m = Encapsulated{Ctrl: ctrl, NodeID: b[hs+1 : h.Length], Message: inner}
	return nil
}

// validInner reports whether b is exactly one valid 1.2 message other than
// an encapsulation.
func validInner(b []byte) bool {
	h, err := ParseHeader(b)
	if err != nil || h.Length != len(b) {
		return false
	}
	if t := v12Table.lookup(h.Code); t == TypeInvalid || t == TypeEncapsulated {
		return false
	}
	var p Packet
	return Decode(b, &p) == nil
}

// Decapsulate decodes a forwarder frame and then its inner message into p.
// It returns the encapsulation (whose slices alias b) so that the caller
// can address the reply. The inner message must not itself be encapsulated.
func Decapsulate(b []byte, p *Packet) (Encapsulated, error) {
	if err := Decode(b, p); err != nil {
		return Encapsulated{}, err
	}
	if p.Type != TypeEncapsulated {
		return Encapsulated{}, decodeErr(p.Type, 0, "MsgType", ErrInvalid, "not an ENCAPSULATED frame")
	}
	enc := p.Encapsulated
	if err := Decode(enc.Message, p); err != nil {
		if e, ok := err.(*Error); ok && e.Offset >= 0 {
			e.Offset += len(b) - len(enc.Message)
		}
		return enc, err
	}
	if p.Type == TypeEncapsulated {
		p.Type = TypeInvalid
		return enc, decodeErr(TypeEncapsulated, len(b)-len(enc.Message), "Message", ErrInvalid,
			"nested encapsulation")
	}
	return enc, nil
}

// AppendEncapsulated appends a forwarder frame that carries m for node
// nodeID with the given Ctrl byte and the 1.2 length convention, without
// encoding m twice. It allocates nothing when dst has room.
func AppendEncapsulated(dst []byte, ctrl uint8, nodeID []byte, m Message) ([]byte, error) {
	if len(nodeID) == 0 {
		return dst, encodeErr(TypeEncapsulated, "WirelessNodeId", ErrEmptyField, "")
	}
	start := len(dst)
	dst, err := appendHeader(dst, TypeEncapsulated, 1+len(nodeID))
	if err != nil {
		return dst, err
	}
	dst = append(append(dst, ctrl), nodeID...)
	out, err := m.Append(dst)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

// decodeBody is never used: an encapsulation's Length does not describe
// the datagram the way other messages' does, so Decode calls
// decodeEncapsulated with the whole frame instead.
func (m *Encapsulated) decodeBody(b []byte, off int) error {
	return decodeErr(TypeEncapsulated, off, "", ErrInvalid, "decode the whole frame with Decode")
}
