package tokenauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/internal/testserver"
)

func newServer(t *testing.T, cfg Config) *testserver.Server {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}})
}

func TestProtectedChannels(t *testing.T) {
	ts := newServer(t, Config{Secret: "s3cret", Protect: []string{"/private/**", "/admin"}})
	anon := ts.Connect(t, "")
	authed := ts.Connect(t, testserver.Ext("token", "s3cret"))
	wrong := ts.Connect(t, testserver.Ext("token", "nope")) // not required: stays anonymous
	tests := []struct {
		name    string
		client  string
		op      string // "subscribe" or "publish"
		channel string
		token   string
		wantErr string
	}{
		{"anonymous protected name", anon, "subscribe", "/private/x", "", ErrForbidden},
		{"anonymous /**", anon, "subscribe", "/**", "", ErrForbidden},
		{"anonymous /private/*", anon, "subscribe", "/private/*", "", ErrForbidden},
		{"anonymous /private/x/**", anon, "subscribe", "/private/x/**", "", ErrForbidden},
		{"anonymous /* reaches /admin", anon, "subscribe", "/*", "", ErrForbidden},
		{"anonymous /x/* reaches nothing protected", anon, "subscribe", "/x/*", "", ""},
		{"anonymous /admin", anon, "subscribe", "/admin", "", ErrForbidden},
		{"anonymous public", anon, "subscribe", "/public/**", "", ""},
		{"anonymous /private itself is not protected", anon, "subscribe", "/private", "", ""},
		{"token on the message", anon, "subscribe", "/private/x", "s3cret", ""},
		{"wrong token on the message", anon, "subscribe", "/private/x", "bad", ErrForbidden},
		{"wrong token at handshake", wrong, "subscribe", "/private/x", "", ErrForbidden},
		{"authenticated session", authed, "subscribe", "/**", "", ""},
		{"anonymous publish", anon, "publish", "/private/x", "", ErrForbidden},
		{"anonymous publish to a public channel", anon, "publish", "/public/x", "", ""},
		{"publish with a token", anon, "publish", "/private/x", "s3cret", ""},
		{"authenticated publish", authed, "publish", "/private/x", "", ""},
		{"client-less publish", "", "publish", "/admin", "", ErrForbidden},
		{"client-less publish with a token", "", "publish", "/admin", "s3cret", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ext := testserver.Ext("token", tt.token)
			var r = ts.Subscribe(t, tt.client, tt.channel, ext)
			if tt.op == "publish" {
				r = ts.Publish(t, tt.client, tt.channel, `"hi"`, ext)
			}
			if got := r.Get("error").String(); got != tt.wantErr || r.Get("successful").Bool() != (tt.wantErr == "") {
				t.Fatalf("reply %s, want error %q", r.Raw, tt.wantErr)
			}
		})
	}
	if id := ts.Session(authed).Identity(); id == nil || id.User != "" || id.Claims["auth"] != "token" {
		t.Fatalf("shared-secret identity = %+v", id)
	}
	if ts.Session(anon).Identity() != nil || ts.Session(wrong).Identity() != nil {
		t.Fatal("a message token or a wrong handshake token attached an identity")
	}
}

