package main

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestBucketRangeCoversValue(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<39 + 12345}
	for i := 0; i < 10000; i++ {
		vals = append(vals, r.Uint64N(1<<39))
	}
	for _, v := range vals {
		b := bucketOf(v)
		lo, hi := bucketRange(b)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, b, lo, hi)
		}
		if v >= histLinear && float64(hi-lo+1)/float64(lo) > 1.0/64+1e-9 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/64 of its value", b, lo, hi)
		}
	}
	// Buckets are contiguous and increasing.
	_, prevHi := bucketRange(0)
	for b := 1; b < histBuckets; b++ {
		lo, hi := bucketRange(b)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d = [%d, %d] does not follow %d", b, lo, hi, prevHi)
		}
		prevHi = hi
	}
}

func TestHistogramQuantiles(t *testing.T) {
	ms := time.Millisecond
	seq := func(n int, unit time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * unit
		}
		return out
	}
	repeat := func(d time.Duration, n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = d
		}
		return out
	}
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.99, 0},
		{"single value", []time.Duration{5 * ms}, 0.5, 5 * ms},
		{"single value p99", []time.Duration{5 * ms}, 0.99, 5 * ms},
		{"1..100ms p50", seq(100, ms), 0.50, 50 * ms},
		{"1..100ms p90", seq(100, ms), 0.90, 90 * ms},
		{"1..100ms p99", seq(100, ms), 0.99, 99 * ms},
		{"1..100ms p100 is the max", seq(100, ms), 1, 100 * ms},
		{"1..1000µs p50 (exact region and above)", seq(1000, time.Microsecond), 0.50, 500 * time.Microsecond},
		{"small values are exact", seq(100, time.Microsecond), 0.25, 25 * time.Microsecond},
		{"bimodal: 99 fast, 1 slow, p99 is fast", append(repeat(time.Millisecond, 99), time.Second), 0.99, time.Millisecond},
		{"bimodal: 98 fast, 2 slow, p99 is slow", append(repeat(time.Millisecond, 98), time.Second, time.Second), 0.99, time.Second},
		{"sub-microsecond", []time.Duration{300, 400, 500}, 0.5, 400},
		{"negative counts as zero", []time.Duration{-5 * ms}, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.record(v)
			}
			got := h.quantile(tt.q)
			// Bucket precision: at most 1/64 above the true value (plus
			// the microsecond floor), never below it.
			lo, hi := tt.want, tt.want+tt.want/64+time.Microsecond
			if got < lo || got > hi {
				t.Fatalf("quantile(%g) = %v, want %v (up to %v)", tt.q, got, tt.want, hi)
			}
		})
	}
}

func TestHistogramMergeMaxMean(t *testing.T) {
	var a, b, m histogram
	for i := 1; i <= 50; i++ {
		a.record(time.Duration(i) * time.Millisecond)
	}
	for i := 51; i <= 100; i++ {
		b.record(time.Duration(i) * time.Millisecond)
	}
	m.merge(&a)
	m.merge(&b)
	m.merge(nil)
	if m.n != 100 {
		t.Fatalf("n = %d", m.n)
	}
	if m.max != uint64(100*time.Millisecond) {
		t.Fatalf("max = %v", time.Duration(m.max))
	}
	if got := m.mean(); got != 50500*time.Microsecond {
		t.Fatalf("mean = %v", got)
	}
	if got := m.quantile(0.5); got < 50*time.Millisecond || got > 51*time.Millisecond {
		t.Fatalf("merged p50 = %v", got)
	}
}

