package channels

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestExpandGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"/a", []string{"/**", "/*", "/a"}},
		{"/a/b", []string{"/**", "/a/**", "/a/*", "/a/b"}},
		{"/a/b/c", []string{"/**", "/a/**", "/a/b/**", "/a/b/*", "/a/b/c"}},
		{"/foo/bar/baz/qux", []string{
			"/**", "/foo/**", "/foo/bar/**", "/foo/bar/baz/**",
			"/foo/bar/baz/*", "/foo/bar/baz/qux",
		}},
		{"/meta/connect", []string{"/**", "/meta/**", "/meta/*", "/meta/connect"}},
		// Characters are not checked: Wide names expand too.
		{"/a b/c.d", []string{"/**", "/a b/**", "/a b/*", "/a b/c.d"}},
	} {
		got := Expand(tc.name)
		if !sameSet(got, tc.want) {
			t.Errorf("Expand(%q) = %q, want (as a set) %q", tc.name, got, tc.want)
		}
		if len(got) != len(tc.want) {
			t.Errorf("Expand(%q) has %d entries, want %d", tc.name, len(got), len(tc.want))
		}
		// AppendExpand keeps what dst holds.
		got = AppendExpand([]string{"keep"}, tc.name)
		if got[0] != "keep" || !sameSet(got[1:], tc.want) {
			t.Errorf("AppendExpand([keep], %q) = %q", tc.name, got)
		}
	}
}

func TestExpandIllFormed(t *testing.T) {
	for _, in := range []string{
		"", "/", "//", "/a/", "/a//b", "a", "a/b", "/*", "/**", "/a/*", "/a/**",
		"/a/*/b", "/a/b*", "/*a",
	} {
		if got := Expand(in); got != nil {
			t.Errorf("Expand(%q) = %q, want nil", in, got)
		}
		dst := []string{"x"}
		if got := AppendExpand(dst, in); !slices.Equal(got, dst) {
			t.Errorf("AppendExpand([x], %q) = %q, want [x]", in, got)
		}
	}
}

func TestExpandAllocs(t *testing.T) {
	dst := make([]string, 0, 16)
	for _, tc := range []struct {
		name   string
		allocs float64
	}{
		{"/a", 0},
		{"/a/b", 1},
		{"/chat/room/messages/x", 1},
	} {
		if n := testing.AllocsPerRun(100, func() { AppendExpand(dst[:0], tc.name) }); n != tc.allocs {
			t.Errorf("AppendExpand(%q): %v allocs, want %v", tc.name, n, tc.allocs)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"/a", "/a", true},
		{"/a/b", "/a/b", true},
		{"/a", "/b", false},
		{"/a", "/a/b", false},
		{"/a/b", "/a", false},
		{"/*", "/a", true},
		{"/*", "/a/b", false},
		{"/**", "/a", true},
		{"/**", "/a/b/c", true},
		{"/a/*", "/a", false},
		{"/a/*", "/a/b", true},
		{"/a/*", "/a/b/c", false},
		{"/a/*", "/ab/c", false},
		{"/a/**", "/a", false},
		{"/a/**", "/a/b", true},
		{"/a/**", "/a/b/c", true},
		{"/a/**", "/ab", false},
		{"/a/**", "/ab/c", false},
		{"/a/b/*", "/a/b/c", true},
		{"/a/b/*", "/a/c/d", false},
		// Ill-formed names match nothing; ill-formed patterns nothing.
		{"/**", "", false},
		{"/**", "/", false},
		{"/**", "/a/", false},
		{"/**", "/a//b", false},
		{"/**", "/a/*", false},
		{"/a/*", "/a/*", false},
		{"/a/**", "/a/**", false},
		{"/a//**", "/a//b", false},
		{"//**", "//a", false},
		{"/a/", "/a/", false},
		{"", "", false},
		{"*", "/a", false},
		{"**", "/a", false},
		{"/a/***", "/a/b", false},
		{"/a*/**", "/a/b", false},
		{"/*/**", "/a/b", false},
		{"a/**", "a/b", false},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
		if got := refMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("refMatch(%q, %q) = %v, want %v (bad test reference)", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// TestMatchProperty checks, over random names and patterns on a small
// alphabet, that Match, the segment-based refMatch and Expand all agree.
func TestMatchProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		name := randName(r)
		if r.IntN(10) == 0 {
			name = randJunk(r)
		}
		pattern := randPattern(r)
		if r.IntN(10) == 0 {
			pattern = randJunk(r)
		}
		inExpand := slices.Contains(Expand(name), pattern)
		if got, want := Match(pattern, name), refMatch(pattern, name); got != want || got != inExpand {
			t.Fatalf("pattern %q, name %q: Match = %v, refMatch = %v, in Expand = %v",
				pattern, name, got, want, inExpand)
		}
	}
}

// refMatch is an independent, segment-by-segment reference for Match.
func refMatch(pattern, name string) bool {
	ns, ok := refSegments(name)
	if !ok || !strings.HasPrefix(pattern, "/") {
		return false
	}
	ps := strings.Split(pattern[1:], "/")
	head, tail := ps[:len(ps)-1], ps[len(ps)-1]
	for _, seg := range head {
		if seg == "" || strings.Contains(seg, "*") {
			return false
		}
	}
	switch tail {
	case "*":
		return len(ns) == len(ps) && slices.Equal(ns[:len(head)], head)
	case "**":
		return len(ns) > len(head) && slices.Equal(ns[:len(head)], head)
	default:
		return slices.Equal(ns, ps)
	}
}

// refSegments splits a structurally valid name into its segments.
func refSegments(name string) ([]string, bool) {
	if !strings.HasPrefix(name, "/") {
		return nil, false
	}
	segs := strings.Split(name[1:], "/")
	for _, seg := range segs {
		if seg == "" || strings.Contains(seg, "*") {
			return nil, false
		}
	}
	return segs, true
}

// Random channels over a tiny alphabet, so that patterns and names collide.
var alphabet = []string{"a", "b", "ab"}

func randName(r *rand.Rand) string {
	return randPrefix(r, 1+r.IntN(4))
}

func randPrefix(r *rand.Rand, depth int) string {
	var b strings.Builder
	for range depth {
		b.WriteString("/")
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func randPattern(r *rand.Rand) string {
	switch r.IntN(3) {
	case 0:
		return randName(r)
	case 1:
		return randPrefix(r, r.IntN(4)) + "/*"
	default:
		return randPrefix(r, r.IntN(4)) + "/**"
	}
}

var junk = []string{
	"", "/", "//", "/a/", "/a//b", "a", "a/b", "/*/a", "/a*", "/***", "//**",
	"/a/*/*", "*", "**", "/a b", "/*a/**",
}

func randJunk(r *rand.Rand) string { return junk[r.IntN(len(junk))] }

// sameSet reports whether a and b hold the same elements, ignoring order
// but not repetition.
func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	count := make(map[T]int, len(a))
	for _, v := range a {
		count[v]++
	}
	for _, v := range b {
		count[v]--
		if count[v] < 0 {
			return false
		}
	}
	return true
}
