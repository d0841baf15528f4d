package channels

import (
	"errors"
	"fmt"
	"strings"
)

// The algebra of channel patterns that access control needs (Pattern): whether two patterns can match a common channel (Overlap),
// and whether every channel one pattern matches is matched by another
// (Covers).
//
// A channel name is "/" followed by non-empty segments; a pattern ends in a
// segment "*" (exactly one more segment) or "**" (one or more). The channels
// a pattern matches are therefore described by a length range and, per
// position, either a fixed literal or "any segment":
//
//	/a/b      length 2,     a b
//	/a/*      length 2,     a any
//	/a/**     length 2..∞,  a any…
//	/**       length 1..∞,  any…
//
// Both questions reduce to comparing those two descriptions position by
// position, with no enumeration of channels (see Pattern.Overlaps and
// Pattern.Covers). Besides the Bayeux wildcards, a Pattern may have "any"
// segments in the middle (see Pattern.WithAny), which is how templates such as
// /users/{sub}/** are represented for structural checks.

// ErrInvalidPattern is wrapped by the errors of ParsePattern.
var ErrInvalidPattern = errors.New("invalid channel pattern")

// Pattern is a parsed channel name or wildcard pattern. The zero value
// matches nothing useful; build one with ParsePattern.
type Pattern struct {
	// segs are the segments before a "**" tail; "" marks a segment that
	// matches any one segment (a final "*", or a position made free with
	// WithAny).
	segs []string
	// many reports a final "**": one or more further segments of any value.
	many bool
	src  string
}

// ParsePattern parses a channel name or wildcard pattern. It checks the structure
// and that every segment uses the characters of CometD's wide grammar
// (Wide), which includes faye's; the server itself validates
// client input against its own grammar.
func ParsePattern(s string) (Pattern, error) {
	if !Wide.Valid(s) {
		return Pattern{}, fmt.Errorf("%w: %q", ErrInvalidPattern, s)
	}
	p := Pattern{src: s}
	body := s[1:]
	for body != "" {
		seg, rest, _ := strings.Cut(body, "/")
		body = rest
		switch seg {
		case "**":
			p.many = true
		case "*":
			p.segs = append(p.segs, "")
		default:
			p.segs = append(p.segs, seg)
		}
	}
	return p, nil
}

// MustParsePattern is ParsePattern for patterns known to be valid; it panics otherwise.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the text the pattern was parsed from.
func (p Pattern) String() string { return p.src }

// Len returns the number of segments before a "**" tail, the final "*"
// included: 2 for /a/b, /a/* and /a/b/**.
func (p Pattern) Len() int { return len(p.segs) }

// Segment returns the literal at position i (0-based) and true, or "" and
// false when any segment matches there (or i is out of range).
func (p Pattern) Segment(i int) (string, bool) {
	if i < 0 || i >= len(p.segs) || p.segs[i] == "" {
		return "", false
	}
	return p.segs[i], true
}

// Many reports whether the pattern ends in "**".
func (p Pattern) Many() bool { return p.many }

// IsName reports whether the pattern is a plain channel name: it matches
// exactly one channel.
func (p Pattern) IsName() bool {
	if p.many {
		return false
	}
	for _, s := range p.segs {
		if s == "" {
			return false
		}
	}
	return len(p.segs) > 0
}

// WithAny returns a copy of p in which position i matches any one segment.
// It is how a template segment such as {sub} is treated when only the
// structure matters.
func (p Pattern) WithAny(i int) Pattern {
	if i < 0 || i >= len(p.segs) {
		return p
	}
	q := p
	q.segs = append([]string(nil), p.segs...)
	q.segs[i] = ""
	return q
}

// lengths returns the range of segment counts of the channels p matches;
// max is -1 for no bound.
func (p Pattern) lengths() (lo, hi int) {
	if p.many {
		return len(p.segs) + 1, -1
	}
	return len(p.segs), len(p.segs)
}

