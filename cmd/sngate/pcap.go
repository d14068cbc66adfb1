package main

// A small capture-file reader for 'sngate dump --pcap': classic pcap (both
// byte orders, micro- and nanosecond stamps) and the common pcapng blocks,
// down to UDP payloads over Ethernet (with VLAN tags), Linux cooked capture
// (v1 and v2), BSD loopback and raw IP, IPv4 and IPv6. No reassembly of IP
// fragments. Nothing here trusts a length from the file.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Link-layer header types (LINKTYPE_* values).
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw      = 101
	linkRawAlt   = 12 // LINKTYPE_RAW on some BSDs' DLT value
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

// maxSnap bounds one captured packet; larger claims are a corrupt file.
const maxSnap = 256 << 10

// capRecord is one captured packet.
type capRecord struct {
	Num      int // 1-based, as tshark numbers frames
	Time     time.Time
	LinkType uint32
	Data     []byte // captured bytes (aliases the reader's buffer)
	OrigLen  int
}

// capReader reads pcap or pcapng records.
type capReader struct {
	r     *bufio.Reader
	order binary.ByteOrder
	next  func() (capRecord, error)
	num   int
	buf   []byte

	// pcap
	nano     bool
	linkType uint32
	// pcapng: per-interface link type and timestamp resolution
	ifaces []ngIface
}

type ngIface struct {
	linkType uint32
	tsUnit   time.Duration // duration of one timestamp unit
}

var errNotCapture = errors.New("not a pcap or pcapng file")

// newCapReader detects the file format from its first block.
func newCapReader(r io.Reader) (*capReader, error) {
	cr := &capReader{r: bufio.NewReaderSize(r, 64<<10)}
	magic, err := cr.r.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w (%d bytes)", errNotCapture, len(magic))
	}
	switch binary.BigEndian.Uint32(magic) {
	case 0xa1b2c3d4:
		cr.order = binary.BigEndian
	case 0xd4c3b2a1:
		cr.order = binary.LittleEndian
	case 0xa1b23c4d:
		cr.order, cr.nano = binary.BigEndian, true
	case 0x4d3cb2a1:
		cr.order, cr.nano = binary.LittleEndian, true
	case 0x0a0d0d0a:
		cr.next = cr.nextNG
		return cr, nil
	default:
		return nil, fmt.Errorf("%w (magic %x)", errNotCapture, magic)
	}
	var hdr [24]byte
	if _, err := io.ReadFull(cr.r, hdr[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	cr.linkType = cr.order.Uint32(hdr[20:24]) & 0x0fffffff
	cr.next = cr.nextPcap
	return cr, nil
}

// Next returns the next record, or io.EOF.
func (cr *capReader) Next() (capRecord, error) { return cr.next() }

func (cr *capReader) read(n int) ([]byte, error) {
	if cap(cr.buf) < n {
		cr.buf = make([]byte, n)
	}
	b := cr.buf[:n]
	if _, err := io.ReadFull(cr.r, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("file ends inside a record")
		}
		return nil, err
	}
	return b, nil
}

func (cr *capReader) nextPcap() (capRecord, error) {
	var h [16]byte
	if _, err := io.ReadFull(cr.r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return capRecord{}, io.EOF
		}
		return capRecord{}, fmt.Errorf("record %d: file ends inside a record header", cr.num+1)
	}
	sec, frac := cr.order.Uint32(h[0:4]), cr.order.Uint32(h[4:8])
	incl, orig := cr.order.Uint32(h[8:12]), cr.order.Uint32(h[12:16])
	if incl > maxSnap {
		return capRecord{}, fmt.Errorf("record %d: captured length %d is not plausible", cr.num+1, incl)
	}
	data, err := cr.read(int(incl))
	if err != nil {
		return capRecord{}, fmt.Errorf("record %d: %w", cr.num+1, err)
	}
	cr.num++
	ns := int64(frac) * 1000
	if cr.nano {
		ns = int64(frac)
	}
	return capRecord{Num: cr.num, Time: time.Unix(int64(sec), ns), LinkType: cr.linkType, Data: data, OrigLen: int(orig)}, nil
}

// pcapng block types used here.
const (
	ngSHB = 0x0a0d0d0a
	ngIDB = 0x00000001
	ngSPB = 0x00000003
	ngEPB = 0x00000006
)

