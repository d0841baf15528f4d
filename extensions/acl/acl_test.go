package acl

import (
	"context"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/extensions/internal/testserver"
)

var testRules = []Rule{
	{Pattern: "/users/{sub}/**", Subscribe: Identified, Publish: Identified},
	{Pattern: "/users/**", Subscribe: None, Publish: None},
	{Pattern: "/admin/**", Subscribe: Role("admin"), Publish: Role("admin")},
	{Pattern: "/news/*", Subscribe: Anyone, Publish: "role:editor, role:admin"},
	{Pattern: "/news/secret", Subscribe: None},
	{Pattern: "/teams/{claim:team}/**", Subscribe: Identified, Publish: Identified},
}

var (
	u1    = &bayeux.Identity{User: "u1", Claims: map[string]any{"team": "red"}}
	admin = &bayeux.Identity{User: "boss", Roles: []string{"admin"}}
	edith = &bayeux.Identity{User: "edith", Roles: []string{"editor"}}
)

func newACL(t *testing.T, cfg Config) *ACL {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestChecks(t *testing.T) {
	a := newACL(t, Config{Rules: testRules})
	tests := []struct {
		op      string // subscribe, publish, receive
		target  string
		id      *bayeux.Identity
		allowed bool
	}{
		{"subscribe", "/users/u1/**", u1, true},
		{"subscribe", "/users/u1/inbox", u1, true},
		{"subscribe", "/users/u1/**", nil, false},
		{"subscribe", "/users/u1/**", admin, false},
		{"subscribe", "/users/u2/**", u1, false},
		{"subscribe", "/users/*", u1, false},  // governed by /users/**
		{"subscribe", "/users/**", u1, false}, // idem
		{"subscribe", "/users/u1", u1, false}, // /users/{sub}/** needs a segment after u1
		{"subscribe", "/**", nil, true},       // the default; deliveries are filtered
		{"subscribe", "/admin/x", admin, true},
		{"subscribe", "/admin/x", u1, false},
		{"subscribe", "/news/*", nil, true},
		{"subscribe", "/news/today", nil, true},
		{"subscribe", "/news/secret", admin, false}, // the exact name beats /news/*
		{"subscribe", "/news/**", nil, true},        // no rule covers it: the default
		{"subscribe", "/teams/red/**", u1, true},
		{"subscribe", "/teams/blue/x", u1, false},
		{"subscribe", "/teams/red/x", admin, false}, // no team claim
		{"subscribe", "/teams/*/x", u1, false},      // invalid pattern
		{"publish", "/news/today", nil, false},
		{"publish", "/news/today", edith, true},
		{"publish", "/news/today", admin, true},
		{"publish", "/news/secret", admin, false}, // empty Access is none
		{"publish", "/users/u1/x", u1, true},
		{"publish", "/users/u2/x", u1, false},
		{"publish", "/elsewhere", nil, true},
		{"publish", "/news/*", edith, false}, // not a channel name
		{"receive", "/users/u1/x", u1, true},
		{"receive", "/users/u2/x", u1, false},
		{"receive", "/users/u1/x", nil, false},
		{"receive", "/news/secret", u1, false},
		{"receive", "/news/today", nil, true},
		{"receive", "/admin/log", u1, false},
		{"receive", "/elsewhere", nil, true},
	}
	for _, tt := range tests {
		var got bool
		switch tt.op {
		case "subscribe":
			got = a.CanSubscribe(tt.id, tt.target)
		case "publish":
			got = a.CanPublish(tt.id, tt.target)
		case "receive":
			got = a.CanReceive(tt.id, tt.target)
		}
		if got != tt.allowed {
			user := "anonymous"
			if tt.id != nil {
				user = tt.id.User
			}
			t.Errorf("%s %s as %s = %v, want %v", tt.op, tt.target, user, got, tt.allowed)
		}
	}
}

func TestSpecificity(t *testing.T) {
	rules := []Rule{
		{Pattern: "/**"},          // 0
		{Pattern: "/a/**"},        // 1
		{Pattern: "/a/*"},         // 2
		{Pattern: "/a/b"},         // 3
		{Pattern: "/a/{sub}/**"},  // 4
		{Pattern: "/a/b/**"},      // 5
		{Pattern: "/a/b/*"},       // 6
		{Pattern: "/a/b/**"},      // 7: a tie with 5, listed later
		{Pattern: "/x/{sub}"},     // 8
		{Pattern: "/x/*"},         // 9
		{Pattern: "/y/{sub}/**"},  // 10
		{Pattern: "/y/{claim:t}"}, // 11
	}
	a := newACL(t, Config{Rules: rules})
	tests := []struct {
		target string
		want   string // the governing rule's pattern, "" for the default
	}{
		{"/z", "/**"},
		{"/a", "/**"},
		{"/a/c", "/a/*"},          // * beats **
		{"/a/b", "/a/b"},          // the name beats *
		{"/a/c/d", "/a/{sub}/**"}, // a template beats a plain ** with as many literals
		{"/a/b/c", "/a/b/*"},      // two literals beat one; * beats **
		{"/a/b/c/d", "/a/b/**"},   // first listed of two equal rules (index 5)
		{"/x/u1", "/x/{sub}"},     // exact with a template beats *
		{"/y/u1/z", "/y/{sub}/**"},
		{"/a/**", "/a/**"}, // patterns: the most specific covering rule
		{"/a/b/*", "/a/b/*"},
		{"/a/*", "/a/*"},
		{"/**", "/**"},
	}
	for _, tt := range tests {
		r := a.govern(channels.MustParsePattern(tt.target))
		got := ""
		if r != nil {
			got = r.Pattern
		}
		if got != tt.want {
			t.Errorf("%s is governed by %q, want %q", tt.target, got, tt.want)
		}
	}
	if r := a.govern(channels.MustParsePattern("/a/b/c/d")); r.index != 5 {
		t.Errorf("tie broken towards rule %d, want 5", r.index)
	}
	if b := newACL(t, Config{Rules: rules[1:2]}); b.govern(channels.MustParsePattern("/**")) != nil {
		t.Error("/a/** governs /**")
	}
}

func TestServer(t *testing.T) {
	a := newACL(t, Config{Rules: testRules})
	ts := testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}})
	ids := map[string]string{}
	for name, id := range map[string]*bayeux.Identity{"anon": nil, "u1": u1, "admin": admin} {
		c := ts.Connect(t, "")
		ts.Session(c).SetIdentity(id)
		ids[name] = c
		if r := ts.Subscribe(t, c, "/**", ""); !r.Get("successful").Bool() {
			t.Fatalf("%s subscribe /**: %s", name, r.Raw)
		}
	}
	if r := ts.Subscribe(t, ids["anon"], "/users/u1/*", ""); r.Get("error").String() != ErrAuthRequired {
		t.Errorf("anonymous refusal: %s", r.Raw)
	}
	if r := ts.Subscribe(t, ids["u1"], "/users/u2/*", ""); r.Get("error").String() != ErrForbidden {
		t.Errorf("identified refusal: %s", r.Raw)
	}
	if r := ts.Subscribe(t, ids["u1"], "/service/anything", ""); !r.Get("successful").Bool() {
		t.Errorf("service subscribe: %s", r.Raw)
	}
	if r := ts.Publish(t, ids["u1"], "/news/today", `1`, ""); r.Get("error").String() != ErrForbidden {
		t.Errorf("publish refusal: %s", r.Raw)
	}
	if r := ts.Publish(t, "", "/news/today", `1`, ""); r.Get("error").String() != ErrAuthRequired {
		t.Errorf("client-less publish refusal: %s", r.Raw)
	}
	for _, ch := range []string{"/users/u1/x", "/users/u2/x", "/admin/log", "/news/today", "/news/secret", "/teams/red/x", "/teams/blue/x", "/elsewhere"} {
		if err := ts.Server.Publish(context.Background(), ch, ch); err != nil { // the server is not checked
			t.Fatalf("server publish %s: %v", ch, err)
		}
	}
	want := map[string]string{
		"anon":  "/news/today /elsewhere",
		"u1":    "/users/u1/x /news/today /teams/red/x /elsewhere",
		"admin": "/admin/log /news/today /elsewhere",
	}
	for name, id := range ids {
		if got := testserver.Channels(ts.Deliveries(t, id)); got != want[name] {
			t.Errorf("%s received %q, want %q", name, got, want[name])
		}
	}
}