// TestTokenNeverBroadcast: the token is removed even on a server that
// forwards the publisher's ext (as faye does).
func TestTokenNeverBroadcast(t *testing.T) {
	a, err := New(Config{Tokens: map[string]string{"t-ana": "ana"}, Protect: []string{"/private/**"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}, ForwardExt: true})
	reader := ts.Connect(t, testserver.Ext("token", "t-ana"))
	if r := ts.Subscribe(t, reader, "/**", ""); !r.Get("successful").Bool() {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	hs := ts.Handshake(t, `,"ext":{"token":"t-ana","keep":1}`)
	if strings.Contains(hs.Raw, "t-ana") {
		t.Fatalf("handshake reply echoes the token: %s", hs.Raw)
	}
	writer := hs.Get("clientId").String()
	for _, ch := range []string{"/private/x", "/public"} {
		r := ts.Publish(t, writer, ch, `"m"`, `,"ext":{"token":"t-ana","keep":1}`)
		if !r.Get("successful").Bool() || strings.Contains(r.Raw, "t-ana") {
			t.Fatalf("publish reply: %s", r.Raw)
		}
	}
	ts.Publish(t, writer, "/public", `"only token"`, testserver.Ext("token", "t-ana"))
	got := ts.Deliveries(t, reader)
	if testserver.Channels(got) != "/private/x /public /public" {
		t.Fatalf("deliveries: %v", got)
	}
	for _, m := range got[:2] {
		if m.Get("ext.token").Exists() || m.Get("ext.keep").Int() != 1 {
			t.Errorf("delivery %s", m.Raw)
		}
	}
	if got[2].Get("ext").Exists() {
		t.Errorf("an ext left empty must be dropped: %s", got[2].Raw)
	}
	if id := ts.Session(writer).Identity(); id == nil || id.User != "ana" {
		t.Fatalf("token-list identity = %+v", id)
	}
}

func TestRequireHandshake(t *testing.T) {
	ts := newServer(t, Config{Secret: "s3cret", RequireHandshake: true})
	tests := []struct {
		token, wantErr, reconnect string
	}{
		{"", ErrAuthRequired, "handshake"}, // may come back with a token
		{"wrong", ErrAuthRequired, "none"}, // final: do not retry
		{"s3cret", "", "retry"},
	}
	for _, tt := range tests {
		r := ts.Handshake(t, testserver.Ext("token", tt.token))
		if r.Get("error").String() != tt.wantErr || r.Get("advice.reconnect").String() != tt.reconnect {
			t.Errorf("token %q: %s", tt.token, r.Raw)
		}
	}
	if ts.Sessions() != 1 {
		t.Fatalf("%d sessions, want the authenticated one only", ts.Sessions())
	}
}

func TestEverythingProtectedByDefault(t *testing.T) {
	ts := newServer(t, Config{Secret: "s3cret"})
	anon := ts.Connect(t, "")
	for _, ch := range []string{"/a", "/*", "/service/x"} {
		if r := ts.Subscribe(t, anon, ch, ""); r.Get("error").String() != ErrForbidden {
			t.Errorf("subscribe %s: %s", ch, r.Raw)
		}
	}
	if r := ts.ConnectMsg(t, anon, ""); !r.Get("0.successful").Bool() {
		t.Errorf("meta channels are never protected: %s", r.Raw)
	}
	// The server's own publish is trusted.
	if err := ts.Server.Publish(context.Background(), "/a", "from the server"); err != nil {
		t.Fatalf("server publish: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no secret nor tokens", Config{}},
		{"bad protect pattern", Config{Secret: "x", Protect: []string{"/a/**/b"}}},
		{"empty token", Config{Tokens: map[string]string{"": "u"}}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
}

func TestParseTokens(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{`{"t1":"ana","t2":"bob"}`, map[string]string{"t1": "ana", "t2": "bob"}, false},
		{"# comment\n\nt1 ana\n  t2\tbob  \n", map[string]string{"t1": "ana", "t2": "bob"}, false},
		{"t1 ana extra\n", nil, true},
		{"t1 ana\nt1 bob\n", nil, true},
		{`{"t1":1}`, nil, true},
	}
	for _, tt := range tests {
		got, err := ParseTokens([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %v", tt.in, got)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%q: got %v", tt.in, got)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("abc ana\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m, err := LoadTokens(path); err != nil || m["abc"] != "ana" {
		t.Fatalf("LoadTokens = %v, %v", m, err)
	}
	if _, err := LoadTokens(path + ".missing"); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestPartialSubscribe: a subscribe naming protected and public channels
// is refused the protected ones only.
func TestPartialSubscribe(t *testing.T) {
	ts := newServer(t, Config{Secret: "s3cret", Protect: []string{"/private/**"}})
	anon := ts.Connect(t, "")
	ts.WantPartialSubscribe(t, anon, []string{"/public/a", "/public/b"}, map[string]string{"/private/x": ErrForbidden, "/**": ErrForbidden})
}