func (cr *capReader) nextNG() (capRecord, error) {
	for {
		var h [8]byte
		if _, err := io.ReadFull(cr.r, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return capRecord{}, io.EOF
			}
			return capRecord{}, errors.New("pcapng: file ends inside a block header")
		}
		btype := binary.LittleEndian.Uint32(h[0:4])
		if btype == ngSHB {
			// The byte-order magic follows the length; read it first.
			bom, err := cr.r.Peek(4)
			if err != nil {
				return capRecord{}, errors.New("pcapng: truncated section header")
			}
			switch binary.LittleEndian.Uint32(bom) {
			case 0x1a2b3c4d:
				cr.order = binary.LittleEndian
			case 0x4d3c2b1a:
				cr.order = binary.BigEndian
			default:
				return capRecord{}, errors.New("pcapng: bad byte-order magic")
			}
			cr.ifaces = cr.ifaces[:0]
		} else if cr.order == nil {
			return capRecord{}, errors.New("pcapng: no section header")
		}
		total := cr.order.Uint32(h[4:8])
		if total < 12 || total%4 != 0 || total > maxSnap+1024 {
			return capRecord{}, fmt.Errorf("pcapng: block length %d is not plausible", total)
		}
		body, err := cr.read(int(total) - 8)
		if err != nil {
			return capRecord{}, fmt.Errorf("pcapng: %w", err)
		}
		body = body[:len(body)-4] // trailing length copy
		switch cr.order.Uint32(h[0:4]) {
		case ngIDB:
			if len(body) < 8 {
				return capRecord{}, errors.New("pcapng: short interface block")
			}
			cr.ifaces = append(cr.ifaces, ngIface{
				linkType: uint32(cr.order.Uint16(body[0:2])),
				tsUnit:   ngTimeUnit(body[8:], cr.order),
			})
		case ngEPB:
			if len(body) < 20 {
				return capRecord{}, errors.New("pcapng: short packet block")
			}
			ifc := cr.order.Uint32(body[0:4])
			if int(ifc) >= len(cr.ifaces) {
				return capRecord{}, fmt.Errorf("pcapng: packet on undeclared interface %d", ifc)
			}
			ts := uint64(cr.order.Uint32(body[4:8]))<<32 | uint64(cr.order.Uint32(body[8:12]))
			capLen, origLen := cr.order.Uint32(body[12:16]), cr.order.Uint32(body[16:20])
			if uint64(capLen) > uint64(len(body)-20) {
				return capRecord{}, errors.New("pcapng: packet longer than its block")
			}
			cr.num++
			ifd := cr.ifaces[ifc]
			return capRecord{Num: cr.num, Time: ngTime(ts, ifd.tsUnit), LinkType: ifd.linkType,
				Data: body[20 : 20+capLen], OrigLen: int(origLen)}, nil
		case ngSPB:
			if len(body) < 4 || len(cr.ifaces) == 0 {
				return capRecord{}, errors.New("pcapng: bad simple packet block")
			}
			orig := cr.order.Uint32(body[0:4])
			data := body[4:]
			if uint64(orig) < uint64(len(data)) {
				data = data[:orig]
			}
			cr.num++
			return capRecord{Num: cr.num, LinkType: cr.ifaces[0].linkType, Data: data, OrigLen: int(orig)}, nil
		}
		// Other blocks (name resolution, statistics ...) are skipped.
	}
}

// ngTimeUnit reads the if_tsresol option (default microseconds).
func ngTimeUnit(opts []byte, order binary.ByteOrder) time.Duration {
	unit := time.Microsecond
	for len(opts) >= 4 {
		code, n := order.Uint16(opts[0:2]), int(order.Uint16(opts[2:4]))
		pad := (n + 3) &^ 3
		if code == 0 || len(opts) < 4+pad {
			break
		}
		if code == 9 && n >= 1 {
			v := opts[4]
			if v&0x80 == 0 && v <= 9 {
				unit = time.Second
				for range v {
					unit /= 10
				}
			}
		}
		opts = opts[4+pad:]
	}
	if unit <= 0 {
		unit = time.Nanosecond
	}
	return unit
}

func ngTime(ts uint64, unit time.Duration) time.Time {
	per := uint64(time.Second / unit)
	if per == 0 {
		per = 1
	}
	sec := ts / per
	rem := ts % per
	return time.Unix(int64(sec), int64(rem)*int64(unit))
}

// udpDatagram is a UDP payload with its endpoints.
type udpDatagram struct {
	Src, Dst  netip.AddrPort
	Payload   []byte
	Truncated bool // the capture holds less than the datagram
}

// errNotUDP marks packets that carry no UDP datagram (TCP, ARP ...).
var errNotUDP = errors.New("not UDP")

