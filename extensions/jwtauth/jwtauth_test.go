package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/internal/testserver"
	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("test-secret")

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// sign returns an HS256 token with claims.
func sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// user returns claims for sub allowing channels, expiring in an hour of
// clk's time.
func user(clk *clock, sub string, channels ...any) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "exp": clk.Now().Add(time.Hour).Unix(), "channels": channels, "roles": []any{"member"}}
}

func newServer(t *testing.T, cfg Config) (*testserver.Server, *Auth) {
	t.Helper()
	if cfg.Secret == nil && cfg.PublicKey == nil {
		cfg.Secret = secret
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}}), a
}

func TestHandshake(t *testing.T) {
	clk := newClock()
	ts, _ := newServer(t, Config{Now: clk.Now, Issuer: "bayou-test", Audience: "chat"})
	good := jwt.MapClaims{"sub": "u1", "iss": "bayou-test", "aud": "chat", "exp": clk.Now().Add(time.Minute).Unix(), "roles": "a b"}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for key, val := range good {
			c[key] = val
		}
		c[k] = v
		return c
	}
	noneToken, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	otherKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, good).SignedString([]byte("other"))
	tests := []struct {
		name, token, wantErr, reconnect string
	}{
		{"valid", sign(t, good), "", "retry"},
		{"no token", "", ErrAuthRequired, "handshake"},
		{"expired", sign(t, with("exp", clk.Now().Add(-time.Second).Unix())), ErrTokenExpired, "handshake"},
		{"not valid yet", sign(t, with("nbf", clk.Now().Add(time.Hour).Unix())), ErrInvalidToken, "handshake"},
		{"wrong issuer", sign(t, with("iss", "evil")), ErrInvalidToken, "none"},
		{"wrong audience", sign(t, with("aud", "other")), ErrInvalidToken, "none"},
		{"wrong key", otherKey, ErrInvalidToken, "none"},
		{"alg none", noneToken, ErrInvalidToken, "none"},
		{"garbage", "not.a.jwt", ErrInvalidToken, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.Handshake(t, testserver.Ext("token", tt.token))
			if r.Get("error").String() != tt.wantErr || r.Get("advice.reconnect").String() != tt.reconnect {
				t.Fatalf("reply %s, want error %q reconnect %q", r.Raw, tt.wantErr, tt.reconnect)
			}
			if tt.wantErr != "" {
				return
			}
			id := ts.Session(r.Get("clientId").String()).Identity()
			if id == nil || id.User != "u1" || strings.Join(id.Roles, ",") != "a,b" || id.Claims["iss"] != "bayou-test" {
				t.Fatalf("identity %+v", id)
			}
			// The issuer claim has a dash, so it cannot occur in a clientId
			// by chance (the subject "u1" could).
			if strings.Contains(r.Raw, "bayou-test") {
				t.Fatalf("reply leaks the identity: %s", r.Raw)
			}
		})
	}
}

func TestChannelsClaim(t *testing.T) {
	clk := newClock()
	for _, wide := range []bool{false, true} {
		ts, _ := newServer(t, Config{Now: clk.Now, WideSubscriptions: wide})
		u1 := ts.Connect(t, testserver.Ext("token", sign(t, user(clk, "u1", "/users/{sub}/**", "/chat/*"))))
		tests := []struct {
			op, channel string
			ok, okWide  bool
		}{
			{"subscribe", "/users/u1/**", true, true},
			{"subscribe", "/users/u1/*", true, true},
			{"subscribe", "/users/u1/a/b", true, true},
			{"subscribe", "/users/u1", false, false},
			{"subscribe", "/users/u2/**", false, false},
			{"subscribe", "/users/*", false, false}, // two segments: cannot reach /users/u1/x
			{"subscribe", "/users/**", false, true},
			{"subscribe", "/**", false, true},
			{"subscribe", "/chat/room", true, true},
			{"subscribe", "/chat/**", false, true},
			{"subscribe", "/other/**", false, false},
			{"publish", "/users/u1/x", true, true},
			{"publish", "/users/u2/x", false, false},
			{"publish", "/chat/room", true, true},
			{"publish", "/chat/room/deep", false, false},
		}
		for _, tt := range tests {
			r := ts.Subscribe(t, u1, tt.channel, "")
			if tt.op == "publish" {
				r = ts.Publish(t, u1, tt.channel, `1`, "")
			}
			want := tt.ok
			if wide {
				want = tt.okWide
			}
			if r.Get("successful").Bool() != want || (!want && r.Get("error").String() != ErrChannelNotAllowed) {
				t.Errorf("wide=%v %s %s: %s", wide, tt.op, tt.channel, r.Raw)
			}
		}
	}
}

