package api_test

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestAccess(t *testing.T) {
	const key = "s3cret-key"
	nets := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/8")}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.9.9.9/32"), netip.MustParsePrefix("10.9.9.10/32")}
	configs := map[string]api.Config{
		"default":    {},
		"keys":       {Keys: []string{"other-key", key}},
		"nets":       {AllowNets: nets},
		"keys+nets":  {Keys: []string{key}, AllowNets: nets},
		"proxy":      {AllowNets: nets, TrustedProxies: proxies},
		"empty keys": {Keys: []string{""}},
		"bad net":    {AllowNets: []netip.Prefix{{}}},
	}
	bearer := header("Authorization", "Bearer "+key)
	tests := []struct {
		config string
		name   string
		mods   []func(*http.Request)
		status int // for GET /clients
	}{
		{"default", "loopback v4", nil, 200},
		{"default", "loopback v4 elsewhere in 127/8", mods(from("127.1.2.3:1")), 200},
		{"default", "loopback v6", mods(from("[::1]:1")), 200},
		{"default", "loopback v4 in v6", mods(from("[::ffff:127.0.0.1]:1")), 200},
		{"default", "remote", mods(from("192.0.2.7:1")), 403},
		{"default", "remote with a key", mods(from("192.0.2.7:1"), bearer), 403},
		{"default", "forged X-Forwarded-For", mods(from("192.0.2.7:1"), header("X-Forwarded-For", "127.0.0.1")), 403},
		{"default", "unparsable peer", mods(from("@")), 403},
		{"default", "web page", mods(header("Origin", "https://evil.example")), 403},
		{"default", "web page without Origin", mods(header("Sec-Fetch-Site", "same-origin")), 403},
		{"default", "address typed in a browser", mods(header("Sec-Fetch-Site", "none")), 200},

		{"keys", "no key", nil, 401},
		{"keys", "wrong key", mods(header("Authorization", "Bearer nope")), 401},
		{"keys", "prefix of the key", mods(header("Authorization", "Bearer s3cret")), 401},
		{"keys", "bearer", mods(from("192.0.2.7:1"), bearer), 200},
		{"keys", "bearer lower case", mods(from("192.0.2.7:1"), header("Authorization", "bearer "+key)), 200},
		{"keys", "second key", mods(header("Authorization", "Bearer other-key")), 200},
		{"keys", "X-API-Key", mods(from("[2001:db8::1]:1"), header("X-API-Key", key)), 200},
		{"keys", "basic auth", mods(header("Authorization", "Basic "+key)), 401},
		{"keys", "web page with key", mods(bearer, header("Origin", "https://admin.example")), 200},

		{"nets", "allowed", mods(from("10.1.2.3:1")), 200},
		{"nets", "allowed v6", mods(from("[fd00::5]:1")), 200},
		{"nets", "loopback not listed", nil, 403},
		{"nets", "outside", mods(from("10.2.0.1:1")), 403},

		{"keys+nets", "allowed with key", mods(from("10.1.2.3:1"), bearer), 200},
		{"keys+nets", "allowed without key", mods(from("10.1.2.3:1")), 401},
		{"keys+nets", "outside with key", mods(from("10.2.0.1:1"), bearer), 403},

		{"proxy", "through the proxy", mods(from("10.9.9.9:1"), header("X-Forwarded-For", "10.1.0.1")), 200},
		{"proxy", "through two proxies", mods(from("10.9.9.9:1"), header("X-Forwarded-For", "10.1.0.1, 10.9.9.10")), 200},
		{"proxy", "spoofed left entry", mods(from("10.9.9.9:1"), header("X-Forwarded-For", "10.1.0.1, 192.0.2.7")), 403},
		{"proxy", "outside through the proxy", mods(from("10.9.9.9:1"), header("X-Forwarded-For", "192.0.2.7")), 403},
		{"proxy", "garbage", mods(from("10.9.9.9:1"), header("X-Forwarded-For", "10.1.0.1, junk")), 403},
		{"proxy", "header from an untrusted peer", mods(from("10.2.0.1:1"), header("X-Forwarded-For", "10.1.0.1")), 403},
		{"proxy", "direct from an allowed net", mods(from("10.1.0.1:1"), header("X-Forwarded-For", "192.0.2.7")), 200},

		{"empty keys", "loopback", nil, 200},
		{"empty keys", "remote", mods(from("192.0.2.7:1")), 403},
		{"bad net", "loopback", nil, 403},
	}
	envs := map[string]*env{}
	for name, cfg := range configs {
		envs[name] = newEnv(t, bayeux.Config{}, cfg)
	}
	for _, tt := range tests {
		t.Run(tt.config+"/"+tt.name, func(t *testing.T) {
			e := envs[tt.config]
			r := e.call(t, "GET", "/clients", "", tt.mods...)
			switch tt.status {
			case 200:
				if r.status != 200 || !r.body.Get("count").Exists() {
					t.Errorf("got %d %s, want 200", r.status, r.body.Raw)
				}
			case 401:
				wantError(t, "GET /clients", r, 401, "unauthorized")
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			case 403:
				wantError(t, "GET /clients", r, 403, "forbidden")
			}
			// Every route is protected but /health.
			if tt.status != 200 {
				if r := e.call(t, "POST", "/publish", `{"channel":"/a","data":1}`, tt.mods...); r.status != tt.status {
					t.Errorf("POST /publish: %d, want %d", r.status, tt.status)
				}
				if r := e.call(t, "GET", "/nope", "", tt.mods...); r.status != tt.status {
					t.Errorf("GET /nope: %d, want %d", r.status, tt.status)
				}
			}
			if r := e.call(t, "GET", "/health", "", tt.mods...); r.status != 200 {
				t.Errorf("GET /health: %d %s", r.status, r.body.Raw)
			}
		})
	}
}

func mods(m ...func(*http.Request)) []func(*http.Request) { return m }

// TestRefusalLogNamesTheClient checks that a refused request is logged
// with the client address a trusted proxy names, not the proxy's.
func TestRefusalLogNamesTheClient(t *testing.T) {
	out := &bayeuxtest.Buffer{}
	e := newEnv(t, bayeux.Config{}, api.Config{Keys: []string{"k"}, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Logger: slog.New(slog.NewTextHandler(out, nil))})
	if r := e.call(t, "GET", "/clients", "", from("10.0.0.1:5000"), header("X-Forwarded-For", "203.0.113.4")); r.status != 401 {
		t.Fatalf("status %d", r.status)
	}
	if !strings.Contains(out.String(), "ip=203.0.113.4") {
		t.Fatalf("log: %s", out.String())
	}
}
