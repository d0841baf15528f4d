package channels

import "strings"

// Expand returns every subscription that a message published on name is
// routed to: "/**", then prefix+"/**" for every proper prefix of name, then
// parent+"/*", then name itself. For "/a/b/c" that is
//
//	/**  /a/**  /a/b/**  /a/b/*  /a/b/c
//
// and for "/a" it is "/**", "/*", "/a". The result has one entry per segment
// plus two.
//
// Expand checks only the structure of name, not its characters (validate
// with a Grammar first): if name does not start with "/", has an empty
// segment, ends with "/" or contains "*", Expand returns nil, because
// nothing can be published there.
func Expand(name string) []string {
	return AppendExpand(nil, name)
}

// AppendExpand appends the result of Expand(name) to dst and returns the
// extended slice; for an ill-formed name it returns dst unchanged.
//
// The name itself and "/*" and "/**" are appended without copying; all the
// other patterns are carved out of a single string allocated for the call, so
// a one-segment name costs no allocation and a deeper one costs exactly one
// (plus any growth of dst). That string holds every proper prefix, so its
// size grows with segments times length: bound both before expanding a name
// from the network (Bayou's server refuses channels over 1,024 bytes or 64
// segments by default). Index.AppendMatch needs no such bound: it costs
// O(len(name)).
func AppendExpand(dst []string, name string) []string {
	last, ok := wellFormed(name)
	if !ok {
		return dst
	}
	if last == 0 {
		return append(dst, "/**", "/*", name)
	}
	size := 0
	for p := 1; p <= last; p++ {
		if name[p] == '/' {
			size += p + len("/**")
		}
	}
	var b strings.Builder
	b.Grow(size)
	for p := 1; p <= last; p++ {
		if name[p] == '/' {
			b.WriteString(name[:p])
			b.WriteString("/**")
		}
	}
	all := b.String()
	dst = append(dst, "/**")
	off := 0
	for p := 1; p <= last; p++ {
		if name[p] == '/' {
			pat := all[off : off+p+len("/**")]
			off += len(pat)
			dst = append(dst, pat)
			if p == last {
				dst = append(dst, pat[:len(pat)-1]) // parent + "/*"
			}
		}
	}
	return append(dst, name)
}

// Match reports whether a message published on name is delivered to a
// subscription to pattern, which may be a plain channel name or a wildcard
// pattern. A name matches itself; prefix+"/*" matches the names that add
// exactly one segment to prefix; prefix+"/**" matches the names that add at
// least one (so not prefix itself); "/**" matches every name.
//
// Match(pattern, name) is true exactly when pattern is in Expand(name); in
// particular it is false when name or pattern is ill-formed. Like Expand it
// does not check characters against a Grammar.
func Match(pattern, name string) bool {
	if _, ok := wellFormed(name); !ok {
		return false
	}
	prefix, wild := cutWildcard(pattern)
	if !wild {
		return pattern == name
	}
	if prefix != "" {
		if _, ok := wellFormed(prefix); !ok {
			return false
		}
	}
	if len(name) <= len(prefix) || name[len(prefix)] != '/' || name[:len(prefix)] != prefix {
		return false
	}
	// name is prefix + "/" + rest, and rest is non-empty since name is
	// well-formed. "**" takes any rest; "*" takes a single segment.
	return len(pattern)-len(prefix) == len("/**") ||
		strings.IndexByte(name[len(prefix)+1:], '/') < 0
}

// wellFormed reports whether s has the structure of a channel name (leading
// "/", no empty segment, no trailing "/", no "*"), whatever its other bytes,
// and returns the index of its last "/".
func wellFormed(s string) (last int, ok bool) {
	n := len(s)
	if n < 2 || s[0] != '/' || s[n-1] == '/' {
		return 0, false
	}
	prev := byte('/')
	for i := 1; i < n; i++ {
		switch c := s[i]; c {
		case '/':
			if prev == '/' {
				return 0, false
			}
			last = i
		case '*':
			return 0, false
		}
		prev = s[i]
	}
	return last, true
}
