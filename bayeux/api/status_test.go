package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestStatusJSONAfterAWorkload runs a known workload with long-polling
// clients and API publishes, and checks every figure of /status.json.
func TestStatusJSONAfterAWorkload(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{Version: "bayou v1.2.3-test"})
	// 12 clients: each on /room/<i%3>, the first 4 also on /all, the first
	// 2 also on /room/*.
	const clients = 12
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = e.handshake(t)
		subs := []string{"/room/" + string(rune('0'+i%3))}
		if i < 4 {
			subs = append(subs, "/all")
		}
		if i < 2 {
			subs = append(subs, "/room/*")
		}
		e.subscribe(t, ids[i], subs...)
	}
	// 3 publishes on /room/0 (clients 0,3,6,9 and 0,1 through /room/*:
	// client 0 once, so 5 recipients), 2 on /all (4 recipients).
	for _, body := range []string{
		`{"channel":"/room/0","data":1}`, `{"channel":"/room/0","data":2}`, `{"channel":"/room/0","data":3}`,
		`{"channel":"/all","data":"x"}`, `{"channel":"/all","data":"y"}`,
	} {
		if r := e.call(t, "POST", "/publish", body); r.status != 200 {
			t.Fatalf("publish %s: %d %s", body, r.status, r.body.Raw)
		}
	}
	delivered := 0
	for _, id := range ids {
		delivered += len(e.drain(t, id))
	}
	if want := 3*5 + 2*4; delivered != want {
		t.Fatalf("clients got %d messages, want %d", delivered, want)
	}
	// Two errors: connects of an unknown client (401::Unknown client).
	for range 2 {
		e.post(t, `{"channel":"/meta/connect","clientId":"nope","connectionType":"long-polling"}`)
	}

	r := e.call(t, "GET", "/status.json", "")
	if r.status != 200 {
		t.Fatalf("GET /status.json: %d %s", r.status, r.body.Raw)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	b := r.body
	subscriptions := clients + 4 + 2
	tests := []struct {
		path string
		want any
	}{
		{"version", "bayou v1.2.3-test"},
		{"sessions", clients},
		{"clusterSessions", clients},
		{"subscriptions", subscriptions},
		{"channels", 5}, // /room/0, /room/1, /room/2, /all, /room/*
		{"connections.websocket", 0},
		{"connections.longPolling", 0}, // the test's posts have all been answered
		{"connections.callbackPolling", 0},
		{"connections.eventSource", 0},
		{"heldConnects", 0},
		{"published", 5},
		{"received.publish", 0}, // API publishes are not client messages
		{"received.handshake", clients},
		{"received.subscribe", subscriptions},
		{"received.connect", clients + 2},
		{"delivered.longPolling", delivered},
		{"delivered.websocket", 0},
		{"deliveredTotal", delivered},
		{"slowConsumerDrops", 0},
		{"sessionsEnded.disconnect", 0},
		{"errors.#", 1},
		{"errors.0.code", 401},
		{"errors.0.count", 2},
		{"topChannels.#", 5},
		{"topChannels.0.channel", "/all"}, // 4 subscribers; ties in name order
		{"topChannels.0.subscribers", 4},
		{"topChannels.1.channel", "/room/0"},
		{"topChannels.1.subscribers", 4},
		{"topChannels.4.channel", "/room/*"},
		{"topChannels.4.subscribers", 2},
		{"cluster", nil},
	}
	for _, tt := range tests {
		got := b.Get(tt.path)
		switch want := tt.want.(type) {
		case nil:
			if got.Exists() && got.Type.String() != "Null" {
				t.Errorf("%s = %s, want null or absent", tt.path, got.Raw)
			}
		case string:
			if got.String() != want {
				t.Errorf("%s = %s, want %q", tt.path, got.Raw, want)
			}
		case int:
			if !got.Exists() || got.Int() != int64(want) {
				t.Errorf("%s = %s, want %d", tt.path, got.Raw, want)
			}
		}
	}
	if b.Get("uptimeSeconds").Float() < 0 || !b.Get("time").Exists() {
		t.Errorf("uptime/time: %s", b.Raw)
	}
}

