package callback

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/internal/testserver"
)

// backend is an httptest auth service that records the requests it gets
// and answers with decide.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []Request
}

func newBackend(t *testing.T, decide func(Request) (int, Answer)) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, req)
		b.mu.Unlock()
		status, a := decide(req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Request(nil), b.reqs...)
}

func (b *backend) count(typ string) int {
	n := 0
	for _, r := range b.requests() {
		if r.Type == typ {
			n++
		}
	}
	return n
}

// rules is the test back end's policy: a handshake needs ext.token "good"
// (the identity is u1) or "bad" (refused for good); u1 may use /users/u1/**;
// everyone may use /public/**.
func rules(req Request) (int, Answer) {
	var ext struct{ Token string }
	_ = json.Unmarshal(req.Ext, &ext)
	switch req.Type {
	case "handshake":
		switch ext.Token {
		case "good":
			return 200, Answer{Allow: true, Identity: &Identity{User: "u1", Roles: []string{"member"}, Claims: map[string]any{"plan": "pro"}}}
		case "bad":
			return 200, Answer{Error: "401::Bad credentials", Final: true}
		case "guest":
			return 200, Answer{Allow: true}
		}
		return 200, Answer{Error: "401::Authentication required"}
	case "subscribe":
		if strings.HasPrefix(req.Subscription, "/public/") {
			return 200, Answer{Allow: true}
		}
		if req.Identity != nil && req.Identity.User == "u1" && strings.HasPrefix(req.Subscription, "/users/u1/") {
			return 200, Answer{Allow: true}
		}
		return 200, Answer{Error: "403::Not yours"}
	case "publish":
		if strings.HasPrefix(req.Channel, "/public/") {
			return 200, Answer{Allow: true}
		}
		if req.Channel == "/forbidden-status" {
			return http.StatusForbidden, Answer{}
		}
		return 200, Answer{} // refused, no error text
	}
	return 500, Answer{}
}

func newServer(t *testing.T, cfg Config) (*testserver.Server, *Callback) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{c}}), c
}

func TestDecisions(t *testing.T) {
	be := newBackend(t, rules)
	ts, _ := newServer(t, Config{URL: be.URL, Timeout: 2 * time.Second, CacheSize: -1, StripExt: []string{"token"}})

	hsTests := []struct {
		token, wantErr, reconnect string
	}{
		{"", "401::Authentication required", "handshake"},
		{"bad", "401::Bad credentials", "none"},
		{"good", "", "retry"},
	}
	for _, tt := range hsTests {
		r := ts.Handshake(t, testserver.Ext("token", tt.token))
		if r.Get("error").String() != tt.wantErr || r.Get("advice.reconnect").String() != tt.reconnect {
			t.Errorf("handshake with %q: %s", tt.token, r.Raw)
		}
	}
	u1 := ts.Connect(t, testserver.Ext("token", "good"))
	if id := ts.Session(u1).Identity(); id == nil || id.User != "u1" || !id.HasRole("member") || id.Claims["plan"] != "pro" {
		t.Fatalf("identity %+v", id)
	}
	guest := ts.Connect(t, testserver.Ext("token", "guest"))
	if ts.Session(guest).Identity() != nil {
		t.Fatal("an answer without identity attached one")
	}
	tests := []struct {
		client, op, channel, wantErr string
	}{
		{u1, "subscribe", "/users/u1/inbox", ""},
		{u1, "subscribe", "/users/u2/inbox", "403::Not yours"},
		{guest, "subscribe", "/users/u1/inbox", "403::Not yours"},
		{guest, "subscribe", "/public/news", ""},
		{guest, "publish", "/public/news", ""},
		{guest, "publish", "/private", ErrForbidden},
		{guest, "publish", "/forbidden-status", ErrForbidden},
		{"", "publish", "/public/x", ""},
	}
	for _, tt := range tests {
		r := ts.Subscribe(t, tt.client, tt.channel, "")
		if tt.op == "publish" {
			r = ts.Publish(t, tt.client, tt.channel, `1`, "")
		}
		if r.Get("error").String() != tt.wantErr || r.Get("successful").Bool() != (tt.wantErr == "") {
			t.Errorf("%s %s: %s", tt.op, tt.channel, r.Raw)
		}
	}
	// A subscribe naming several channels is refused the refused channels
	// only: the reply fails, says which, and the others are subscribed.
	r := ts.Post(t, `{"channel":"/meta/subscribe","clientId":"`+u1+`","subscription":["/public/a","/users/u2/x","/public/b"]}`)
	if r.Get("0.error").String() != "403::Not yours" || r.Get("0.successful").Bool() ||
		r.Get(`0.ext.rejected.\/users\/u2\/x`).String() != "403::Not yours" ||
		ts.Subscribers("/public/a") != 1 || ts.Subscribers("/public/b") != 1 || ts.Subscribers("/users/u2/x") != 0 {
		t.Errorf("multi-channel subscribe: %s", r.Raw)
	}
	// The server's own publishes are not sent to the back end.
	before := len(be.requests())
	if err := ts.Server.Publish(context.Background(), "/private", 1); err != nil {
		t.Fatalf("server publish: %v", err)
	}
	if len(be.requests()) != before {
		t.Fatal("the server's own publish was sent to the back end")
	}
}

