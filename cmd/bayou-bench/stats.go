package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram in microseconds: exact below
// 128 µs, then 64 buckets per power of two (at most 1/64 ≈ 1.6 % relative
// error), up to 2^histMaxBits µs. Recording never allocates.
type histogram struct {
	counts [histBuckets]uint32
	n      uint64
	sum    uint64 // µs
	max    uint64 // ns, exact
}

const (
	histLinear  = 128 // exact buckets 0..127 µs
	histSubBits = 6   // 64 sub-buckets per power of two
	histMaxBits = 40  // about 12.7 days: plenty
	histBuckets = histLinear + (histMaxBits-7)*(1<<histSubBits)
)

// bucketOf returns the bucket of a value in µs.
func bucketOf(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	n := bits.Len64(us) // ≥ 8
	if n > histMaxBits {
		return histBuckets - 1
	}
	shift := n - (histSubBits + 1)
	m := us >> shift // in [64, 127]
	return histLinear + (n-8)*(1<<histSubBits) + int(m-(1<<histSubBits))
}

// bucketRange returns the lowest and highest µs value of bucket b.
func bucketRange(b int) (lo, hi uint64) {
	if b < histLinear {
		return uint64(b), uint64(b)
	}
	b -= histLinear
	n := b/(1<<histSubBits) + 8
	m := uint64(b%(1<<histSubBits) + (1 << histSubBits))
	shift := n - (histSubBits + 1)
	lo = m << shift
	return lo, lo + (1 << shift) - 1
}

// record adds one latency.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0 // clocks are the same here; guard anyway
	}
	ns := uint64(d)
	us := ns / 1000
	h.counts[bucketOf(us)]++
	h.n++
	h.sum += us
	if ns > h.max {
		h.max = ns
	}
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	if o == nil {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the smallest recorded value v (to the bucket's
// precision: the highest value of its bucket, capped by the exact maximum)
// such that at least q of all values are ≤ v. Zero when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		q = 0
	}
	if q > 1 {
		q = 1
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for b, c := range h.counts {
		cum += uint64(c)
		if cum >= rank {
			_, hi := bucketRange(b)
			ns := hi*1000 + 999
			if ns > h.max {
				ns = h.max
			}
			return time.Duration(ns)
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum * 1000 / h.n)
}

// seqTrack follows the sequence numbers one subscriber receives from one
// publisher. Publishers number their messages 1, 2, 3...; a server must
// deliver each publisher's messages in that order. The 64-bit mask
// remembers which of the 64 numbers below the highest seen have arrived,
// so that a late message is told apart from a duplicate.
type seqTrack struct {
	last uint64 // highest sequence number seen; 0: none
	mask uint64 // bit i: last-i has been seen
}

// seqVerdict classifies one arrival.
type seqVerdict uint8

const (
	seqNew       seqVerdict = iota // first arrival, in order
	seqLate                        // first arrival, after a higher number
	seqDuplicate                   // seen before
)

// observe records the arrival of seq (≥ 1).
func (t *seqTrack) observe(seq uint64) seqVerdict {
	switch {
	case seq > t.last:
		if d := seq - t.last; d >= 64 || t.last == 0 {
			t.mask = 1
		} else {
			t.mask = t.mask<<d | 1
		}
		t.last = seq
		return seqNew
	case seq == t.last:
		return seqDuplicate
	default:
		d := t.last - seq
		if d >= 64 {
			return seqLate // too old to tell; assume a first arrival
		}
		bit := uint64(1) << d
		if t.mask&bit != 0 {
			return seqDuplicate
		}
		t.mask |= bit
		return seqLate
	}
}

// recvStats is what one subscriber saw; owned by its reader goroutine
// until the run ends.
type recvStats struct {
	unique     int64 // distinct measured messages
	duplicates int64 // any message seen twice
	late       int64 // out of order
	frames     int64
	msgs       int64 // every delivery, measured or not
	foreign    int64 // deliveries without our payload, or from an unknown publisher
	hist       *histogram
	tracks     []seqTrack // per publisher
}

func newRecvStats(publishers int) *recvStats {
	return &recvStats{tracks: make([]seqTrack, publishers)}
}

// delivery accounts for one delivered benchmark message received at now;
// it reports whether it was one of ours seen for the first time.
func (r *recvStats) delivery(f *msgFields, now int64) bool {
	r.msgs++
	if !f.hasData || f.pub < 0 || f.pub >= int64(len(r.tracks)) || f.seq < 1 {
		r.foreign++
		return false
	}
	switch r.tracks[f.pub].observe(uint64(f.seq)) {
	case seqDuplicate:
		r.duplicates++
		return false
	case seqLate:
		r.late++
	}
	if f.measured {
		r.unique++
		if r.hist == nil {
			r.hist = new(histogram)
		}
		r.hist.record(time.Duration(now - f.sent))
	}
	return true
}

// totals is the sum of every subscriber's recvStats.
type totals struct {
	unique, duplicates, late, frames, msgs, foreign int64
	hist                                            histogram
}

func (t *totals) add(r *recvStats) {
	t.unique += r.unique
	t.duplicates += r.duplicates
	t.late += r.late
	t.frames += r.frames
	t.msgs += r.msgs
	t.foreign += r.foreign
	t.hist.merge(r.hist)
}

// lost is expected minus distinct measured arrivals, never negative.
func lost(expected, unique int64) int64 {
	if unique >= expected {
		return 0
	}
	return expected - unique
}
