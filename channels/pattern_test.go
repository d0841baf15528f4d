package channels

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in      string
		ok      bool
		len     int
		many    bool
		isName  bool
		segment string // the literal at position 0, "" when free
	}{
		{"/a", true, 1, false, true, "a"},
		{"/a/b", true, 2, false, true, "a"},
		{"/a/*", true, 2, false, false, "a"},
		{"/a/**", true, 1, true, false, "a"},
		{"/*", true, 1, false, false, ""},
		{"/**", true, 0, true, false, ""},
		{"/a/{x}", true, 2, false, true, "a"}, // braces are wide-grammar characters
		{"", false, 0, false, false, ""},
		{"/", false, 0, false, false, ""},
		{"a/b", false, 0, false, false, ""},
		{"/a//b", false, 0, false, false, ""},
		{"/a/", false, 0, false, false, ""},
		{"/*/a", false, 0, false, false, ""},
		{"/a/**/b", false, 0, false, false, ""},
		{"/a/***", false, 0, false, false, ""},
		{"/a b\x00", false, 0, false, false, ""},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParsePattern(%q) err = %v, want ok %v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidPattern) {
				t.Errorf("ParsePattern(%q) err = %v, want ErrInvalid", tt.in, err)
			}
			continue
		}
		seg, _ := p.Segment(0)
		if p.Len() != tt.len || p.Many() != tt.many || p.IsName() != tt.isName || seg != tt.segment || p.String() != tt.in {
			t.Errorf("ParsePattern(%q) = len %d many %v name %v seg0 %q", tt.in, p.Len(), p.Many(), p.IsName(), seg)
		}
	}
}

func TestPatternMatchAgreesWithMatch(t *testing.T) {
	pats := []string{"/a", "/a/b", "/a/*", "/a/**", "/*", "/**", "/a/b/c", "/a/b/*", "/a/b/**", "/b/**"}
	names := []string{"/a", "/b", "/a/b", "/a/c", "/a/b/c", "/a/b/c/d", "/b/a", "/a/", "//a", "/a//b", "a", "", "/", "/a/b/"}
	for _, ps := range pats {
		p := MustParsePattern(ps)
		for _, n := range names {
			if got, want := p.Match(n), Match(ps, n); got != want {
				t.Errorf("%s.Match(%q) = %v, channels.Match says %v", ps, n, got, want)
			}
		}
	}
}

func TestPatternOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"/**", "/private/x/**", true},
		{"/private/*", "/private/**", true},
		{"/private/*", "/private/x/**", false}, // /private/* has 2 segments, the other 3 or more
		{"/private/**", "/private/x/**", true},
		{"/*", "/private/**", false}, // one segment against two or more
		{"/*", "/private", true},
		{"/public/*", "/private/**", false},
		{"/private/x", "/private/**", true},
		{"/private", "/private/**", false}, // ** needs one more segment
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/c", false},
		{"/a/*", "/*/b", false}, // invalid second pattern: false, not a panic
		{"/a/*/c", "/a/b", false},
		{"/a/b/c", "/a/*", false},
		{"/a/b/*", "/a/*", false},
		{"/a/**", "/b/**", false},
		{"/a/**", "/a/b/c/d", true},
	}
	for _, tt := range tests {
		for _, pair := range [][2]string{{tt.a, tt.b}, {tt.b, tt.a}} {
			if got := Overlap(pair[0], pair[1]); got != tt.want {
				t.Errorf("Overlap(%s, %s) = %v, want %v", pair[0], pair[1], got, tt.want)
			}
		}
	}
}

