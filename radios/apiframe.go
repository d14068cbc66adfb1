package radios

import (
	"bytes"
	"errors"
	"fmt"
)

// Bytes of the XBee-style API framing shared by XBee and LoRaLink.
const (
	apiStart  = 0x7E // frame delimiter
	apiEscape = 0x7D // escape marker; the next byte is XORed with apiXor
	apiXON    = 0x11 // escaped in AP=2 (software flow control)
	apiXOFF   = 0x13 // escaped in AP=2
	apiXor    = 0x20
)

// APIMode selects the XBee API operating mode, the AP parameter of the
// module: APIMode1 frames are sent as they are, APIMode2 escapes 0x7E,
// 0x7D, 0x11 and 0x13 after the start delimiter.
type APIMode uint8

// XBee API modes.
const (
	APIMode1 APIMode = 1 // AP=1: no escaping
	APIMode2 APIMode = 2 // AP=2: escaped
)

// Errors of the API framing.
var (
	// ErrFrameTooLarge is returned when a frame does not fit the framing's
	// length field or the configured bound.
	ErrFrameTooLarge = errors.New("radios: frame too large")
	// ErrFrameEmpty is returned when a frame has no content.
	ErrFrameEmpty = errors.New("radios: empty frame")
	// ErrShortFrame is returned by frame parsers for truncated frames.
	ErrShortFrame = errors.New("radios: frame too short")
	// ErrFrameType is returned by frame parsers for an unexpected type.
	ErrFrameType = errors.New("radios: unexpected frame type")
)

// apiFraming describes one variant of the 0x7E framing.
type apiFraming struct {
	escaped bool // AP=2 style escaping after the start byte
	// lenWithChecksum is set when the length field counts the checksum
	// byte too (LoRaLink) rather than the frame data only (XBee).
	lenWithChecksum bool
}

// checksum returns 0xFF minus the low byte of the sum of data.
func checksum(data []byte) byte {
	var s byte
	for _, b := range data {
		s += b
	}
	return 0xFF - s
}

// XBeeChecksum returns the XBee API checksum of the frame data: 0xFF minus
// the low byte of the sum of all bytes. LoRaLink uses the same rule.
func XBeeChecksum(frameData []byte) byte { return checksum(frameData) }

func needsEscape(b byte) bool {
	return b == apiStart || b == apiEscape || b == apiXON || b == apiXOFF
}

func appendMaybeEscaped(dst []byte, b byte, escaped bool) []byte {
	if escaped && needsEscape(b) {
		return append(dst, apiEscape, b^apiXor)
	}
	return append(dst, b)
}

// appendFrame appends one complete frame carrying data to dst.
func (f apiFraming) appendFrame(dst, data []byte) ([]byte, error) {
	if len(data) == 0 {
		return dst, ErrFrameEmpty
	}
	n := len(data)
	if f.lenWithChecksum {
		n++
	}
	if n > 0xFFFF {
		return dst, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(data))
	}
	dst = append(dst, apiStart)
	dst = appendMaybeEscaped(dst, byte(n>>8), f.escaped)
	dst = appendMaybeEscaped(dst, byte(n), f.escaped)
	for _, b := range data {
		dst = appendMaybeEscaped(dst, b, f.escaped)
	}
	return appendMaybeEscaped(dst, checksum(data), f.escaped), nil
}

// AppendXBeeFrame appends a complete XBee API frame (start delimiter,
// length, frame data, checksum) carrying frameData to dst, escaped when
// mode is APIMode2.
func AppendXBeeFrame(dst []byte, mode APIMode, frameData []byte) ([]byte, error) {
	return apiFraming{escaped: mode == APIMode2}.appendFrame(dst, frameData)
}

// DecoderStats counts what a streaming decoder saw. All counters only grow.
type DecoderStats struct {
	Frames      uint64 // good frames delivered
	BadChecksum uint64 // frames dropped for a checksum mismatch
	Oversize    uint64 // frames dropped for exceeding the bound or length field
	Truncated   uint64 // frames cut short by a new start delimiter
	BadEscape   uint64 // frames dropped for an invalid escape sequence
	Garbage     uint64 // bytes discarded while hunting for a frame start
}

// FrameDecoder is a streaming decoder for one byte-stuffed serial
// framing. Feed may be given arbitrary chunks; it calls emit once per
// complete, valid frame. The frame passed to emit aliases the decoder's
// buffer and is valid only until emit returns. Memory is bounded by the
// maximum frame size given at construction.
type FrameDecoder interface {
	// Feed consumes p and calls emit for every complete frame.
	Feed(p []byte, emit func(frame []byte))
	// Stats returns the decoder counters.
	Stats() DecoderStats
	// Reset drops any partial frame (counters are kept).
	Reset()
}