func TestDeliveryThroughWideSubscriptions(t *testing.T) {
	clk := newClock()
	ts, _ := newServer(t, Config{Now: clk.Now, WideSubscriptions: true, Public: []string{"/news/**"}})
	u1 := ts.Connect(t, testserver.Ext("token", sign(t, user(clk, "u1", "/users/{sub}/**"))))
	admin := ts.Connect(t, testserver.Ext("token", sign(t, user(clk, "admin", "/**"))))
	for _, p := range []string{"/**", "/users/**"} {
		if r := ts.Subscribe(t, u1, p, ""); !r.Get("successful").Bool() {
			t.Fatalf("subscribe %s: %s", p, r.Raw)
		}
	}
	for _, ch := range []string{"/users/u2/x", "/users/u1/x", "/news/today", "/users/u11/x"} {
		if r := ts.Publish(t, admin, ch, `"m"`, ""); !r.Get("successful").Bool() {
			t.Fatalf("publish %s: %s", ch, r.Raw)
		}
	}
	if err := ts.Server.Publish(context.Background(), "/users/u2/y", "server"); err != nil {
		t.Fatal(err)
	}
	if got := testserver.Channels(ts.Deliveries(t, u1)); got != "/users/u1/x /news/today" {
		t.Fatalf("u1 received %q", got)
	}
}

func TestExpiryAndRenewal(t *testing.T) {
	clk := newClock()
	ts, a := newServer(t, Config{Now: clk.Now})
	claims := user(clk, "u1", "/users/{sub}/**")
	claims["exp"] = clk.Now().Add(10 * time.Second).Unix()
	old := sign(t, claims)
	id := ts.Connect(t, testserver.Ext("token", old))
	if r := ts.Subscribe(t, id, "/users/u1/*", testserver.Ext("token", old)); !r.Get("successful").Bool() {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	clk.advance(11 * time.Second)
	// The next connect is refused and told to handshake again, with or
	// without the old token.
	for _, ext := range []string{"", testserver.Ext("token", old)} {
		r := ts.ConnectMsg(t, id, ext).Get("0")
		if r.Get("successful").Bool() || r.Get("error").String() != ErrTokenExpired || r.Get("advice.reconnect").String() != "handshake" ||
			r.Get("clientId").Exists() {
			t.Fatalf("connect of an expired session: %s", r.Raw)
		}
	}
	if r := ts.Publish(t, id, "/users/u1/x", `1`, ""); r.Get("error").String() != ErrTokenExpired {
		t.Fatalf("publish of an expired session: %s", r.Raw)
	}
	// Nothing is delivered to the expired session meanwhile.
	if err := ts.Server.Publish(context.Background(), "/users/u1/x", "while expired"); err != nil {
		t.Fatal(err)
	}
	// Another subject's token does not take the session over.
	other := sign(t, user(clk, "u2", "/users/{sub}/**"))
	if r := ts.ConnectMsg(t, id, testserver.Ext("token", other)).Get("0"); r.Get("successful").Bool() {
		t.Fatalf("connect with another subject's token: %s", r.Raw)
	}
	// A renewed token for the same subject revives it without a handshake.
	fresh := sign(t, user(clk, "u1", "/users/{sub}/**"))
	r := ts.ConnectMsg(t, id, testserver.Ext("token", fresh))
	if !r.Get("0.successful").Bool() || r.Get("#(data)").Exists() {
		t.Fatalf("connect with a renewed token: %s", r.Raw)
	}
	if got := ts.Session(id).Identity(); got == nil || a.grants.get(got) == nil || got.Claims["exp"].(float64) <= float64(claims["exp"].(int64)) {
		t.Fatalf("identity after renewal: %+v", got)
	}
	if err := ts.Server.Publish(context.Background(), "/users/u1/x", "after renewal"); err != nil {
		t.Fatal(err)
	}
	if got := ts.Deliveries(t, id); len(got) != 1 || got[0].Get("data").String() != "after renewal" {
		t.Fatalf("deliveries after renewal: %v", got)
	}
	// Unsubscribe and disconnect still work once expired.
	clk.advance(2 * time.Hour)
	if r := ts.Post(t, `{"channel":"/meta/disconnect","clientId":"`+id+`"}`); !r.Get("0.successful").Bool() {
		t.Fatalf("disconnect: %s", r.Raw)
	}
}

// TestTokenStripped: the token is removed even on a server that forwards
// the publisher's ext (as faye does).
func TestTokenStripped(t *testing.T) {
	clk := newClock()
	a, err := New(Config{Now: clk.Now, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	ts := testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}, ForwardExt: true})
	tok := sign(t, user(clk, "u1", "/room"))
	id := ts.Connect(t, `,"ext":{"token":"`+tok+`","keep":true}`)
	ts.Subscribe(t, id, "/room", "")
	r := ts.Publish(t, id, "/room", `1`, `,"ext":{"token":"`+tok+`","keep":true}`)
	got := ts.Deliveries(t, id)
	if !r.Get("successful").Bool() || len(got) != 1 || got[0].Get("ext.token").Exists() || !got[0].Get("ext.keep").Bool() {
		t.Fatalf("publish %s, delivered %v", r.Raw, got)
	}
}