func TestSeqTrack(t *testing.T) {
	tests := []struct {
		name       string
		seqs       []uint64
		late, dups int
	}{
		{"in order", []uint64{1, 2, 3, 4, 5}, 0, 0},
		{"gaps are not errors by themselves", []uint64{1, 5, 9}, 0, 0},
		{"starts late (joined after the first publishes)", []uint64{7, 8, 9}, 0, 0},
		{"immediate duplicate", []uint64{1, 2, 2, 3}, 0, 1},
		{"swap", []uint64{1, 3, 2, 4}, 1, 0},
		{"late then its duplicate", []uint64{1, 3, 2, 2}, 1, 1},
		{"duplicate of an older one", []uint64{1, 2, 3, 4, 2}, 0, 1},
		{"duplicate 63 behind is caught", append(seqRange(1, 64), 1), 0, 1},
		{"64 behind is too old to tell: counted late", append(seqRange(1, 65), 1), 1, 0},
		{"a jump of 64 or more forgets the window", []uint64{1, 2, 100, 2}, 1, 0},
		{"replay of everything", append(seqRange(1, 10), seqRange(1, 10)...), 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr seqTrack
			late, dups := 0, 0
			for _, s := range tt.seqs {
				switch tr.observe(s) {
				case seqLate:
					late++
				case seqDuplicate:
					dups++
				}
			}
			if late != tt.late || dups != tt.dups {
				t.Fatalf("late %d dups %d, want late %d dups %d", late, dups, tt.late, tt.dups)
			}
		})
	}
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// arrival is one delivery to a subscriber in TestRecvStatsAccounting.
type arrival struct {
	pub, seq int64
	measured bool
	lat      time.Duration
}

func TestRecvStatsAccounting(t *testing.T) {
	const now = int64(1_000_000_000_000)
	tests := []struct {
		name                        string
		publishers                  int
		arrivals                    []arrival
		expected                    int64
		unique, dups, late, foreign int64
		lost                        int64
		samples                     uint64
	}{
		{
			name:       "all in order, all measured",
			publishers: 2,
			arrivals:   []arrival{{0, 1, true, ms(1)}, {1, 1, true, ms(2)}, {0, 2, true, ms(3)}, {1, 2, true, ms(4)}},
			expected:   4, unique: 4, samples: 4,
		},
		{
			name:       "warm-up messages are not counted or timed",
			publishers: 1,
			arrivals:   []arrival{{0, 1, false, ms(1)}, {0, 2, false, ms(1)}, {0, 3, true, ms(1)}},
			expected:   1, unique: 1, samples: 1,
		},
		{
			name:       "a lost message",
			publishers: 1,
			arrivals:   []arrival{{0, 1, true, ms(1)}, {0, 3, true, ms(1)}},
			expected:   3, unique: 2, lost: 1, samples: 2,
		},
		{
			name:       "a duplicate is neither received twice nor timed twice",
			publishers: 1,
			arrivals:   []arrival{{0, 1, true, ms(1)}, {0, 2, true, ms(1)}, {0, 2, true, ms(9)}},
			expected:   2, unique: 2, dups: 1, samples: 2,
		},
		{
			name:       "out of order still counts as received",
			publishers: 1,
			arrivals:   []arrival{{0, 2, true, ms(1)}, {0, 1, true, ms(1)}, {0, 3, true, ms(1)}},
			expected:   3, unique: 3, late: 1, samples: 3,
		},
		{
			name:       "per-publisher order: interleaving publishers is fine",
			publishers: 3,
			arrivals:   []arrival{{2, 1, true, 0}, {0, 1, true, 0}, {1, 1, true, 0}, {0, 2, true, 0}, {2, 2, true, 0}},
			expected:   5, unique: 5, samples: 5,
		},
		{
			name:       "unknown publisher is foreign",
			publishers: 1,
			arrivals:   []arrival{{0, 1, true, 0}, {5, 1, true, 0}, {-1, 1, true, 0}},
			expected:   1, unique: 1, foreign: 2, samples: 1,
		},
		{
			name:       "more received than expected never gives negative loss",
			publishers: 1,
			arrivals:   []arrival{{0, 1, true, 0}, {0, 2, true, 0}},
			expected:   1, unique: 2, samples: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecvStats(tt.publishers)
			var f msgFields
			for _, a := range tt.arrivals {
				f.reset()
				f.hasData, f.pub, f.seq, f.measured, f.sent = true, a.pub, a.seq, a.measured, now-int64(a.lat)
				r.delivery(&f, now)
			}
			got := []int64{r.unique, r.duplicates, r.late, r.foreign, lost(tt.expected, r.unique)}
			want := []int64{tt.unique, tt.dups, tt.late, tt.foreign, tt.lost}
			if got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] || got[4] != want[4] {
				t.Fatalf("unique,dups,late,foreign,lost = %v, want %v", got, want)
			}
			var n uint64
			if r.hist != nil {
				n = r.hist.n
			}
			if n != tt.samples {
				t.Fatalf("latency samples %d, want %d", n, tt.samples)
			}
			if int64(len(tt.arrivals)) != r.msgs {
				t.Fatalf("msgs %d, want %d", r.msgs, len(tt.arrivals))
			}
		})
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestTotals(t *testing.T) {
	a, b := newRecvStats(1), newRecvStats(1)
	var f msgFields
	for i, r := range []*recvStats{a, b} {
		for s := int64(1); s <= 3; s++ {
			f.reset()
			f.hasData, f.seq, f.measured, f.sent = true, s, true, 0
			r.delivery(&f, int64(i+1)*int64(time.Millisecond))
		}
		r.frames = 2
	}
	var tot totals
	tot.add(a)
	tot.add(b)
	if tot.unique != 6 || tot.frames != 4 || tot.msgs != 6 || tot.hist.n != 6 {
		t.Fatalf("totals %+v", tot)
	}
	if got := tot.hist.quantile(1); got != 2*time.Millisecond {
		t.Fatalf("max quantile %v", got)
	}
}

