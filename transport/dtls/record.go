package dtls

// Just enough of the DTLS 1.2 record layer (RFC 6347, section 4.1) and
// handshake header (section 4.2.2) for the listener to route datagrams before
// pion sees them. Every function here reads untrusted bytes: each index is
// bounds-checked and none of them allocates.

const (
	recordHeaderLen    = 13 // type, version(2), epoch(2), sequence(6), length(2)
	handshakeHeaderLen = 12 // type, length(3), message_seq(2), fragment_offset(3), fragment_length(3)

	contentChangeCipher = 20
	contentHandshake    = 22
	contentConnectionID = 25 // tls12_cid, RFC 9146

	handshakeClientHello        = 1
	handshakeHelloVerifyRequest = 3

	randomLen = 32
)

// helloInfo describes a datagram whose first record carries a fragment of an
// epoch-0 ClientHello.
type helloInfo struct {
	// first is true when the fragment starts at offset 0, so the cookie
	// field is present in it.
	first bool
	// cookie aliases the datagram; empty on a first ClientHello.
	cookie []byte
}

// plainHandshake returns the type and body of the first handshake message
// in the datagram's first record, if that record is an epoch-0 handshake
// record. The body is limited to the fragment actually present.
func plainHandshake(d []byte) (typ byte, fragOffset uint32, body []byte, ok bool) {
	if len(d) < recordHeaderLen+handshakeHeaderLen || d[0] != contentHandshake {
		return 0, 0, nil, false
	}
	if d[3] != 0 || d[4] != 0 { // epoch
		return 0, 0, nil, false
	}
	recLen := int(d[11])<<8 | int(d[12])
	frag := d[recordHeaderLen:]
	if recLen < len(frag) {
		frag = frag[:recLen]
	}
	if len(frag) < handshakeHeaderLen {
		return 0, 0, nil, false
	}
	typ = frag[0]
	fragOffset = uint32(frag[6])<<16 | uint32(frag[7])<<8 | uint32(frag[8])
	fragLen := int(frag[9])<<16 | int(frag[10])<<8 | int(frag[11])
	body = frag[handshakeHeaderLen:]
	if fragLen < len(body) {
		body = body[:fragLen]
	}
	return typ, fragOffset, body, true
}

// parseClientHello reports whether d starts with an epoch-0 ClientHello
// fragment and, for the first fragment, returns its cookie.
func parseClientHello(d []byte) (helloInfo, bool) {
	typ, off, body, ok := plainHandshake(d)
	if !ok || typ != handshakeClientHello {
		return helloInfo{}, false
	}
	if off != 0 {
		return helloInfo{}, true
	}
	// client_version(2) random(32) session_id<0..32> cookie<0..255>
	i := 2 + randomLen
	if len(body) < i+1 {
		return helloInfo{}, false
	}
	i += 1 + int(body[i])
	if len(body) < i+1 {
		return helloInfo{}, false
	}
	n := int(body[i])
	i++
	if len(body) < i+n {
		return helloInfo{}, false
	}
	return helloInfo{first: true, cookie: body[i : i+n]}, true
}

// parseHelloVerifyRequest returns the cookie of a HelloVerifyRequest that
// starts datagram d (server_version(2), cookie<0..255>).
func parseHelloVerifyRequest(d []byte) ([]byte, bool) {
	typ, off, body, ok := plainHandshake(d)
	if !ok || typ != handshakeHelloVerifyRequest || off != 0 || len(body) < 3 {
		return nil, false
	}
	n := int(body[2])
	if len(body) < 3+n || n == 0 {
		return nil, false
	}
	return body[3 : 3+n], true
}

// recordCID returns the connection ID of a tls12_cid record that starts d,
// given the fixed CID length the listener issues.
func recordCID(d []byte, cidLen int) ([]byte, bool) {
	// type(1) version(2) epoch(2) sequence(6) cid(cidLen) length(2)
	if cidLen <= 0 || len(d) < 11+cidLen+2 || d[0] != contentConnectionID {
		return nil, false
	}
	return d[11 : 11+cidLen], true
}

// firstRecordLen returns the length of the first record of datagram d, as
// pion delimits records given its Connection ID length, or len(d) when d
// holds only one record or its first record is not whole (pion then
// discards the lot).
func firstRecordLen(d []byte, cidLen int) int {
	hdr, lenAt := recordHeaderLen, 11
	if len(d) > 0 && d[0] == contentConnectionID && cidLen > 0 {
		hdr += cidLen
		lenAt += cidLen
	}
	if len(d) <= hdr {
		return len(d)
	}
	n := hdr + (int(d[lenAt])<<8 | int(d[lenAt+1]))
	if n > len(d) {
		return len(d)
	}
	return n
}
