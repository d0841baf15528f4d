package channels

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Regexp reference grammar, written independently of grammar.go.
const (
	strictSegRE = `[A-Za-z0-9\-_!~()$@]+`
	wideSegRE   = `[A-Za-z0-9 !#$()+\-.@_{}~]+`
)

var refGrammars = map[Grammar]struct{ name, pattern *regexp.Regexp }{
	Strict: {
		regexp.MustCompile(`^(/` + strictSegRE + `)+$`),
		regexp.MustCompile(`^(/` + strictSegRE + `)*/\*\*?$`),
	},
	Wide: {
		regexp.MustCompile(`^(/` + wideSegRE + `)+$`),
		regexp.MustCompile(`^(/` + wideSegRE + `)*/\*\*?$`),
	},
}

func addSeeds(f *testing.F) {
	for _, tc := range strictCases {
		f.Add(tc.in)
	}
	for _, tc := range wideCases {
		f.Add(tc.in)
	}
	for _, s := range junk {
		f.Add(s)
	}
}

func FuzzGrammar(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		for g, ref := range refGrammars {
			name, pattern := g.ValidName(s), g.ValidPattern(s)
			if name && pattern {
				t.Fatalf("Grammar(%d): %q is both a name and a pattern", g, s)
			}
			if name != ref.name.MatchString(s) || pattern != ref.pattern.MatchString(s) {
				t.Fatalf("Grammar(%d) on %q: name %v pattern %v, reference name %v pattern %v",
					g, s, name, pattern, ref.name.MatchString(s), ref.pattern.MatchString(s))
			}
			if g.Valid(s) != (name || pattern) {
				t.Fatalf("Grammar(%d).Valid(%q) inconsistent", g, s)
			}
			if name || pattern {
				if strings.Contains(s, "//") || !strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
					t.Fatalf("Grammar(%d) accepted malformed %q", g, s)
				}
				if IsWildcard(s) != pattern {
					t.Fatalf("IsWildcard(%q) = %v, pattern %v", s, IsWildcard(s), pattern)
				}
			}
			if name {
				if _, ok := wellFormed(s); !ok {
					t.Fatalf("valid name %q is not well-formed", s)
				}
			}
		}
		if ValidName(s) && !Wide.ValidName(s) || ValidPattern(s) && !Wide.ValidPattern(s) {
			t.Fatalf("%q is valid under Strict but not under Wide", s)
		}
		if ValidName(s) != Strict.ValidName(s) || ValidPattern(s) != Strict.ValidPattern(s) {
			t.Fatalf("package functions disagree with Strict on %q", s)
		}
	})
}

func FuzzExpand(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		ps := Expand(s)
		if _, ok := wellFormed(s); !ok {
			if ps != nil {
				t.Fatalf("Expand(%q) = %q for an ill-formed name", s, ps)
			}
			return
		}
		for _, g := range []Grammar{Strict, Wide} {
			if !g.ValidName(s) {
				continue
			}
			if want := strings.Count(s, "/") + 2; len(ps) != want {
				t.Fatalf("Expand(%q) has %d patterns, want %d", s, len(ps), want)
			}
			seen := map[string]bool{}
			for _, p := range ps {
				if !g.Valid(p) {
					t.Fatalf("Expand(%q) produced %q, invalid under Grammar(%d)", s, p, g)
				}
				if !Match(p, s) || !refMatch(p, s) {
					t.Fatalf("Expand(%q) produced %q, which does not match it", s, p)
				}
				if seen[p] {
					t.Fatalf("Expand(%q) produced %q twice", s, p)
				}
				seen[p] = true
			}
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, tc := range []struct{ p, n string }{
		{"/a/*", "/a/b"}, {"/a/**", "/a/b/c"}, {"/**", "/x"}, {"/*", "/x/y"},
		{"/a", "/a"}, {"/a//**", "/a//b"}, {"", ""}, {"/a/***", "/a/b"},
	} {
		f.Add(tc.p, tc.n)
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := Match(pattern, name)
		if want := refMatch(pattern, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, refMatch = %v", pattern, name, got, want)
		}
		if in := slices.Contains(Expand(name), pattern); got != in {
			t.Fatalf("Match(%q, %q) = %v, but in Expand = %v", pattern, name, got, in)
		}
	})
}