// TestStatusTopChannelsAreTen checks that /status.json lists the ten
// channels with most subscribers, most first.
func TestStatusTopChannelsAreTen(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{})
	// Channel /c/k has k subscribers, k = 1..13.
	ids := make([]string, 13)
	for i := range ids {
		ids[i] = e.handshake(t)
	}
	for k := 1; k <= 13; k++ {
		for i := range k {
			e.subscribe(t, ids[i], "/c/"+itoa(k))
		}
	}
	r := e.call(t, "GET", "/status.json", "")
	top := r.body.Get("topChannels").Array()
	if len(top) != 10 {
		t.Fatalf("%d top channels: %s", len(top), r.body.Get("topChannels").Raw)
	}
	for i, c := range top {
		if k := 13 - i; c.Get("channel").String() != "/c/"+itoa(k) || c.Get("subscribers").Int() != int64(k) {
			t.Errorf("top %d = %s, want /c/%d with %d", i, c.Raw, k, k)
		}
	}
	if n := r.body.Get("channels").Int(); n != 13 {
		t.Errorf("channels %d, want 13", n)
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestStatusAccess checks that /status.json follows the API's access rules
// while the page itself (HTML, script, style: no data) is served to any
// source the listener reaches, with its security headers.
func TestStatusAccess(t *testing.T) {
	const key = "k-status"
	withKey := newEnv(t, bayeux.Config{}, api.Config{Keys: []string{key}})
	noKey := newEnv(t, bayeux.Config{}, api.Config{})
	remote := from("192.0.2.9:1")
	sameOrigin := header("Sec-Fetch-Site", "same-origin")
	tests := []struct {
		name   string
		e      *env
		mods   []func(*http.Request)
		status int
	}{
		{"key: none", withKey, nil, 401},
		{"key: wrong", withKey, mods(header("X-API-Key", "nope")), 401},
		{"key: header from the page", withKey, mods(remote, sameOrigin, header("X-API-Key", key)), 200},
		{"key: bearer", withKey, mods(header("Authorization", "Bearer "+key)), 200},
		{"no key: loopback back end", noKey, nil, 200},
		{"no key: remote", noKey, mods(remote), 403},
		{"no key: a web page", noKey, mods(sameOrigin), 403},
	}
	for _, tt := range tests {
		r := tt.e.call(t, "GET", "/status.json", "", tt.mods...)
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body.Raw, tt.status)
		}
	}
	if r := withKey.call(t, "POST", "/status.json", "{}", header("X-API-Key", key)); r.status != 405 {
		t.Errorf("POST /status.json: %d", r.status)
	}
	if r := withKey.call(t, "GET", "/status.json?x=1", "", header("X-API-Key", key)); r.status != 400 {
		t.Errorf("GET /status.json?x=1: %d", r.status)
	}

	// The page: no key needed (a browser cannot send one when it opens a
	// URL), from anywhere, with or without browser headers.
	pages := []struct{ path, ctype, contains string }{
		{"/status", "text/html; charset=utf-8", `<script src="status.js"`},
		{"/status.js", "text/javascript; charset=utf-8", "status.json"},
		{"/status.css", "text/css; charset=utf-8", "canvas"},
	}
	for _, e := range []*env{withKey, noKey} {
		for _, p := range pages {
			rec := serve(e.api, "GET", p.path, remote, sameOrigin)
			if rec.Code != 200 {
				t.Errorf("GET %s: %d %s", p.path, rec.Code, rec.Body)
				continue
			}
			h := rec.Header()
			if h.Get("Content-Type") != p.ctype || !strings.Contains(rec.Body.String(), p.contains) {
				t.Errorf("GET %s: %s, body without %q", p.path, h.Get("Content-Type"), p.contains)
			}
			csp := h.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("GET %s: CSP %q lacks %q", p.path, csp, d)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("GET %s: CSP %q allows inline code", p.path, csp)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("GET %s: headers %v", p.path, h)
			}
		}
		if rec := serve(e.api, "POST", "/status", remote); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("POST /status: %d %v", rec.Code, rec.Header())
		}
		if rec := serve(e.api, "HEAD", "/status.js", remote); rec.Code != 200 || rec.Body.Len() != 0 {
			t.Errorf("HEAD /status.js: %d, %d bytes", rec.Code, rec.Body.Len())
		}
	}
	// The page holds no inline script or style: the CSP forbids them.
	body := serve(noKey.api, "GET", "/status", nil).Body.String()
	if strings.Contains(body, "<script>") || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
		t.Error("the page has inline script or style")
	}
}