// Match reports whether the channel name matches p. It does not allocate.
// An ill-formed name (empty segment, no leading "/") matches nothing.
func (p Pattern) Match(name string) bool {
	if len(name) < 2 || name[0] != '/' || (len(p.segs) == 0 && !p.many) {
		return false
	}
	rest := name[1:]
	for i, want := range p.segs {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" || (want != "" && seg != want) {
			return false
		}
		if !more { // the name ends with this segment
			return i == len(p.segs)-1 && !p.many
		}
		rest = tail
	}
	// The name has segments left: only a "**" tail takes them, and they
	// must be well-formed.
	return p.many && rest != "" && rest[0] != '/' && rest[len(rest)-1] != '/' && !strings.Contains(rest, "//")
}

// Overlaps reports whether some channel matches both p and q.
//
// Their length ranges must intersect, and at every position both fix, the
// literals must agree (a position that either leaves free, or that lies in
// a "**" tail, accepts anything). Since every free position can take any
// value, these two conditions are also sufficient.
func (p Pattern) Overlaps(q Pattern) bool {
	plo, phi := p.lengths()
	qlo, qhi := q.lengths()
	lo := max(plo, qlo)
	if (phi >= 0 && lo > phi) || (qhi >= 0 && lo > qhi) {
		return false
	}
	for i := range min(len(p.segs), len(q.segs)) {
		a, b := p.segs[i], q.segs[i]
		if a != "" && b != "" && a != b {
			return false
		}
	}
	return true
}

// Covers reports whether every channel matching q also matches p.
//
// q's length range must lie within p's, and every position p fixes must be
// fixed by q to the same literal: a position q leaves free (a "*", a
// template, or its "**" tail) takes values p's literal refuses. For
// example /users/u1/** covers /users/u1/a/b and /users/u1/*, but not
// /users/* (length 2 is outside 3..∞) nor /users/** (position 1 is free).
//
// A set of patterns covers q exactly when one of them does: a union of
// patterns each missing part of q cannot fill the gap, because every
// pattern that accepts a free position of q for some values but not all
// fixes it to a literal, and finitely many literals never exhaust the
// possible segment values. So checking each allowed pattern in turn is
// complete.
func (p Pattern) Covers(q Pattern) bool {
	plo, phi := p.lengths()
	qlo, qhi := q.lengths()
	if qlo < plo || (phi >= 0 && (qhi < 0 || qhi > phi)) {
		return false
	}
	for i, want := range p.segs {
		if want == "" {
			continue
		}
		if i >= len(q.segs) || q.segs[i] != want {
			return false
		}
	}
	return true
}

// Overlap reports whether some channel matches both patterns a and b;
// false when either is not a valid pattern.
func Overlap(a, b string) bool {
	pa, err := ParsePattern(a)
	if err != nil {
		return false
	}
	pb, err := ParsePattern(b)
	if err != nil {
		return false
	}
	return pa.Overlaps(pb)
}

// Covers reports whether every channel matching narrow also matches wide;
// false when either is not a valid pattern.
func Covers(wide, narrow string) bool {
	pw, err := ParsePattern(wide)
	if err != nil {
		return false
	}
	pn, err := ParsePattern(narrow)
	if err != nil {
		return false
	}
	return pw.Covers(pn)
}

// Reaches reports whether a client subscribed to the pattern subscription
// could receive messages published on a channel that protected matches:
// whether a rule guarding protected must be applied to the subscription.
// It is the question an access check on subscribes has to ask: matching
// the subscription against the protected pattern as if it were a channel
// name misses wildcards (a subscriber to /** receives everything published
// under /private/**, yet "/**" is no channel under /private). It is
// Overlap, except that an invalid pattern on either side is taken to reach
// (fail closed: the caller refuses what it cannot judge).
func Reaches(subscription, protected string) bool {
	ps, err := ParsePattern(subscription)
	if err != nil {
		return true
	}
	pp, err := ParsePattern(protected)
	if err != nil {
		return true
	}
	return ps.Overlaps(pp)
}