func TestRequestContent(t *testing.T) {
	be := newBackend(t, func(Request) (int, Answer) { return 200, Answer{Allow: true} })
	ts, _ := newServer(t, Config{URL: be.URL, Headers: []string{"x-auth"}, IncludeData: true, StripExt: []string{"token"}})
	id := ts.Connect(t, `,"ext":{"token":"t1"}`)
	ts.Session(id).SetIdentity(&bayeux.Identity{User: "ana", Roles: []string{"r"}})
	if r := ts.Subscribe(t, id, "/room", ""); !r.Get("successful").Bool() {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	ts.Post(t, `{"clientId":"`+id+`","channel":"/room","data":{"n":1},"ext":{"token":"t1","keep":2}}`, "X-Auth", "secret-header", "Cookie", "c=1")
	got := be.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests: %+v", len(got), got)
	}
	hs, sub, pub := got[0], got[1], got[2]
	if hs.Type != "handshake" || hs.Channel != "/meta/handshake" || hs.ClientID != id || string(hs.Ext) != `{"token":"t1"}` || hs.Identity != nil ||
		hs.IP != "127.0.0.1" {
		t.Errorf("handshake request %+v (clientId %s)", hs, id)
	}
	if sub.Type != "subscribe" || sub.Subscription != "/room" || sub.Identity == nil || sub.Identity.User != "ana" || sub.Ext != nil ||
		sub.IP != "127.0.0.1" {
		t.Errorf("subscribe request %+v", sub)
	}
	if pub.Type != "publish" || pub.Channel != "/room" || string(pub.Data) != `{"n":1}` || string(pub.Ext) != `{"token":"t1","keep":2}` ||
		len(pub.Headers) != 1 || pub.Headers["X-Auth"] != "secret-header" {
		t.Errorf("publish request %+v", pub)
	}
	// The back end saw the publisher's ext; subscribers do not (the server
	// does not forward it unless bayeux.Config.ForwardExt).
	d := ts.Deliveries(t, id)
	if len(d) != 1 || d[0].Get("ext").Exists() {
		t.Fatalf("delivery: %v", d)
	}
}

func TestUnavailable(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		_, _ = w.Write([]byte(`{"allow":true}`))
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	broken := newBackend(t, func(Request) (int, Answer) { return 500, Answer{Allow: true} })
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }))
	t.Cleanup(garbage.Close)

	for name, u := range map[string]string{"slow": slow.URL, "down": downURL, "500": broken.URL, "not JSON": garbage.URL} {
		t.Run(name, func(t *testing.T) {
			ts, c := newServer(t, Config{URL: u, Timeout: 150 * time.Millisecond})
			start := time.Now()
			r := ts.Handshake(t, "")
			if r.Get("error").String() != ErrUnavailable || r.Get("advice.reconnect").String() != "handshake" {
				t.Fatalf("handshake: %s", r.Raw)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("refusal took %v with a 150ms timeout", el)
			}
			if c.cache.len() != 0 {
				t.Fatal("a failure was cached")
			}
		})
	}
}

