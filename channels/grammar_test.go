package channels

import (
	"strings"
	"testing"
)

type grammarCase struct {
	in      string
	name    bool
	pattern bool
}

// strictCases is the verified faye table, plus regressions.
var strictCases = []grammarCase{
	{"/foo", true, false},
	{"/foo/bar", true, false},
	{"/meta", true, false},
	{"/meta/x", true, false},
	{"/service/x", true, false},
	{"/a", true, false},
	{"/Az09-_!~()$@", true, false},
	{"/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s", true, false},

	{"/foo/*", false, true},
	{"/foo/**", false, true},
	{"/*", false, true},
	{"/**", false, true},
	{"/meta/*", false, true},
	{"/service/**", false, true},
	{"/a/b/c/*", false, true},

	{"/foo.bar", false, false},
	{"/foo bar", false, false},
	{"/", false, false},
	{"//", false, false},
	{"/foo/", false, false},
	{"/a:b", false, false},
	{"/a%20", false, false},
	{"/é", false, false},
	{"", false, false},
	{"/foo/*/bar", false, false},
	{"/foo/b*", false, false},
	{"/foo/***", false, false},
	{"/foo/**/x", false, false},

	{"foo", false, false},
	{"foo/bar", false, false},
	{"*", false, false},
	{"**", false, false},
	{"/***", false, false},
	{"//*", false, false},
	{"//**", false, false},
	{"/a//b", false, false},
	{"/a//*", false, false},
	{"/*/*", false, false},
	{"/**/**", false, false},
	{"/*a", false, false},
	{"/a*", false, false},
	{"/a/*/", false, false},
	{"/a/**/", false, false},
	{"/a\x00", false, false},
	{"/a\tb", false, false},
	{"/a\x7f", false, false},
	{"/a\xff", false, false},
	{"/a+b", false, false},
	{"/{room}", false, false},
	{"/a#b", false, false},
	{"/a.b/*", false, false},
}

// wideCases differ from strictCases only where the wider set matters.
var wideCases = []grammarCase{
	{"/foo.bar", true, false},
	{"/foo bar", true, false},
	{"/a+b", true, false},
	{"/{room}", true, false},
	{"/a#b", true, false},
	{"/ ", true, false},
	{"/a.b/*", false, true},
	{"/a b/c.d/**", false, true},

	{"/a:b", false, false},
	{"/é", false, false},
	{"/foo/*/bar", false, false},
	{"/a%20", false, false},
	{"/a/b*", false, false},
	{"/a\tb", false, false},
	{"/", false, false},
	{"/a/", false, false},
}

func TestGrammarStrict(t *testing.T) {
	for _, tc := range strictCases {
		checkGrammar(t, Strict, tc)
		if got := ValidName(tc.in); got != tc.name {
			t.Errorf("ValidName(%q) = %v, want %v", tc.in, got, tc.name)
		}
		if got := ValidPattern(tc.in); got != tc.pattern {
			t.Errorf("ValidPattern(%q) = %v, want %v", tc.in, got, tc.pattern)
		}
	}
}

func TestGrammarWide(t *testing.T) {
	for _, tc := range wideCases {
		checkGrammar(t, Wide, tc)
	}
	// Everything valid under Strict is valid, with the same meaning, under
	// Wide; what Strict rejects for its structure Wide rejects too.
	for _, tc := range strictCases {
		if tc.name && !Wide.ValidName(tc.in) || tc.pattern && !Wide.ValidPattern(tc.in) {
			t.Errorf("%q valid under Strict but not under Wide", tc.in)
		}
	}
}

func TestGrammarUnknownIsStrict(t *testing.T) {
	g := Grammar(7)
	for _, tc := range strictCases {
		checkGrammar(t, g, tc)
	}
}