// APIDecoder is a streaming decoder for XBee API frames (and the
// LoRaLink variant). It hands out the frame data (between the length and
// the checksum, unescaped). It resynchronises on garbage, on bad
// checksums and on truncated frames, counting each.
type APIDecoder struct {
	f     apiFraming
	max   int
	stats DecoderStats

	// AP=1: raw bytes of the current candidate, starting with 0x7E.
	raw []byte

	// AP=2: unescaped state machine.
	state  int // 0 hunt, 1 len hi, 2 len lo, 3 data, 4 checksum
	escape bool
	want   int
	data   []byte
}

// NewXBeeDecoder returns a streaming decoder for XBee API frames in the
// given mode whose frame data is at most maxFrame bytes (0 means 512).
func NewXBeeDecoder(mode APIMode, maxFrame int) *APIDecoder {
	return newAPIDecoder(apiFraming{escaped: mode == APIMode2}, maxFrame)
}

func newAPIDecoder(f apiFraming, maxFrame int) *APIDecoder {
	if maxFrame <= 0 {
		maxFrame = 512
	}
	if maxFrame > 0xFFFF {
		maxFrame = 0xFFFF
	}
	d := &APIDecoder{f: f, max: maxFrame}
	if f.escaped {
		d.data = make([]byte, 0, maxFrame)
	} else {
		d.raw = make([]byte, 0, maxFrame+5)
	}
	return d
}

// Stats returns the decoder counters.
func (d *APIDecoder) Stats() DecoderStats { return d.stats }

// Reset drops any partial frame.
func (d *APIDecoder) Reset() {
	d.raw = d.raw[:0]
	d.data = d.data[:0]
	d.state, d.escape = 0, false
}

// Feed consumes p and calls emit for every complete, valid frame.
func (d *APIDecoder) Feed(p []byte, emit func(frame []byte)) {
	if d.f.escaped {
		for _, b := range p {
			d.stepEscaped(b, emit)
		}
		return
	}
	for len(p) > 0 {
		if len(d.raw) == 0 {
			i := indexByte(p, apiStart)
			if i < 0 {
				d.stats.Garbage += uint64(len(p))
				return
			}
			d.stats.Garbage += uint64(i)
			p = p[i:]
		}
		room := cap(d.raw) - len(d.raw)
		n := min(room, len(p))
		d.raw = append(d.raw, p[:n]...)
		p = p[n:]
		d.parseRaw(emit)
	}
}

// dataLen converts the length field to the number of frame data bytes.
func (d *APIDecoder) dataLen(field int) int {
	if d.f.lenWithChecksum {
		return field - 1
	}
	return field
}

// parseRaw extracts every complete frame from d.raw (AP=1), dropping one
// byte and hunting again whenever the candidate at the front is invalid.
func (d *APIDecoder) parseRaw(emit func([]byte)) {
	for len(d.raw) > 0 {
		if d.raw[0] != apiStart {
			i := indexByte(d.raw, apiStart)
			if i < 0 {
				d.stats.Garbage += uint64(len(d.raw))
				d.raw = d.raw[:0]
				return
			}
			d.stats.Garbage += uint64(i)
			d.shift(i)
			continue
		}
		if len(d.raw) < 3 {
			return
		}
		n := d.dataLen(int(d.raw[1])<<8 | int(d.raw[2]))
		if n <= 0 || n > d.max {
			d.stats.Oversize++
			d.shift(1)
			continue
		}
		if len(d.raw) < n+4 {
			return
		}
		data := d.raw[3 : 3+n]
		if checksum(data) != d.raw[3+n] {
			d.stats.BadChecksum++
			d.shift(1)
			continue
		}
		d.stats.Frames++
		emit(data)
		d.shift(n + 4)
	}
}

// shift drops the first k bytes of d.raw, keeping its capacity.
func (d *APIDecoder) shift(k int) {
	d.raw = d.raw[:copy(d.raw, d.raw[k:])]
}

func (d *APIDecoder) stepEscaped(b byte, emit func([]byte)) {
	if b == apiStart {
		if d.state != 0 {
			d.stats.Truncated++
		}
		d.state, d.escape = 1, false
		d.data = d.data[:0]
		return
	}
	if d.state == 0 {
		d.stats.Garbage++
		return
	}
	if d.escape {
		d.escape = false
		b ^= apiXor
	} else if b == apiEscape {
		d.escape = true
		return
	}
	switch d.state {
	case 1:
		d.want = int(b) << 8
		d.state = 2
	case 2:
		d.want = d.dataLen(d.want | int(b))
		if d.want <= 0 || d.want > d.max {
			d.stats.Oversize++
			d.state = 0
			return
		}
		d.state = 3
	case 3:
		d.data = append(d.data, b)
		if len(d.data) == d.want {
			d.state = 4
		}
	case 4:
		d.state = 0
		if checksum(d.data) != b {
			d.stats.BadChecksum++
			return
		}
		d.stats.Frames++
		emit(d.data)
	}
}

func indexByte(p []byte, c byte) int { return bytes.IndexByte(p, c) }