// decodeUDP extracts the UDP datagram of one captured packet. It returns
// errNotUDP (possibly wrapped) for other traffic, and an error that says
// what is wrong for malformed or unsupported packets.
func decodeUDP(linkType uint32, b []byte) (udpDatagram, error) {
	var ip []byte
	switch linkType {
	case linkEthernet:
		if len(b) < 14 {
			return udpDatagram{}, errors.New("short Ethernet header")
		}
		etype, off := binary.BigEndian.Uint16(b[12:14]), 14
		for etype == 0x8100 || etype == 0x88a8 { // VLAN tags
			if len(b) < off+4 {
				return udpDatagram{}, errors.New("short VLAN tag")
			}
			etype, off = binary.BigEndian.Uint16(b[off+2:off+4]), off+4
		}
		if etype != 0x0800 && etype != 0x86dd {
			return udpDatagram{}, fmt.Errorf("%w: ethertype 0x%04x", errNotUDP, etype)
		}
		ip = b[off:]
	case linkSLL:
		if len(b) < 16 {
			return udpDatagram{}, errors.New("short Linux cooked header")
		}
		ip = b[16:]
	case linkSLL2:
		if len(b) < 20 {
			return udpDatagram{}, errors.New("short Linux cooked v2 header")
		}
		ip = b[20:]
	case linkNull:
		if len(b) < 4 {
			return udpDatagram{}, errors.New("short loopback header")
		}
		ip = b[4:]
	case linkRaw, linkRawAlt, linkIPv4, linkIPv6:
		ip = b
	default:
		return udpDatagram{}, fmt.Errorf("unsupported link type %d", linkType)
	}
	if len(ip) == 0 {
		return udpDatagram{}, fmt.Errorf("%w: empty network layer", errNotUDP)
	}
	switch ip[0] >> 4 {
	case 4:
		return decodeIPv4(ip)
	case 6:
		return decodeIPv6(ip)
	}
	return udpDatagram{}, fmt.Errorf("%w: not IP", errNotUDP)
}

func decodeIPv4(b []byte) (udpDatagram, error) {
	if len(b) < 20 {
		return udpDatagram{}, errors.New("short IPv4 header")
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || len(b) < ihl {
		return udpDatagram{}, errors.New("bad IPv4 header length")
	}
	if b[9] != 17 {
		return udpDatagram{}, fmt.Errorf("%w: IP protocol %d", errNotUDP, b[9])
	}
	if frag := binary.BigEndian.Uint16(b[6:8]); frag&0x3fff != 0 {
		return udpDatagram{}, errors.New("IPv4 fragment (not reassembled)")
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	end := len(b)
	if total >= ihl && total < end {
		end = total // drop Ethernet padding
	}
	return decodeUDPHeader(src, dst, b[ihl:end], total > len(b))
}

func decodeIPv6(b []byte) (udpDatagram, error) {
	if len(b) < 40 {
		return udpDatagram{}, errors.New("short IPv6 header")
	}
	payloadLen := int(binary.BigEndian.Uint16(b[4:6]))
	next := b[6]
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	rest := b[40:]
	truncated := payloadLen > len(rest)
	if !truncated {
		rest = rest[:payloadLen]
	}
	for range 16 { // bounded walk of extension headers
		switch next {
		case 17:
			return decodeUDPHeader(src, dst, rest, truncated)
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(rest) < 8 {
				return udpDatagram{}, errors.New("short IPv6 extension header")
			}
			n := (int(rest[1]) + 1) * 8
			if len(rest) < n {
				return udpDatagram{}, errors.New("short IPv6 extension header")
			}
			next, rest = rest[0], rest[n:]
		case 44: // fragment
			if len(rest) < 8 {
				return udpDatagram{}, errors.New("short IPv6 fragment header")
			}
			if binary.BigEndian.Uint16(rest[2:4])&0xfff9 != 0 {
				return udpDatagram{}, errors.New("IPv6 fragment (not reassembled)")
			}
			next, rest = rest[0], rest[8:]
		case 51: // authentication header
			if len(rest) < 8 {
				return udpDatagram{}, errors.New("short IPv6 AH header")
			}
			n := (int(rest[1]) + 2) * 4
			if len(rest) < n {
				return udpDatagram{}, errors.New("short IPv6 AH header")
			}
			next, rest = rest[0], rest[n:]
		default:
			return udpDatagram{}, fmt.Errorf("%w: IPv6 next header %d", errNotUDP, next)
		}
	}
	return udpDatagram{}, errors.New("too many IPv6 extension headers")
}

func decodeUDPHeader(src, dst netip.Addr, b []byte, truncated bool) (udpDatagram, error) {
	if len(b) < 8 {
		return udpDatagram{}, errors.New("short UDP header")
	}
	sport, dport := binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	ulen := int(binary.BigEndian.Uint16(b[4:6]))
	payload := b[8:]
	if ulen >= 8 && ulen-8 <= len(payload) {
		payload = payload[:ulen-8]
	} else if ulen >= 8 {
		truncated = true
	}
	return udpDatagram{
		Src:       netip.AddrPortFrom(src, sport),
		Dst:       netip.AddrPortFrom(dst, dport),
		Payload:   payload,
		Truncated: truncated,
	}, nil
}
