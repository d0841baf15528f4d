package channels

// Grammar selects which characters a channel segment may hold.
//
// Both grammars share the same structure: a name is "/" followed by one or
// more non-empty segments separated by "/", and a pattern is zero or more
// segments followed by a final segment that is exactly "*" or "**". They
// differ only in the set of bytes allowed inside a segment. Values other than
// Strict and Wide behave like Strict.
type Grammar uint8

const (
	// Strict is faye's grammar and the default: segments hold ASCII letters,
	// digits and - _ ! ~ ( ) $ @.
	Strict Grammar = iota
	// Wide is CometD's wider grammar: Strict's set plus space and # + . { }.
	Wide
)

// Segment byte sets as bit masks (lo: bytes 0-63, hi: bytes 64-127; no
// byte from 128 up is allowed). They are constants so that the package
// holds no mutable state.
const (
	alnumLo = (1<<10 - 1) << '0'
	alnumHi = (1<<26-1)<<('A'-64) | (1<<26-1)<<('a'-64)

	strictLo uint64 = alnumLo | 1<<'!' | 1<<'$' | 1<<'(' | 1<<')' | 1<<'-'
	strictHi uint64 = alnumHi | 1<<('@'-64) | 1<<('_'-64) | 1<<('~'-64)

	wideLo uint64 = strictLo | 1<<' ' | 1<<'#' | 1<<'+' | 1<<'.'
	wideHi uint64 = strictHi | 1<<('{'-64) | 1<<('}'-64)
)

// charset is a set of bytes allowed inside a segment, one bit per byte
// value (only the first two words, ASCII, are ever non-zero).
type charset [4]uint64

// has reports whether c is in the set.
func (cs *charset) has(c byte) bool {
	return cs[c>>6]>>(c&63)&1 != 0
}

// set returns the segment byte set of g.
func (g Grammar) set() charset {
	if g == Wide {
		return charset{wideLo, wideHi}
	}
	return charset{strictLo, strictHi}
}

// ValidName reports whether s is a channel name under g: "/" followed by one
// or more non-empty segments separated by "/". Wildcards are not allowed.
func (g Grammar) ValidName(s string) bool {
	return validName(g.set(), s)
}

// ValidPattern reports whether s is a wildcard pattern under g: zero or more
// segments followed by a final segment that is exactly "*" or "**". Plain
// names are not channels.
func (g Grammar) ValidPattern(s string) bool {
	prefix, ok := cutWildcard(s)
	return ok && (prefix == "" || validName(g.set(), prefix))
}

// Valid reports whether s is a channel name or a wildcard pattern under g,
// that is, something a client may subscribe to.
func (g Grammar) Valid(s string) bool {
	return g.ValidName(s) || g.ValidPattern(s)
}

// ValidName reports whether s is a channel name under the Strict grammar.
func ValidName(s string) bool { return Strict.ValidName(s) }

// ValidPattern reports whether s is a wildcard pattern under the Strict
// grammar.
func ValidPattern(s string) bool { return Strict.ValidPattern(s) }

// IsMeta reports whether the first segment of s is exactly "meta", as in
// "/meta", "/meta/connect" or "/meta/*" (but not "/metadata"). It does not
// validate s.
func IsMeta(s string) bool { return firstSegmentIs(s, "meta") }

// IsService reports whether the first segment of s is exactly "service", as
// in "/service" or "/service/chat". It does not validate s.
func IsService(s string) bool { return firstSegmentIs(s, "service") }

// IsWildcard reports whether the last segment of s is exactly "*" or "**".
// It does not validate the rest of s.
func IsWildcard(s string) bool {
	_, ok := cutWildcard(s)
	return ok
}

// validName checks the name structure with a single pass over s: "/" is
// not in any charset, so it is handled off the common path.
func validName(cs charset, s string) bool {
	if len(s) < 2 || s[0] != '/' || s[len(s)-1] == '/' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !cs.has(c) && (c != '/' || s[i-1] == '/') {
			return false
		}
	}
	return true
}

// cutWildcard strips a final "/*" or "/**" segment from s, reporting whether
// there was one. The returned prefix is "" for "/*" and "/**".
func cutWildcard(s string) (prefix string, ok bool) {
	n := len(s)
	switch {
	case n >= 3 && s[n-3:] == "/**":
		return s[:n-3], true
	case n >= 2 && s[n-2:] == "/*":
		return s[:n-2], true
	}
	return "", false
}

// firstSegmentIs reports whether s starts with "/"+seg followed by "/" or the
// end of the string.
func firstSegmentIs(s, seg string) bool {
	n := 1 + len(seg)
	return len(s) >= n && s[0] == '/' && s[1:n] == seg && (len(s) == n || s[n] == '/')
}
