package bayeux

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// ipRecorder is an extension that records the client address its hooks
// see, and the one of the session each handshake creates.
type ipRecorder struct {
	NopExtension
	mu      sync.Mutex
	hook    []string // ClientIP of each incoming message's hook context
	session []string // Session.ClientIP of each handshake
}

func (e *ipRecorder) Incoming(ctx context.Context, m *Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := ClientIP(ctx)
	if !ok {
		e.hook = append(e.hook, "none")
	} else {
		e.hook = append(e.hook, a.String())
	}
	if m.Channel == channels.MetaHandshake {
		e.session = append(e.session, m.Session.ClientIP().String())
	}
}

func (e *ipRecorder) last() (hook, session string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.hook) == 0 || len(e.session) == 0 {
		return "", ""
	}
	return e.hook[len(e.hook)-1], e.session[len(e.session)-1]
}

// TestClientIPSeenByExtensions handshakes over HTTP and WebSocket with and
// without X-Forwarded-For, from a peer (127.0.0.1) that is or is not a
// trusted proxy: only a trusted peer's header names the client.
func TestClientIPSeenByExtensions(t *testing.T) {
	const hs = `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket"]}]`
	tests := []struct {
		name    string
		trusted []netip.Prefix
		xff     string
		want    string
	}{
		{name: "no proxy", want: "127.0.0.1"},
		{name: "spoofed header from an untrusted peer", xff: "203.0.113.9", want: "127.0.0.1"},
		{name: "trusted proxy", trusted: mustPrefixes("127.0.0.0/8"), xff: "203.0.113.9", want: "203.0.113.9"},
		{name: "trusted proxy, forged left part", trusted: mustPrefixes("127.0.0.0/8"), xff: "198.51.100.7, 203.0.113.9", want: "203.0.113.9"},
		{name: "chain of trusted proxies", trusted: mustPrefixes("127.0.0.0/8", "10.0.0.0/8"), xff: "203.0.113.9, 10.1.1.1", want: "203.0.113.9"},
		{name: "trusted proxy without header", trusted: mustPrefixes("127.0.0.0/8"), want: "127.0.0.1"},
		{name: "IPv6 client", trusted: mustPrefixes("127.0.0.0/8"), xff: "2001:db8::1", want: "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &ipRecorder{}
			ts := newTestServer(t, Config{TrustedProxies: tt.trusted, Extensions: []Extension{rec}})
			var header []string
			if tt.xff != "" {
				header = []string{"X-Forwarded-For", tt.xff}
			}
			r := bayeuxtest.MustPost(t, ts.url, hs, header...)
			if !r.Get("0.successful").Bool() {
				t.Fatalf("handshake: %s", r.Raw)
			}
			if hook, sess := rec.last(); hook != tt.want || sess != tt.want {
				t.Errorf("over HTTP: hook sees %s, session has %s, want %s", hook, sess, tt.want)
			}
			if got := ts.Session(r.Get("0.clientId").String()).ClientIP().String(); got != tt.want {
				t.Errorf("Session.ClientIP = %s", got)
			}

			h := http.Header{}
			if tt.xff != "" {
				h.Set("X-Forwarded-For", tt.xff)
			}
			ws := bayeuxtest.DialWebSocket(t, ts.url, h)
			if err := ws.WriteMessage(websocket.TextMessage, []byte(hs)); err != nil {
				t.Fatal(err)
			}
			if f := readFrame(t, ws, 5*time.Second); !f.Get("0.successful").Bool() {
				t.Fatalf("handshake over WebSocket: %s", f.Raw)
			}
			if hook, sess := rec.last(); hook != tt.want || sess != tt.want {
				t.Errorf("over WebSocket: hook sees %s, session has %s, want %s", hook, sess, tt.want)
			}
		})
	}
}

// TestServerPublishHasNoClientIP checks that the server's own publishes
// carry no client address.
func TestServerPublishHasNoClientIP(t *testing.T) {
	rec := &ipRecorder{}
	ts := newTestServer(t, Config{Extensions: []Extension{rec}})
	if err := ts.Publish(context.Background(), "/a", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.hook) != 1 || rec.hook[0] != "none" {
		t.Fatalf("hooks saw %q", rec.hook)
	}
}

// TestHandshakeRateCountsTheForwardedClient checks that the per-address
// limits count a trusted proxy's clients apart, and that a spoofed header
// from an untrusted peer does not escape them.
func TestHandshakeRateCountsTheForwardedClient(t *testing.T) {
	const hs = `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		second  bool // whether the second client's handshake succeeds
	}{
		{"trusted proxy: two clients", mustPrefixes("127.0.0.1/32"), true},
		{"untrusted peer: one address", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Config{TrustedProxies: tt.trusted, HandshakeRate: 0.001, HandshakeBurst: 1})
			first := bayeuxtest.MustPost(t, ts.url, hs, "X-Forwarded-For", "203.0.113.1")
			second := bayeuxtest.MustPost(t, ts.url, hs, "X-Forwarded-For", "203.0.113.2")
			if !first.Get("0.successful").Bool() || second.Get("0.successful").Bool() != tt.second {
				t.Fatalf("first %s, second %s", first.Raw, second.Raw)
			}
		})
	}
}

// TestClientIPAcrossNodes sends a subscribe for a session of node 0
// through node 1, behind a trusted proxy: the owner's extensions see the
// client the proxy named, on long-polling and on a WebSocket.
func TestClientIPAcrossNodes(t *testing.T) {
	rec := &ipRecorder{}
	nodes := newTestCluster(t, 2, Config{TrustedProxies: mustPrefixes("127.0.0.0/8"), Extensions: []Extension{rec}})
	id := nodes[0].handshake(t)
	lastHook := func() string {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.hook[len(rec.hook)-1]
	}
	sub := `[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/x"}]`
	if r := bayeuxtest.MustPost(t, nodes[1].url, sub, "X-Forwarded-For", "203.0.113.77"); !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe through the other node: %s", r.Raw)
	}
	if got := lastHook(); got != "203.0.113.77" {
		t.Fatalf("the owner's hook saw %s over long-polling", got)
	}
	ws := bayeuxtest.DialWebSocket(t, nodes[1].url, http.Header{"X-Forwarded-For": {"203.0.113.78"}})
	if err := ws.WriteMessage(websocket.TextMessage, []byte(strings.Replace(sub, "/x", "/y", 1))); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, ws, 5*time.Second); !f.Get("0.successful").Bool() {
		t.Fatalf("subscribe over a forwarded WebSocket: %s", f.Raw)
	}
	if got := lastHook(); got != "203.0.113.78" {
		t.Fatalf("the owner's hook saw %s over a WebSocket", got)
	}
}
