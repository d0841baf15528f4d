package channels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestIndexAddRemove(t *testing.T) {
	x := NewIndex[int]()
	type step struct {
		op      string // "add" or "remove"
		pattern string
		sub     int
		changed bool // added / removed
		edge    bool // first / last
	}
	for i, s := range []step{
		{"add", "/a", 1, true, true},
		{"add", "/a", 1, false, false},
		{"add", "/a", 2, true, false},
		{"add", "/a/*", 1, true, true},
		{"remove", "/a", 3, false, false},
		{"remove", "/b", 1, false, false},
		{"remove", "/a", 1, true, false},
		{"remove", "/a", 1, false, false},
		{"remove", "/a", 2, true, true},
		{"remove", "/a", 2, false, false},
		{"add", "/a", 2, true, true},
		{"remove", "/a/*", 1, true, true},
	} {
		var changed, edge bool
		if s.op == "add" {
			changed, edge = x.Add(s.pattern, s.sub)
		} else {
			changed, edge = x.Remove(s.pattern, s.sub)
		}
		if changed != s.changed || edge != s.edge {
			t.Fatalf("step %d: %s(%q, %d) = %v, %v, want %v, %v",
				i, s.op, s.pattern, s.sub, changed, edge, s.changed, s.edge)
		}
	}
	if n := x.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	if n := x.Count("/a"); n != 1 {
		t.Errorf("Count(/a) = %d, want 1", n)
	}
	if n := x.Count("/a/*"); n != 0 {
		t.Errorf("Count(/a/*) = %d, want 0", n)
	}
}

// TestIndexLargeEntry crosses the position-map thresholds both ways.
func TestIndexLargeEntry(t *testing.T) {
	x := NewIndex[int]()
	const n = 200
	for i := range n {
		if added, first := x.Add("/big", i); !added || first != (i == 0) {
			t.Fatalf("Add(%d) = %v, %v", i, added, first)
		}
	}
	for i := range n {
		if added, _ := x.Add("/big", i); added {
			t.Fatalf("Add(%d) twice reported added", i)
		}
	}
	// Remove in a scattered order, checking contents as we go.
	order := rand.New(rand.NewPCG(3, 4)).Perm(n)
	present := make(map[int]bool, n)
	for i := range n {
		present[i] = true
	}
	for k, i := range order {
		removed, last := x.Remove("/big", i)
		if !removed || last != (k == n-1) {
			t.Fatalf("Remove(%d) = %v, %v", i, removed, last)
		}
		delete(present, i)
		got := x.AppendMatch(nil, "/big")
		want := make([]int, 0, len(present))
		for v := range present {
			want = append(want, v)
		}
		if !sameSet(got, want) {
			t.Fatalf("after removing %d: AppendMatch = %v, want %v", i, got, want)
		}
		if c := x.Count("/big"); c != len(present) {
			t.Fatalf("Count = %d, want %d", c, len(present))
		}
	}
	if x.Len() != 0 {
		t.Errorf("Len = %d after removing all", x.Len())
	}
}

func TestIndexAppendMatch(t *testing.T) {
	x := NewIndex[string]()
	subs := map[string][]string{
		"/a":       {"s1"},
		"/a/b":     {"s2", "s3"},
		"/a/*":     {"s3", "s4"},
		"/a/**":    {"s4", "s5"},
		"/**":      {"s1", "s6"},
		"/*":       {"s7"},
		"/a/b/*":   {"s8"},
		"/b/**":    {"s9"},
		"/a/b/c/d": {"s10"},
	}
	for p, ss := range subs {
		for _, s := range ss {
			x.Add(p, s)
		}
	}
	for _, tc := range []struct {
		channel string
		want    []string
	}{
		{"/a", []string{"s1", "s6", "s7"}},
		{"/a/b", []string{"s2", "s3", "s4", "s5", "s1", "s6"}},
		{"/a/c", []string{"s3", "s4", "s5", "s1", "s6"}},
		{"/a/b/c", []string{"s8", "s4", "s5", "s1", "s6"}},
		{"/a/b/c/d", []string{"s10", "s4", "s5", "s1", "s6"}},
		{"/b", []string{"s1", "s6", "s7"}},
		{"/c/d", []string{"s1", "s6"}},
		{"/a/*", nil},
		{"/", nil},
		{"", nil},
		{"/a//b", nil},
	} {
		got := x.AppendMatch([]string{"pre"}, tc.channel)
		if got[0] != "pre" || !sameSet(got[1:], tc.want) {
			t.Errorf("AppendMatch(%q) = %q, want pre + %q", tc.channel, got, tc.want)
		}
	}
}