func TestFrameIter(t *testing.T) {
	type want struct {
		channel, id, errText string
		successful           int8
		hasData              bool
		seq, sent, pub       int64
		measured             bool
	}
	tests := []struct {
		name    string
		frame   string
		want    []want
		wantErr bool
	}{
		{
			name:  "bayou batch of deliveries",
			frame: `[{"channel":"/x","data":{"s":1,"t":100,"p":0,"m":1,"x":"pad"},"id":"1-1-0"},{"channel":"/x","data":{"s":2,"t":200,"p":3,"m":0},"id":"2-0-0"}]`,
			want: []want{
				{channel: "/x", id: "1-1-0", successful: -1, hasData: true, seq: 1, sent: 100, measured: true},
				{channel: "/x", id: "2-0-0", successful: -1, hasData: true, seq: 2, sent: 200, pub: 3},
			},
		},
		{
			name:  "faye key order, whitespace",
			frame: " [ { \"id\" : \"7\", \"data\" : { \"p\" : 1, \"m\":1, \"t\" : 5, \"s\" : 9 } , \"channel\" : \"/a/b\" } ] ",
			want:  []want{{channel: "/a/b", id: "7", successful: -1, hasData: true, seq: 9, sent: 5, pub: 1, measured: true}},
		},
		{
			name:  "single object",
			frame: `{"channel":"/meta/connect","successful":true,"advice":{"reconnect":"retry","interval":0,"timeout":25000},"id":"c"}`,
			want:  []want{{channel: "/meta/connect", id: "c", successful: 1}},
		},
		{
			name:  "slow consumer connect reply and a publish ack",
			frame: `[{"id":"c","channel":"/meta/connect","successful":false,"error":"402:x:slow consumer","advice":{"reconnect":"handshake"}},{"id":"5-1-2","channel":"/bench/u/2","successful":true}]`,
			want: []want{
				{channel: "/meta/connect", id: "c", successful: 0, errText: "402:x:slow consumer"},
				{channel: "/bench/u/2", id: "5-1-2", successful: 1},
			},
		},
		{
			name:  "foreign data, numeric id, nested values and escapes are skipped",
			frame: `[{"channel":"/x","data":{"text":"a \"quoted\" ]} string","list":[1,{"s":99}],"n":null},"id":12,"ext":{"a":[true,false,null,-1.5e3]}}]`,
			want:  []want{{channel: "/x", id: "12", successful: -1}},
		},
		{
			name:  "non-object data",
			frame: `[{"channel":"/x","data":"hi"},{"channel":"/y","data":[1,2]}]`,
			want:  []want{{channel: "/x", successful: -1}, {channel: "/y", successful: -1}},
		},
		{name: "empty array", frame: `[]`},
		{name: "empty frame", frame: ``},
		{name: "truncated", frame: `[{"channel":"/x","data":{"s":1`, wantErr: true},
		{name: "not JSON", frame: `hello`, wantErr: true},
		{name: "float seq is rejected", frame: `[{"channel":"/x","data":{"s":1.5}}]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var it frameIter
			var f msgFields
			it.reset([]byte(tt.frame))
			var got []want
			for it.next(&f) {
				got = append(got, want{string(f.channel), string(f.id), string(f.errText), f.successful, f.hasData, f.seq, f.sent, f.pub, f.measured})
			}
			if (it.err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", it.err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d messages %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("message %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		id       string
		seq      int64
		measured bool
		tgt      int
		ok       bool
	}{
		{"12-1-7", 12, true, 7, true},
		{"3-0-0", 3, false, 0, true},
		{"3-0", 0, false, 0, false},
		{"3-0-0-1", 0, false, 0, false},
		{"a-0-0", 0, false, 0, false},
		{"", 0, false, 0, false},
	}
	for _, tt := range tests {
		seq, m, tgt, ok := parseID([]byte(tt.id))
		if seq != tt.seq || m != tt.measured || tgt != tt.tgt || ok != tt.ok {
			t.Errorf("parseID(%q) = %d %v %d %v", tt.id, seq, m, tgt, ok)
		}
	}
}

// The receive path must not allocate per frame or per message.
func TestReceivePathDoesNotAllocate(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := 1; i <= 20; i++ {
		if i > 1 {
			b.WriteString(",")
		}
		b.WriteString(`{"channel":"/bench/fan","data":{"s":`)
		b.WriteString(strings.Repeat("1", 1) + string(rune('0'+i%10)))
		b.WriteString(`,"t":1,"p":0,"m":1,"x":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"id":"1-1-0"}`)
	}
	b.WriteString("]")
	frame := []byte(b.String())
	sh := &shared{ev: newEvents()}
	s := &subscriber{sh: sh, stats: newRecvStats(1)}
	var it frameIter
	var f msgFields
	s.handleFrame(frame, &it, &f) // allocates the histogram once
	allocs := testing.AllocsPerRun(200, func() { s.handleFrame(frame, &it, &f) })
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
	if s.stats.msgs != 202*20 { // 1 + AllocsPerRun's warm-up + 200
		t.Fatalf("msgs %d", s.stats.msgs)
	}
}

func TestAggregate(t *testing.T) {
	rs := []*Result{{OK: true, DeliveredPerS: 3}, {OK: true, DeliveredPerS: 1}, {OK: false, DeliveredPerS: 100}, {OK: true, DeliveredPerS: 2}}
	get := func(r *Result) float64 { return r.DeliveredPerS }
	tests := []struct {
		how   string
		lower bool
		want  float64
	}{
		{"median", false, 2},
		{"mean", false, 2},
		{"best", false, 3},
		{"best", true, 1},
	}
	for _, tt := range tests {
		got, all, ok := aggregate(rs, get, tt.how, tt.lower)
		if !ok || got != tt.want || len(all) != 3 {
			t.Errorf("aggregate(%s, lower=%v) = %v %v %v, want %v", tt.how, tt.lower, got, all, ok, tt.want)
		}
	}
	if got, _, _ := aggregate(rs[:2], get, "median", false); got != 2 {
		t.Errorf("even median = %v", got)
	}
	if _, _, ok := aggregate(rs[2:3], get, "median", false); ok {
		t.Error("only failed runs should give no value")
	}
}
