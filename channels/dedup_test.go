package channels

import (
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDedupSchemes feeds both de-duplication schemes random groups (each
// free of repeats, as the patterns' subscriber lists are) and checks that
// they keep exactly one of each subscriber, and what precedes start.
func TestDedupSchemes(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	var x Index[int]
	set := &hashSet[int]{seed: maphash.MakeSeed()}
	for iter := range 3000 {
		universe := 1 + r.IntN(200)
		ngroups := 2 + r.IntN(4)
		dst := []int{-1, -2} // must survive
		start := len(dst)
		var g groups
		for range ngroups {
			before := len(dst)
			size := 1 + r.IntN(universe)
			dst = append(dst, r.Perm(universe)[:size]...)
			g.note(before, len(dst))
		}
		want := slices.Clone(dst[start:])
		slices.Sort(want)
		want = slices.Compact(want)

		for _, scheme := range []struct {
			name string
			run  func([]int) []int
		}{
			{"linear", func(d []int) []int { return dedupLinear(d, start, g.ls, g.le) }},
			{"hash", func(d []int) []int { return set.dedup(d, start) }},
			{"index", func(d []int) []int { return x.dedup(d, start, g.ls, g.le) }},
		} {
			in := slices.Clone(dst)
			got := scheme.run(in)
			if got[0] != -1 || got[1] != -2 {
				t.Fatalf("iter %d %s: prefix clobbered: %v", iter, scheme.name, got[:2])
			}
			for _, v := range in[len(got):] {
				if v != 0 {
					t.Fatalf("iter %d %s: dropped tail not cleared", iter, scheme.name)
				}
			}
			got = slices.Clone(got[start:])
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("iter %d %s: got %v, want %v", iter, scheme.name, got, want)
			}
		}
		if slices.ContainsFunc(set.used, func(b bool) bool { return b }) {
			t.Fatalf("iter %d: hash set not empty after use", iter)
		}
	}
}