func TestCache(t *testing.T) {
	be := newBackend(t, rules)
	var mu sync.Mutex
	now := time.Unix(1_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts, _ := newServer(t, Config{URL: be.URL, CacheTTL: time.Minute, Now: clock})

	u1 := ts.Connect(t, testserver.Ext("token", "good"))
	u1b := ts.Connect(t, testserver.Ext("token", "good"))
	if be.count("handshake") != 1 || ts.Session(u1b).Identity().User != "u1" {
		t.Errorf("a handshake keyed by its credential is cached: %d calls", be.count("handshake"))
	}
	// An identity-giving answer to a handshake without ext is never cached.
	identify := newBackend(t, func(Request) (int, Answer) { return 200, Answer{Allow: true, Identity: &Identity{User: "x"}} })
	ts2, _ := newServer(t, Config{URL: identify.URL})
	ts2.Connect(t, "")
	ts2.Connect(t, `,"ext":{}`)
	if identify.count("handshake") != 2 {
		t.Errorf("identity answers without a credential were cached: %d calls", identify.count("handshake"))
	}

	for range 3 {
		ts.Subscribe(t, u1, "/users/u1/a", "")
		ts.Subscribe(t, u1b, "/users/u1/a", "") // same user: same key
	}
	if n := be.count("subscribe"); n != 1 {
		t.Errorf("%d subscribe calls, want 1", n)
	}
	ts.Subscribe(t, u1, "/users/u1/a", `,"ext":{"v":1}`) // another ext: another key
	guest := ts.Connect(t, testserver.Ext("token", "guest"))
	if r := ts.Subscribe(t, guest, "/users/u1/a", ""); r.Get("successful").Bool() { // anonymous: another key
		t.Fatalf("guest got u1's cached answer: %s", r.Raw)
	}
	if n := be.count("subscribe"); n != 3 {
		t.Errorf("%d subscribe calls, want 3", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	ts.Subscribe(t, u1, "/users/u1/a", "")
	if n := be.count("subscribe"); n != 4 {
		t.Errorf("%d subscribe calls after the TTL, want 4", n)
	}
}

func TestCacheEviction(t *testing.T) {
	now := time.Unix(0, 0)
	c := newCache(2, time.Minute, func() time.Time { return now })
	k := func(b byte) (k [32]byte) { k[0] = b; return k }
	c.put(k(1), Answer{Allow: true})
	c.put(k(2), Answer{Error: "x"})
	if _, ok := c.get(k(1)); !ok { // 1 is now the most recently used
		t.Fatal("entry 1 missing")
	}
	c.put(k(3), Answer{})
	if _, ok := c.get(k(2)); ok {
		t.Fatal("the least recently used entry was kept")
	}
	if a, ok := c.get(k(1)); !ok || !a.Allow {
		t.Fatal("entry 1 evicted")
	}
	c.put(k(1), Answer{Error: "updated"})
	if a, _ := c.get(k(1)); a.Error != "updated" || c.len() != 2 {
		t.Fatalf("update: %+v, len %d", a, c.len())
	}
	now = now.Add(time.Minute)
	if _, ok := c.get(k(1)); ok || c.len() != 1 {
		t.Fatalf("expired entry returned (len %d)", c.len())
	}
}

func TestNewErrors(t *testing.T) {
	for _, u := range []string{"", "relative/path", "ftp://x/y", "http://"} {
		if _, err := New(Config{URL: u}); err == nil {
			t.Errorf("New accepted URL %q", u)
		}
	}
}

// TestRequestIPBehindAProxy checks that the back end gets the client
// address a trusted proxy names, and the peer's when the peer is not
// trusted (a forged X-Forwarded-For is ignored).
func TestRequestIPBehindAProxy(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.9"},
		{"untrusted peer", nil, "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := newBackend(t, func(Request) (int, Answer) { return 200, Answer{Allow: true} })
			c, err := New(Config{URL: be.URL})
			if err != nil {
				t.Fatal(err)
			}
			ts := testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{c}, TrustedProxies: tt.trusted})
			ts.Post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`,
				"X-Forwarded-For", "203.0.113.9")
			got := be.requests()
			if len(got) != 1 || got[0].IP != tt.want {
				t.Fatalf("requests %+v, want ip %s", got, tt.want)
			}
		})
	}
}