// TestIndexDedupPaths exercises the linear and the map de-duplication with
// large groups in every position.
func TestIndexDedupPaths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes map[string][2]int // pattern -> subscriber range [lo, hi)
	}{
		{"skewed", map[string][2]int{"/a/b": {0, 1000}, "/**": {999, 1001}}},
		{"even", map[string][2]int{"/a/*": {0, 400}, "/a/b": {300, 700}, "/**": {600, 1000}}},
		{"largest-first", map[string][2]int{"/a/b": {0, 900}, "/a/*": {0, 100}, "/**": {50, 150}}},
		{"largest-last", map[string][2]int{"/a/b": {0, 100}, "/a/*": {0, 100}, "/**": {50, 950}}},
		{"largest-middle", map[string][2]int{"/a/b": {0, 100}, "/a/**": {0, 800}, "/**": {50, 150}}},
		{"disjoint", map[string][2]int{"/a/b": {0, 300}, "/a/*": {300, 600}, "/**": {600, 900}}},
		{"identical", map[string][2]int{"/a/b": {0, 300}, "/a/*": {0, 300}, "/**": {0, 300}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := NewIndex[int]()
			want := map[int]bool{}
			for p, r := range tc.sizes {
				for s := r[0]; s < r[1]; s++ {
					x.Add(p, s)
					want[s] = true
				}
			}
			for range 3 { // reuse pooled sets
				got := x.AppendMatch(nil, "/a/b")
				checkNoDup(t, got)
				if len(got) != len(want) {
					t.Fatalf("got %d subscribers, want %d", len(got), len(want))
				}
				for _, s := range got {
					if !want[s] {
						t.Fatalf("unexpected subscriber %d", s)
					}
				}
			}
		})
	}
}

// TestIndexProperty compares AppendMatch with a brute-force matcher over
// random subscriptions, unsubscriptions and channels.
func TestIndexProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 40 {
		x := NewIndex[int]()
		ref := map[int]map[string]bool{} // subscriber -> patterns
		nsubs := 1 + r.IntN(30)
		for op := range 400 {
			s := r.IntN(nsubs)
			p := randPattern(r)
			if r.IntN(3) == 0 {
				// Remove something most of the time it exists.
				if ps := ref[s]; len(ps) > 0 && r.IntN(4) != 0 {
					for q := range ps {
						p = q
						break
					}
				}
				removed, last := x.Remove(p, s)
				if removed != ref[s][p] {
					t.Fatalf("round %d op %d: Remove(%q, %d) removed = %v", round, op, p, s, removed)
				}
				delete(ref[s], p)
				if removed && last != (refCount(ref, p) == 0) {
					t.Fatalf("round %d op %d: Remove(%q, %d) last = %v", round, op, p, s, last)
				}
			} else {
				before := refCount(ref, p)
				added, first := x.Add(p, s)
				if added == ref[s][p] || first != (added && before == 0) {
					t.Fatalf("round %d op %d: Add(%q, %d) = %v, %v", round, op, p, s, added, first)
				}
				if ref[s] == nil {
					ref[s] = map[string]bool{}
				}
				ref[s][p] = true
			}
			for range 3 {
				ch := randName(r)
				got := x.AppendMatch(nil, ch)
				var want []int
				for sub, ps := range ref {
					for q := range ps {
						if Match(q, ch) {
							want = append(want, sub)
							break
						}
					}
				}
				checkNoDup(t, got)
				if !sameSet(got, want) {
					t.Fatalf("round %d op %d: AppendMatch(%q) = %v, want %v", round, op, ch, got, want)
				}
			}
		}
		// Len, Count and Patterns agree with the reference.
		counts := map[string]int{}
		for _, ps := range ref {
			for p := range ps {
				counts[p]++
			}
		}
		if x.Len() != len(counts) {
			t.Fatalf("round %d: Len = %d, want %d", round, x.Len(), len(counts))
		}
		seen := map[string]int{}
		for p, n := range x.Patterns {
			seen[p] = n
		}
		for p, n := range counts {
			if x.Count(p) != n || seen[p] != n {
				t.Fatalf("round %d: %q: Count = %d, Patterns = %d, want %d", round, p, x.Count(p), seen[p], n)
			}
		}
		if len(seen) != len(counts) {
			t.Fatalf("round %d: Patterns gave %d patterns, want %d", round, len(seen), len(counts))
		}
	}
}

func refCount(ref map[int]map[string]bool, p string) int {
	n := 0
	for _, ps := range ref {
		if ps[p] {
			n++
		}
	}
	return n
}