func TestPatternCovers(t *testing.T) {
	tests := []struct {
		wide, narrow string
		want         bool
	}{
		{"/users/u1/**", "/users/u1/a/b", true},
		{"/users/u1/**", "/users/u1/*", true},
		{"/users/u1/**", "/users/u1/**", true},
		{"/users/u1/**", "/users/u1/a/**", true},
		{"/users/u1/**", "/users/*", false},
		{"/users/u1/**", "/users/**", false},
		{"/users/u1/**", "/users/u1", false}, // ** does not match its own prefix
		{"/users/u1/**", "/**", false},
		{"/users/u1/**", "/users/u2/x", false},
		{"/users/u1/*", "/users/u1/**", false},
		{"/users/u1/*", "/users/u1/x", true},
		{"/users/u1/*", "/users/u1/x/y", false},
		{"/**", "/anything/at/all", true},
		{"/**", "/**", true},
		{"/**", "/*", true},
		{"/*", "/**", false},
		{"/*", "/a", true},
		{"/a", "/a", true},
		{"/a", "/*", false},
		{"/a/b", "/a/c", false},
		{"bad", "/a", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.wide, tt.narrow); got != tt.want {
			t.Errorf("Covers(%s, %s) = %v, want %v", tt.wide, tt.narrow, got, tt.want)
		}
	}
}

func TestPatternWithAny(t *testing.T) {
	tmpl := MustParsePattern("/users/x/**").WithAny(1) // /users/{sub}/**
	tests := []struct {
		other           string
		covers, overlap bool
	}{
		{"/users/u1/**", true, true},
		{"/users/u1/a", true, true},
		{"/users/*", false, false},
		{"/users/**", false, true},
		{"/**", false, true},
		{"/other/u1/a", false, false},
	}
	for _, tt := range tests {
		q := MustParsePattern(tt.other)
		if tmpl.Covers(q) != tt.covers || tmpl.Overlaps(q) != tt.overlap {
			t.Errorf("template vs %s: covers %v overlaps %v", tt.other, tmpl.Covers(q), tmpl.Overlaps(q))
		}
	}
	if !tmpl.Match("/users/anyone/x") || tmpl.Match("/users/anyone") {
		t.Error("template match")
	}
	if s, ok := tmpl.Segment(1); ok || s != "" {
		t.Error("WithAny did not free position 1")
	}
	if s, _ := MustParsePattern("/users/x/**").Segment(1); s != "x" {
		t.Error("WithAny changed the original")
	}
}

// TestAgainstBruteForce checks Overlaps and Covers against their definitions
// over every pattern of up to three segments on the alphabet {a, b}, with
// witness names up to five segments long on {a, b, c} (c stands for any
// segment no pattern names, so a free position can always take it).
func TestPatternAgainstBruteForce(t *testing.T) {
	var pats []Pattern
	var bodies []string
	var grow func(prefix string, depth int)
	grow = func(prefix string, depth int) {
		if prefix != "" {
			bodies = append(bodies, prefix)
		}
		if depth == 3 {
			return
		}
		for _, s := range []string{"a", "b"} {
			grow(prefix+"/"+s, depth+1)
		}
	}
	grow("", 0)
	for _, b := range append(bodies, "") {
		if b != "" {
			pats = append(pats, MustParsePattern(b))
		}
		pats = append(pats, MustParsePattern(b+"/*"), MustParsePattern(b+"/**"))
	}
	var names []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		if prefix != "" {
			names = append(names, prefix)
		}
		if depth == 5 {
			return
		}
		for _, s := range []string{"a", "b", "c"} {
			gen(prefix+"/"+s, depth+1)
		}
	}
	gen("", 0)
	for _, p := range pats {
		for _, q := range pats {
			overlap, covers := false, true
			for _, n := range names {
				pm, qm := p.Match(n), q.Match(n)
				overlap = overlap || (pm && qm)
				covers = covers && (!qm || pm)
			}
			if p.Overlaps(q) != overlap {
				t.Errorf("%s overlaps %s = %v, brute force %v", p, q, p.Overlaps(q), overlap)
			}
			if p.Covers(q) != covers {
				t.Errorf("%s covers %s = %v, brute force %v", p, q, p.Covers(q), covers)
			}
		}
	}
	if len(pats) < 40 || !strings.HasPrefix(names[0], "/") {
		t.Fatalf("generated %d patterns", len(pats))
	}
}

func BenchmarkPatternMatch(b *testing.B) {
	p := MustParsePattern("/users/u1/**")
	for b.Loop() {
		if !p.Match("/users/u1/inbox/x") {
			b.Fatal("no match")
		}
	}
}
