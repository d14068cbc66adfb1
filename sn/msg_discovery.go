package sn

// Advertise is ADVERTISE: a gateway announces itself periodically.
type Advertise struct {
	GwID     uint8  // GwID is the gateway ID.
	Duration uint16 // Duration is the number of seconds until the next ADVERTISE.
}

// Type returns TypeAdvertise.
func (m *Advertise) Type() MsgType { return TypeAdvertise }

// Len returns the encoded length of m.
func (m *Advertise) Len() int { return frameLen(3) }

// Append appends the encoded message to dst.
func (m *Advertise) Append(dst []byte) ([]byte, error) {
	dst, err := appendHeader(dst, TypeAdvertise, 3)
	if err != nil {
		return dst, err
	}
	return append16(append(dst, m.GwID), m.Duration), nil
}

func (m *Advertise) decodeBody(b []byte, off int) error {
	if err := exactBody(TypeAdvertise, b, off, 3); err != nil {
		return err
	}
	*m = Advertise{GwID: b[0], Duration: be16(b[1:])}
	return nil
}

// SearchGW is SEARCHGW: a client looks for a gateway.
type SearchGW struct {
	Radius uint8 // Radius is the broadcast radius (hops) of the search.
}

// Type returns TypeSearchGW.
func (m *SearchGW) Type() MsgType { return TypeSearchGW }

// Len returns the encoded length of m.
func (m *SearchGW) Len() int { return frameLen(1) }

// Append appends the encoded message to dst.
func (m *SearchGW) Append(dst []byte) ([]byte, error) {
	dst, err := appendHeader(dst, TypeSearchGW, 1)
	if err != nil {
		return dst, err
	}
	return append(dst, m.Radius), nil
}

func (m *SearchGW) decodeBody(b []byte, off int) error {
	if err := exactBody(TypeSearchGW, b, off, 1); err != nil {
		return err
	}
	*m = SearchGW{Radius: b[0]}
	return nil
}

// GWInfo is GWINFO: the answer to SEARCHGW.
type GWInfo struct {
	GwID  uint8  // GwID is the gateway ID.
	GwAdd []byte // GwAdd is the gateway address; present only when a client answers on the gateway's behalf.
}

// Type returns TypeGWInfo.
func (m *GWInfo) Type() MsgType { return TypeGWInfo }

// Len returns the encoded length of m.
func (m *GWInfo) Len() int { return frameLen(1 + len(m.GwAdd)) }

// Append appends the encoded message to dst.
func (m *GWInfo) Append(dst []byte) ([]byte, error) {
	dst, err := appendHeader(dst, TypeGWInfo, 1+len(m.GwAdd))
	if err != nil {
		return dst, err
	}
	return append(append(dst, m.GwID), m.GwAdd...), nil
}

func (m *GWInfo) decodeBody(b []byte, off int) error {
	if err := minBody(TypeGWInfo, b, off, 1); err != nil {
		return err
	}
	*m = GWInfo{GwID: b[0], GwAdd: nilIfEmpty(b[1:])}
	return nil
}

// nilIfEmpty returns nil for an empty slice so that decoded optional fields
// compare equal however they were produced.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
