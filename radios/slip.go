package radios

// SLIP special bytes (RFC 1055).
const (
	slipEnd    = 0xC0
	slipEsc    = 0xDB
	slipEscEnd = 0xDC
	slipEscEsc = 0xDD
)

// AppendSLIP appends frame SLIP-encoded to dst, with an END byte before
// and after it (the leading END flushes line noise at the receiver).
func AppendSLIP(dst, frame []byte) []byte {
	dst = append(dst, slipEnd)
	for _, b := range frame {
		switch b {
		case slipEnd:
			dst = append(dst, slipEsc, slipEscEnd)
		case slipEsc:
			dst = append(dst, slipEsc, slipEscEsc)
		default:
			dst = append(dst, b)
		}
	}
	return append(dst, slipEnd)
}

// SLIPDecoder is a streaming SLIP decoder. Empty frames (back-to-back END
// bytes) are skipped silently; frames with an invalid escape or longer
// than the bound are dropped and counted.
type SLIPDecoder struct {
	max     int
	buf     []byte
	escape  bool
	discard bool // dropping the rest of a bad or oversize frame
	stats   DecoderStats
}

// NewSLIPDecoder returns a SLIP decoder for frames of at most maxFrame
// bytes (0 means 512).
func NewSLIPDecoder(maxFrame int) *SLIPDecoder {
	if maxFrame <= 0 {
		maxFrame = 512
	}
	return &SLIPDecoder{max: maxFrame, buf: make([]byte, 0, maxFrame)}
}

// Stats returns the decoder counters.
func (d *SLIPDecoder) Stats() DecoderStats { return d.stats }

// Reset drops any partial frame.
func (d *SLIPDecoder) Reset() {
	d.buf = d.buf[:0]
	d.escape, d.discard = false, false
}

// Feed consumes p and calls emit for every complete frame.
func (d *SLIPDecoder) Feed(p []byte, emit func(frame []byte)) {
	for _, b := range p {
		if b == slipEnd {
			if d.escape && !d.discard {
				d.stats.BadEscape++
			} else if !d.discard && len(d.buf) > 0 {
				d.stats.Frames++
				emit(d.buf)
			}
			d.Reset()
			continue
		}
		if d.discard {
			continue
		}
		if d.escape {
			d.escape = false
			switch b {
			case slipEscEnd:
				b = slipEnd
			case slipEscEsc:
				b = slipEsc
			default:
				d.stats.BadEscape++
				d.discard = true
				continue
			}
		} else if b == slipEsc {
			d.escape = true
			continue
		}
		if len(d.buf) == d.max {
			d.stats.Oversize++
			d.discard = true
			continue
		}
		d.buf = append(d.buf, b)
	}
}