// TestStatusHostileChannelName checks that a channel name carrying markup
// never reaches /status.json unescaped: the server refuses to subscribe to
// it, and the status answer escapes < > & in any case (see also the
// browser test, which feeds such a name to the page).
func TestStatusHostileChannelName(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{})
	id := e.handshake(t)
	r := e.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/a/<script>"}`)
	if r.Get("0.successful").Bool() {
		t.Fatalf("subscribing to /a/<script> succeeded: %s", r.Raw)
	}
	e.subscribe(t, id, "/a/x")
	res := serve(e.api, "GET", "/status.json", nil)
	if strings.ContainsAny(res.Body.String(), "<>&") {
		t.Errorf("unescaped markup in %s", res.Body)
	}
	if !strings.Contains(res.Body.String(), `"/a/x"`) {
		t.Errorf("no /a/x in %s", res.Body)
	}
}

// serve calls h from 127.0.0.1 and records the answer.
func serve(h http.Handler, method, target string, mods ...func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	for _, m := range mods {
		if m != nil {
			m(req)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// namedEngine is the memory engine naming its node and reporting figures,
// as the Redis engine does.
type namedEngine struct{ bayeux.Engine }

func (namedEngine) NodeID() string { return "node-7" }

func (namedEngine) EngineStats() bayeux.EngineStats {
	return bayeux.EngineStats{RoundTrips: 40, Commands: 90, Errors: 2, Reconnects: 1, Nodes: 3}
}

// TestStatusCluster checks the cluster figures of /status.json: the node
// id and the engine's live node count.
func TestStatusCluster(t *testing.T) {
	e := newEnv(t, bayeux.Config{Engine: namedEngine{bayeux.NewMemoryEngine()}}, api.Config{})
	r := e.call(t, "GET", "/status.json", "")
	if got := r.body.Get("cluster").Raw; got != `{"node":"node-7","liveNodes":3,"roundTrips":40,"errors":2,"reconnects":1}` {
		t.Errorf("cluster = %s", got)
	}
}

// TestStatusIsReusedBriefly checks that /status.json answers within half
// a second of each other share one snapshot (so that many open pages cost
// the server one Stats a read), and that a later answer is fresh.
func TestStatusIsReusedBriefly(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{})
	first := e.call(t, "GET", "/status.json", "")
	if r := e.call(t, "POST", "/publish", `{"channel":"/a","data":1}`); r.status != 200 {
		t.Fatalf("publish: %d", r.status)
	}
	second := e.call(t, "GET", "/status.json", "")
	if first.body.Get("time").String() != second.body.Get("time").String() {
		// Half a second passed between the calls: nothing to check.
		t.Skip("the machine is too slow for this test")
	}
	if second.body.Get("published").Int() != 0 {
		t.Errorf("a reused answer changed: %s", second.body.Raw)
	}
	bayeuxtest.Eventually(t, 3*time.Second, func() bool {
		return e.call(t, "GET", "/status.json", "").body.Get("published").Int() == 1
	}, "a fresh status with the publish")
}
