package radios

import "fmt"

// AppendCOBS appends frame COBS-encoded to dst, followed by the 0x00
// frame delimiter. The overhead is one byte per started 254 bytes of
// input plus the delimiter.
func AppendCOBS(dst, frame []byte) []byte {
	codeAt := len(dst)
	dst = append(dst, 0)
	code := byte(1)
	for i, b := range frame {
		if b != 0 {
			dst = append(dst, b)
			code++
			if code < 0xFF {
				continue
			}
			if i == len(frame)-1 {
				// A full block ends the frame: no implied zero follows,
				// and no empty block is opened after it.
				dst[codeAt] = code
				return append(dst, 0)
			}
		}
		dst[codeAt] = code
		codeAt = len(dst)
		dst = append(dst, 0)
		code = 1
	}
	dst[codeAt] = code
	return append(dst, 0)
}

// DecodeCOBS decodes one COBS block (without the trailing delimiter) and
// appends the result to dst.
func DecodeCOBS(dst, enc []byte) ([]byte, error) {
	for i := 0; i < len(enc); {
		code := int(enc[i])
		if code == 0 {
			return dst, fmt.Errorf("cobs: zero byte at offset %d", i)
		}
		if i+code > len(enc) {
			return dst, fmt.Errorf("cobs: block of %d bytes overruns frame at offset %d", code, i)
		}
		block := enc[i+1 : i+code]
		if j := indexByte(block, 0); j >= 0 {
			return dst, fmt.Errorf("cobs: zero byte at offset %d", i+1+j)
		}
		dst = append(dst, block...)
		i += code
		if code < 0xFF && i < len(enc) {
			dst = append(dst, 0)
		}
	}
	return dst, nil
}

// COBSDecoder is a streaming COBS decoder; 0x00 delimits frames. Empty
// frames are skipped; invalid and oversize frames are dropped and counted.
type COBSDecoder struct {
	max     int
	enc     []byte
	out     []byte
	discard bool
	stats   DecoderStats
}

// NewCOBSDecoder returns a COBS decoder for frames of at most maxFrame
// decoded bytes (0 means 512).
func NewCOBSDecoder(maxFrame int) *COBSDecoder {
	if maxFrame <= 0 {
		maxFrame = 512
	}
	encMax := maxFrame + maxFrame/254 + 1
	return &COBSDecoder{max: maxFrame, enc: make([]byte, 0, encMax), out: make([]byte, 0, maxFrame)}
}

// Stats returns the decoder counters.
func (d *COBSDecoder) Stats() DecoderStats { return d.stats }

// Reset drops any partial frame.
func (d *COBSDecoder) Reset() {
	d.enc = d.enc[:0]
	d.discard = false
}

// Feed consumes p and calls emit for every complete frame.
func (d *COBSDecoder) Feed(p []byte, emit func(frame []byte)) {
	for len(p) > 0 {
		i := indexByte(p, 0)
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !d.discard {
			if len(d.enc)+len(chunk) > cap(d.enc) {
				d.stats.Oversize++
				d.discard = true
			} else {
				d.enc = append(d.enc, chunk...)
			}
		}
		if i < 0 {
			return
		}
		p = p[i+1:]
		if !d.discard && len(d.enc) > 0 {
			out, err := DecodeCOBS(d.out[:0], d.enc)
			switch {
			case err != nil:
				d.stats.BadEscape++
			case len(out) > d.max:
				d.stats.Oversize++
			default:
				d.stats.Frames++
				emit(out)
			}
			d.out = out[:0]
		}
		d.Reset()
	}
}