func TestOptionalPublicAndAuthenticateOnly(t *testing.T) {
	clk := newClock()
	ts, _ := newServer(t, Config{Now: clk.Now, Optional: true, Public: []string{"/announce/**"}})
	anon := ts.Connect(t, "")
	if ts.Session(anon).Identity() != nil {
		t.Fatal("anonymous session has an identity")
	}
	for ch, ok := range map[string]bool{"/announce/**": true, "/announce/x": true, "/**": false, "/users/u1/x": false} {
		if r := ts.Subscribe(t, anon, ch, ""); r.Get("successful").Bool() != ok {
			t.Errorf("anonymous subscribe %s: %s", ch, r.Raw)
		}
	}
	// A token on a single message authorises that message only.
	tok := sign(t, user(clk, "u1", "/users/{sub}/**"))
	if r := ts.Subscribe(t, anon, "/users/u1/x", testserver.Ext("token", tok)); !r.Get("successful").Bool() {
		t.Errorf("subscribe with a message token: %s", r.Raw)
	}
	if ts.Session(anon).Identity() != nil {
		t.Fatal("a message token attached an identity to an anonymous session")
	}

	only, _ := newServer(t, Config{Now: clk.Now, AuthenticateOnly: true})
	id := only.Connect(t, testserver.Ext("token", sign(t, jwt.MapClaims{"sub": "u1"})))
	if r := only.Subscribe(t, id, "/**", ""); !r.Get("successful").Bool() {
		t.Fatalf("AuthenticateOnly subscribe: %s", r.Raw)
	}
	only.Publish(t, id, "/x", `1`, "")
	if got := testserver.Channels(only.Deliveries(t, id)); got != "/x" {
		t.Fatalf("AuthenticateOnly deliveries %q", got)
	}
}

func TestAllowedPatterns(t *testing.T) {
	tests := []struct {
		claim   any
		sub     string
		want    string
		dropped int
	}{
		{[]any{"/users/{sub}/**", "/chat/*"}, "u1", "/users/u1/** /chat/*", 0},
		{"/single/**", "u1", "/single/**", 0},
		{[]any{"/users/{sub}/**", "/ok"}, "a/b", "/ok", 1},  // a subject with a slash must not widen the grant
		{[]any{"/users/{sub}/**"}, "*", "", 1},              // nor a wildcard subject
		{[]any{"/users/{sub}/**"}, "", "", 1},               // nor an empty one
		{[]any{"/bad/**/x", 42, "/fine"}, "u1", "/fine", 2}, // unusable entries are dropped
		{nil, "u1", "", 0},
	}
	for _, tt := range tests {
		got, dropped := allowedPatterns(tt.claim, tt.sub)
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != tt.want || len(dropped) != tt.dropped {
			t.Errorf("allowedPatterns(%v, %q) = %q, dropped %q", tt.claim, tt.sub, s, dropped)
		}
	}
}

func TestPublicKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	claims := user(clk, "u1")
	tests := []struct {
		name   string
		pub    any
		method jwt.SigningMethod
		key    any
		ok     bool
	}{
		{"RS256", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey, true},
		{"ES256", &ecKey.PublicKey, jwt.SigningMethodES256, ecKey, true},
		{"HS256 against an RSA key", &rsaKey.PublicKey, jwt.SigningMethodHS256, []byte("whatever"), false},
		{"RS256 against an EC key", &ecKey.PublicKey, jwt.SigningMethodRS256, rsaKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, _ := newServer(t, Config{PublicKey: tt.pub, Now: clk.Now})
			tok, err := jwt.NewWithClaims(tt.method, claims).SignedString(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if r := ts.Handshake(t, testserver.Ext("token", tok)); r.Get("successful").Bool() != tt.ok {
				t.Fatalf("handshake: %s", r.Raw)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no key", Config{}},
		{"both keys", Config{Secret: secret, PublicKey: &rsa.PublicKey{}}},
		{"unsupported key", Config{PublicKey: "pem text"}},
		{"bad public pattern", Config{Secret: secret, Public: []string{"nope"}}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
}

// TestGrantsForgotten checks that the grants of ended sessions are
// released with their identities.
func TestGrantsForgotten(t *testing.T) {
	clk := newClock()
	ts, a := newServer(t, Config{Now: clk.Now})
	tok := sign(t, user(clk, "u1"))
	for range 5 {
		id := ts.Connect(t, testserver.Ext("token", tok))
		ts.Post(t, `{"channel":"/meta/disconnect","clientId":"`+id+`"}`)
	}
	for deadline := time.Now().Add(5 * time.Second); a.grants.len() > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d grants left after their sessions ended", a.grants.len())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPartialSubscribe: a subscribe naming allowed and refused channels is
// refused the refused ones only.
func TestPartialSubscribe(t *testing.T) {
	clk := newClock()
	ts, _ := newServer(t, Config{Now: clk.Now})
	u1 := ts.Connect(t, testserver.Ext("token", sign(t, user(clk, "u1", "/users/{sub}/**"))))
	ts.WantPartialSubscribe(t, u1, []string{"/users/u1/x"}, map[string]string{"/users/u2/x": ErrChannelNotAllowed})
}
