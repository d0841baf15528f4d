package jwtauth

import (
	"crypto/sha256"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// grant is what a verified token allows: the identity it gives, when it
// stops being valid, and the channels of its channels claim.
type grant struct {
	user    string            // the subject
	digest  [sha256.Size]byte // of the raw token, to recognise it when resent
	exp     time.Time         // zero: never expires
	allowed []channels.Pattern
}

// expired reports whether the token has expired at now.
func (g *grant) expired(now time.Time) bool {
	return !g.exp.IsZero() && !now.Before(g.exp)
}

// matches reports whether the channel name matches an allowed pattern.
func (g *grant) matches(channel string) bool {
	for _, p := range g.allowed {
		if p.Match(channel) {
			return true
		}
	}
	return false
}

// allowedPatterns reads the channels claim: an array of patterns (or a
// single one), with "{sub}" replaced by the subject. A pattern that does
// not parse after the replacement is dropped, and so is every pattern
// using {sub} when the subject is not a valid channel segment (a subject
// "a/b" or "*" must not widen the grant).
func allowedPatterns(v any, sub string) (out []channels.Pattern, dropped []string) {
	var list []string
	switch v := v.(type) {
	case string:
		list = []string{v}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				list = append(list, s)
			} else {
				dropped = append(dropped, "(not a string)")
			}
		}
	}
	subOK := sub != "*" && sub != "**" && !strings.Contains(sub, "/") && channels.Wide.ValidName("/"+sub)
	for _, s := range list {
		if strings.Contains(s, "{sub}") {
			if !subOK {
				dropped = append(dropped, s)
				continue
			}
			s = strings.ReplaceAll(s, "{sub}", sub)
		}
		p, err := channels.ParsePattern(s)
		if err != nil {
			dropped = append(dropped, s)
			continue
		}
		out = append(out, p)
	}
	return out, dropped
}

// stringList reads a claim holding an array of strings, or one string of
// space-separated values (like OAuth's "scope").
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// grants finds the grant behind an identity this extension attached to a
// session. Entries are keyed by weak pointers to the identities and
// removed when an identity is garbage collected, so sessions that end (or
// handshakes that fail) leave nothing behind, with no hook into the
// session's life cycle.
type grants struct {
	m sync.Map // weak.Pointer[bayeux.Identity] → *grant
}

// put records g as the grant behind id. g must not point to id, or the
// entry would keep id alive.
func (gs *grants) put(id *bayeux.Identity, g *grant) {
	key := weak.Make(id)
	gs.m.Store(key, g)
	runtime.AddCleanup(id, func(k weak.Pointer[bayeux.Identity]) { gs.m.Delete(k) }, key)
}

// get returns the grant behind id, or nil for nil and for identities that
// another extension attached.
func (gs *grants) get(id *bayeux.Identity) *grant {
	if id == nil {
		return nil
	}
	v, ok := gs.m.Load(weak.Make(id))
	if !ok {
		return nil
	}
	return v.(*grant)
}

// len counts the recorded grants (for tests).
func (gs *grants) len() int {
	n := 0
	gs.m.Range(func(_, _ any) bool { n++; return true })
	return n
}
