package bench

import (
	"encoding/binary"
	"math/bits"
)

// subBits gives each power of two 64 sub-buckets: a recorded value is
// known to within 1/64 (1.6%).
const subBits = 6

// histBuckets covers every uint64 value.
const histBuckets = (65 - subBits) << subBits

// hist is a log-linear histogram of non-negative durations in
// nanoseconds. It is not safe for concurrent use: each goroutine keeps its
// own and they are merged at the end.
type hist struct {
	counts     []uint64
	n          uint64
	sum        uint64
	minV, maxV uint64
}

func newHist() *hist { return &hist{counts: make([]uint64, histBuckets)} }

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < 2<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// bucketLow returns the smallest value of bucket i.
func bucketLow(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	return uint64(i&(1<<subBits-1)+1<<subBits) << shift
}

// add records one value; negative values (clock steps) count as 0.
func (h *hist) add(v int64) {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	h.counts[bucketOf(u)]++
	if h.n == 0 || u < h.minV {
		h.minV = u
	}
	if u > h.maxV {
		h.maxV = u
	}
	h.n++
	h.sum += u
}

// merge adds o's samples to h.
func (h *hist) merge(o *hist) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.minV < h.minV {
		h.minV = o.minV
	}
	h.maxV = max(h.maxV, o.maxV)
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value at quantile q (0..1): the middle of the
// bucket that holds it, clamped to the observed range.
func (h *hist) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketLow(i), bucketLow(i+1)
			v := lo
			if hi > lo {
				v += (hi - lo) / 2
			}
			return min(max(v, h.minV), h.maxV)
		}
	}
	return h.maxV
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Samples uint64  `json:"samples"` // Samples is the number of measurements.
	P50Ms   float64 `json:"p50_ms"`  // P50Ms is the median.
	P90Ms   float64 `json:"p90_ms"`  // P90Ms is the 90th percentile.
	P99Ms   float64 `json:"p99_ms"`  // P99Ms is the 99th percentile.
	MaxMs   float64 `json:"max_ms"`  // MaxMs is the largest measurement.
	MeanMs  float64 `json:"mean_ms"` // MeanMs is the mean.
}

// summary returns h's quantiles in milliseconds.
func (h *hist) summary() Latency {
	if h == nil || h.n == 0 {
		return Latency{}
	}
	ms := func(v uint64) float64 { return float64(v) / 1e6 }
	return Latency{
		Samples: h.n,
		P50Ms:   ms(h.quantile(0.50)),
		P90Ms:   ms(h.quantile(0.90)),
		P99Ms:   ms(h.quantile(0.99)),
		MaxMs:   ms(h.maxV),
		MeanMs:  float64(h.sum) / float64(h.n) / 1e6,
	}
}

// stamp writes the payload header: send time (ns since the run's epoch),
// client number and sequence number. The rest of p is left as is.
func stamp(p []byte, at int64, client, seq uint32) {
	binary.BigEndian.PutUint64(p, uint64(at))
	binary.BigEndian.PutUint32(p[8:], client)
	binary.BigEndian.PutUint32(p[12:], seq)
}

// unstamp reads a payload header; ok is false for a payload too short to
// be one of ours.
func unstamp(p []byte) (at int64, client, seq uint32, ok bool) {
	if len(p) < MinSize {
		return 0, 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(p)), binary.BigEndian.Uint32(p[8:]), binary.BigEndian.Uint32(p[12:]), true
}

// seqSet records which sequence numbers arrived, to count distinct
// deliveries and duplicates.
type seqSet struct {
	bits []uint64
	n    uint32
}

// maxSeq bounds the sequence numbers a seqSet tracks (16 Mi, 2 MiB).
const maxSeq = 1 << 24

// add records seq and reports whether it was new. Sequence numbers past
// maxSeq are counted as new without tracking.
func (s *seqSet) add(seq uint32) bool {
	if seq >= maxSeq {
		s.n++
		return true
	}
	w := int(seq >> 6)
	if w >= len(s.bits) {
		nb := make([]uint64, max(w+1, 2*len(s.bits)))
		copy(nb, s.bits)
		s.bits = nb
	}
	m := uint64(1) << (seq & 63)
	if s.bits[w]&m != 0 {
		return false
	}
	s.bits[w] |= m
	s.n++
	return true
}