func TestClosedDefault(t *testing.T) {
	a := newACL(t, Config{Default: Identified, Rules: []Rule{{Pattern: "/public/**", Subscribe: Anyone, Publish: Anyone}}})
	ts := testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}})
	anon, named := ts.Connect(t, ""), ts.Connect(t, "")
	ts.Session(named).SetIdentity(u1)
	if r := ts.Subscribe(t, anon, "/**", ""); r.Get("successful").Bool() {
		t.Fatalf("anonymous /** under a closed default: %s", r.Raw)
	}
	for _, c := range []string{anon, named} {
		ts.Subscribe(t, c, "/public/**", "")
	}
	ts.Subscribe(t, named, "/**", "")
	for _, ch := range []string{"/public/a", "/private"} {
		if err := ts.Server.Publish(context.Background(), ch, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := testserver.Channels(ts.Deliveries(t, anon)); got != "/public/a" {
		t.Errorf("anonymous received %q", got)
	}
	if got := testserver.Channels(ts.Deliveries(t, named)); got != "/public/a /private" {
		t.Errorf("identified received %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Default: "everyone"}, "default"},
		{Config{Rules: []Rule{{Pattern: "/a", Subscribe: "admins"}}}, "subscribe"},
		{Config{Rules: []Rule{{Pattern: "/a", Publish: "role:"}}}, "publish"},
		{Config{Rules: []Rule{{Pattern: "a/b"}}}, "must start with /"},
		{Config{Rules: []Rule{{Pattern: "/a/**/b"}}}, "invalid"},
		{Config{Rules: []Rule{{Pattern: "/a/{user}/**"}}}, "unknown template"},
		{Config{Rules: []Rule{{Pattern: "/meta/**"}}}, "/meta"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error about %q", tt.cfg, err, tt.want)
		}
	}
}

// TestPartialSubscribe: a subscribe naming allowed and refused channels is
// refused the refused ones only.
func TestPartialSubscribe(t *testing.T) {
	a := newACL(t, Config{Rules: testRules})
	ts := testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}})
	c := ts.Connect(t, "")
	ts.Session(c).SetIdentity(u1)
	ts.WantPartialSubscribe(t, c, []string{"/users/u1/x", "/news/today"}, map[string]string{"/users/u2/x": ErrForbidden})
}