func checkNoDup[S comparable](t *testing.T, got []S) {
	t.Helper()
	seen := make(map[S]bool, len(got))
	for _, s := range got {
		if seen[s] {
			t.Fatalf("subscriber %v appears twice in %v", s, got)
		}
		seen[s] = true
	}
}

func TestIndexPatternsStop(t *testing.T) {
	x := NewIndex[int]()
	for i := range 100 {
		x.Add(fmt.Sprintf("/p%d", i), i)
	}
	calls := 0
	x.Patterns(func(string, int) bool {
		calls++
		return calls < 5
	})
	if calls != 5 {
		t.Errorf("Patterns made %d calls after stop, want 5", calls)
	}
	// fn may use the index: no lock is held.
	x.Patterns(func(p string, _ int) bool {
		x.Add(p, -1)
		return true
	})
	if n := x.Count("/p7"); n != 2 {
		t.Errorf("Count(/p7) = %d, want 2", n)
	}
}

func TestIndexZeroValue(t *testing.T) {
	var x Index[int]
	if got := x.AppendMatch(nil, "/a"); got != nil {
		t.Errorf("AppendMatch on empty index = %v", got)
	}
	x.Add("/a", 1)
	x.Add("/*", 1)
	x.Add("/**", 2)
	if got := x.AppendMatch(nil, "/a"); !sameSet(got, []int{1, 2}) {
		t.Errorf("AppendMatch = %v", got)
	}
}

func TestIndexLongChannel(t *testing.T) {
	x := NewIndex[int]()
	long := "/" + string(slices.Repeat([]byte("x"), 300))
	x.Add(long, 1)
	x.Add(long[:100]+"/**", 2) // not a prefix at a segment boundary
	x.Add("/**", 3)
	if got := x.AppendMatch(nil, long); !sameSet(got, []int{1, 3}) {
		t.Errorf("AppendMatch(long) = %v", got)
	}
	deep := string(slices.Repeat([]byte("/y"), 200))
	x.Add(deep[:200]+"/**", 4)
	x.Add(deep[:len(deep)-2]+"/*", 5)
	if got := x.AppendMatch(nil, deep); !sameSet(got, []int{3, 4, 5}) {
		t.Errorf("AppendMatch(deep) = %v", got)
	}
}

func TestIndexConcurrent(t *testing.T) {
	x := NewIndex[int]()
	patterns := []string{"/a", "/a/b", "/a/*", "/a/**", "/**", "/*", "/a/b/c", "/a/b/*", "/b/**"}
	channels := []string{"/a", "/a/b", "/a/b/c", "/b/c", "/c"}
	const writers, readers, iters = 8, 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range iters {
				s := w*100 + r.IntN(20)
				p := patterns[r.IntN(len(patterns))]
				if r.IntN(2) == 0 {
					x.Add(p, s)
				} else {
					x.Remove(p, s)
				}
			}
			// Leave nothing behind.
			for s := w * 100; s < w*100+20; s++ {
				for _, p := range patterns {
					x.Remove(p, s)
				}
			}
		})
	}
	for rd := range readers {
		wg.Go(func() {
			var dst []int
			for i := range iters {
				dst = x.AppendMatch(dst[:0], channels[(i+rd)%len(channels)])
				checkNoDup(t, dst)
				_ = x.Len()
				_ = x.Count(patterns[i%len(patterns)])
			}
		})
	}
	wg.Wait()
	if n := x.Len(); n != 0 {
		t.Errorf("Len = %d after all removed", n)
	}
}

func TestIndexAllocs(t *testing.T) {
	type session struct{ id int }
	x := NewIndex[*session]()
	for i := range 1000 {
		x.Add("/chat/room", &session{i})
	}
	dst := make([]*session, 0, 2048)
	if n := testing.AllocsPerRun(100, func() { dst = x.AppendMatch(dst[:0], "/chat/room") }); n != 0 {
		t.Errorf("AppendMatch, one pattern: %v allocs, want 0", n)
	}
	if len(dst) != 1000 {
		t.Fatalf("got %d subscribers", len(dst))
	}
	// The de-duplication path reuses a pooled set (AllocsPerRun runs with
	// GOMAXPROCS=1, so the pool keeps it unless a GC happens: allow for that
	// with a small average; the race detector makes the pool drop items).
	for i := range 1000 {
		x.Add([]string{"/chat/*", "/**"}[i%2], dst[i])
	}
	n := testing.AllocsPerRun(100, func() { dst = x.AppendMatch(dst[:0], "/chat/room") })
	if n > 0.1 && !raceEnabled {
		t.Errorf("AppendMatch, three patterns: %v allocs, want ~0", n)
	}
	if len(dst) != 1000 {
		t.Fatalf("got %d subscribers", len(dst))
	}
}