func checkGrammar(t *testing.T, g Grammar, tc grammarCase) {
	t.Helper()
	if got := g.ValidName(tc.in); got != tc.name {
		t.Errorf("Grammar(%d).ValidName(%q) = %v, want %v", g, tc.in, got, tc.name)
	}
	if got := g.ValidPattern(tc.in); got != tc.pattern {
		t.Errorf("Grammar(%d).ValidPattern(%q) = %v, want %v", g, tc.in, got, tc.pattern)
	}
	if got, want := g.Valid(tc.in), tc.name || tc.pattern; got != want {
		t.Errorf("Grammar(%d).Valid(%q) = %v, want %v", g, tc.in, got, want)
	}
}

// TestSegmentBytes checks every byte value against the documented sets.
func TestSegmentBytes(t *testing.T) {
	const (
		alnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		strict = alnum + "-_!~()$@"
		wide   = strict + " #+.{}"
	)
	for _, tc := range []struct {
		g       Grammar
		allowed string
	}{{Strict, strict}, {Wide, wide}} {
		for c := 0; c < 256; c++ {
			b := byte(c)
			want := strings.IndexByte(tc.allowed, b) >= 0
			set := tc.g.set()
			if got := set.has(b); got != want {
				t.Errorf("Grammar(%d): byte %#x allowed = %v, want %v", tc.g, b, got, want)
			}
			if got := tc.g.ValidName("/x" + string(b)); got != want {
				t.Errorf("Grammar(%d).ValidName(%q) = %v, want %v", tc.g, "/x"+string(b), got, want)
			}
		}
	}
}

func TestChannelKinds(t *testing.T) {
	for _, tc := range []struct {
		in                      string
		meta, service, wildcard bool
	}{
		{"/meta", true, false, false},
		{"/meta/connect", true, false, false},
		{"/meta/*", true, false, true},
		{"/meta/**", true, false, true},
		{"/metax", false, false, false},
		{"/metadata/x", false, false, false},
		{"/met", false, false, false},
		{"meta", false, false, false},
		{"/Meta", false, false, false},
		{"/foo/meta", false, false, false},
		{"/service", false, true, false},
		{"/service/chat", false, true, false},
		{"/service/**", false, true, true},
		{"/services", false, false, false},
		{"/serv", false, false, false},
		{"/foo/service", false, false, false},
		{"/foo", false, false, false},
		{"/*", false, false, true},
		{"/**", false, false, true},
		{"/a/b/*", false, false, true},
		{"/a/b*", false, false, false},
		{"/a/***", false, false, false},
		{"/a/*/b", false, false, false},
		{"*", false, false, false},
		{"", false, false, false},
		{"/", false, false, false},
	} {
		if got := IsMeta(tc.in); got != tc.meta {
			t.Errorf("IsMeta(%q) = %v, want %v", tc.in, got, tc.meta)
		}
		if got := IsService(tc.in); got != tc.service {
			t.Errorf("IsService(%q) = %v, want %v", tc.in, got, tc.service)
		}
		if got := IsWildcard(tc.in); got != tc.wildcard {
			t.Errorf("IsWildcard(%q) = %v, want %v", tc.in, got, tc.wildcard)
		}
	}
}

// grammarSink keeps the results of the calls that TestGrammarAllocs counts
// the allocations of, so that the compiler cannot drop them.
var grammarSink int

func TestGrammarAllocs(t *testing.T) {
	inputs := []string{"/chat/room-1/messages", "/chat/**", "/a.b", "/é/*", ""}
	for _, g := range []Grammar{Strict, Wide} {
		for _, in := range inputs {
			if n := testing.AllocsPerRun(100, func() {
				for _, ok := range [...]bool{g.ValidName(in), g.ValidPattern(in), g.Valid(in), IsMeta(in), IsService(in), IsWildcard(in)} {
					if ok {
						grammarSink++
					}
				}
			}); n != 0 {
				t.Errorf("Grammar(%d) on %q: %v allocs, want 0", g, in, n)
			}
		}
	}
}
