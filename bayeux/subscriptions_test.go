package bayeux

import (
	"fmt"
	"slices"
	"testing"
)

// TestSubSet adds and removes subscriptions across the size at which the
// set starts and stops indexing them, checking it against a plain list.
func TestSubSet(t *testing.T) {
	for _, n := range []int{3, subSetMapMin, subSetMapMin + 1, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var s subSet
			var want []string
			check := func(step string) {
				t.Helper()
				if s.len() != len(want) {
					t.Fatalf("%s: %d subscriptions, want %d", step, s.len(), len(want))
				}
				for _, p := range want {
					if !s.has(p) {
						t.Fatalf("%s: %s missing", step, p)
					}
				}
				if got := slices.Sorted(slices.Values(s.list)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
					t.Fatalf("%s: %q, want %q", step, got, want)
				}
			}
			for i := range n {
				p := fmt.Sprintf("/c/%d", i)
				s.add(p)
				want = append(want, p)
			}
			check("added")
			if s.remove("/not/there") {
				t.Fatal("removed what was not there")
			}
			for i := 0; i < n; i += 2 { // every other one, first to last
				p := fmt.Sprintf("/c/%d", i)
				if !s.remove(p) || s.has(p) {
					t.Fatalf("remove %s", p)
				}
				want = slices.DeleteFunc(want, func(x string) bool { return x == p })
				check("after removing " + p)
			}
			if got := s.take(); len(got) != len(want) || s.len() != 0 || s.has(want[0]) {
				t.Fatalf("take: %q, then %d left", got, s.len())
			}
		})
	}
}
