package acl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// Access says who may do something on a channel. It is one of
//
//	"anyone"      every session, anonymous ones included
//	"identified"  sessions with an identity (see bayeux.Session.Identity)
//	"role:NAME"   sessions whose identity holds role NAME
//	"none"        no session (the server's own publishes are not checked)
//
// or several of them separated by commas, any of which suffices
// ("role:admin,role:editor"). In a Rule, an empty Access means "none":
// a rule grants only what it states.
type Access string

// The Access values that take no argument.
const (
	Anyone     Access = "anyone"
	Identified Access = "identified"
	None       Access = "none"
)

// Role returns the Access of the sessions holding role name.
func Role(name string) Access { return Access("role:" + name) }

// Rule gives access to the channels matching Pattern, a channel name or
// wildcard pattern whose segments may be templates: {sub} must equal the
// identity's User, {claim:NAME} the identity's string claim NAME. So
// /users/{sub}/** is the channels below /users/<the session's own user>.
type Rule struct {
	// Pattern is the channel name or pattern the rule applies to.
	Pattern string `json:"pattern"`
	// Subscribe says who may subscribe to (and so receive) its channels.
	Subscribe Access `json:"subscribe"`
	// Publish says who may publish on its channels.
	Publish Access `json:"publish"`
}

// access is a parsed Access: any one of its terms suffices.
type access struct {
	anyone     bool // "anyone" is among the terms
	identified bool
	roles      []string
}

func parseAccess(a Access) (access, error) {
	var p access
	if strings.TrimSpace(string(a)) == "" {
		return p, nil // none
	}
	for _, term := range strings.Split(string(a), ",") {
		term = strings.TrimSpace(term)
		switch {
		case term == string(Anyone):
			p.anyone = true
		case term == string(Identified):
			p.identified = true
		case term == string(None):
		case strings.HasPrefix(term, "role:") && len(term) > len("role:"):
			p.roles = append(p.roles, term[len("role:"):])
		default:
			return p, fmt.Errorf("unknown access %q (want anyone, identified, role:NAME or none)", term)
		}
	}
	return p, nil
}

// allows reports whether the identity id (nil: anonymous) is granted
// access, templates aside.
func (p access) allows(id *bayeux.Identity) bool {
	if p.anyone {
		return true
	}
	if id == nil {
		return false
	}
	if p.identified {
		return true
	}
	return slices.ContainsFunc(p.roles, id.HasRole)
}

// open reports whether p lets anyone through.
func (p access) open() bool { return p.anyone }

// template is a segment of a rule bound to the identity.
type template struct {
	pos   int    // segment position, 0-based
	claim string // the claim's name; "" for {sub}
}

// value returns what the segment must equal for id, or "" when id has no
// such value (which matches nothing).
func (t template) value(id *bayeux.Identity) string {
	if id == nil {
		return ""
	}
	if t.claim == "" {
		return id.User
	}
	s, _ := id.Claims[t.claim].(string)
	return s
}

// rule is a compiled Rule.
type rule struct {
	Rule
	pat       channels.Pattern // templates as "any segment" positions
	templates []template
	literals  int // segments that are plain literals
	kind      int // 2 for a channel name, 1 for /*, 0 for /**
	index     int // position in Config.Rules
	sub, pub  access
}

func compileRule(r Rule, index int) (*rule, error) {
	c := &rule{Rule: r, index: index, kind: 2}
	if !strings.HasPrefix(r.Pattern, "/") {
		return nil, fmt.Errorf("pattern %q must start with /", r.Pattern)
	}
	segs := strings.Split(r.Pattern[1:], "/")
	for i, s := range segs {
		switch {
		case s == "**" && i == len(segs)-1:
			c.kind = 0
		case s == "*" && i == len(segs)-1:
			c.kind = 1
		case s == "{sub}":
			c.templates = append(c.templates, template{pos: i})
			segs[i] = "x"
		case strings.HasPrefix(s, "{claim:") && strings.HasSuffix(s, "}") && len(s) > len("{claim:}"):
			c.templates = append(c.templates, template{pos: i, claim: s[len("{claim:") : len(s)-1]})
			segs[i] = "x"
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			return nil, fmt.Errorf("pattern %q: unknown template %s (want {sub} or {claim:NAME})", r.Pattern, s)
		default:
			c.literals++
		}
	}
	p, err := channels.ParsePattern("/" + strings.Join(segs, "/"))
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", r.Pattern, err)
	}
	for _, t := range c.templates {
		p = p.WithAny(t.pos)
	}
	c.pat = p
	if c.sub, err = parseAccess(r.Subscribe); err != nil {
		return nil, fmt.Errorf("rule %q: subscribe: %w", r.Pattern, err)
	}
	if c.pub, err = parseAccess(r.Publish); err != nil {
		return nil, fmt.Errorf("rule %q: publish: %w", r.Pattern, err)
	}
	return c, nil
}

// moreSpecific orders rules from the most specific: more literal segments
// first, then a channel name before /* before /**, then more template
// segments, then the order of Config.Rules.
func moreSpecific(a, b *rule) int {
	switch {
	case a.literals != b.literals:
		return b.literals - a.literals
	case a.kind != b.kind:
		return b.kind - a.kind
	case len(a.templates) != len(b.templates):
		return len(b.templates) - len(a.templates)
	}
	return a.index - b.index
}

// bound reports whether the templates of r hold for id on target, a
// channel or pattern r governs: each template position must be a literal
// of target equal to the identity's value (a wildcard there could reach
// other users' channels).
func (r *rule) bound(id *bayeux.Identity, target channels.Pattern) bool {
	for _, t := range r.templates {
		seg, ok := target.Segment(t.pos)
		if v := t.value(id); !ok || v == "" || seg != v {
			return false
		}
	}
	return true
}
