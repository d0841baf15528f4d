package bayeux

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// deliveriesOf sends an immediate connect for id and returns the messages
// it carries on channel.
func (ts *testServer) deliveriesOf(t *testing.T, id, channel string) []gjson.Result {
	t.Helper()
	var got []gjson.Result
	for _, m := range ts.post(t, connectBody(id, `,"advice":{"timeout":0}`)).Array() {
		if m.Get("channel").String() == channel && m.Get("data").Exists() {
			got = append(got, m)
		}
	}
	return got
}

func TestPublisherExtIsNotForwarded(t *testing.T) {
	// stamp adds a field of its own to the ext of publishes on /stamped.
	stamp := funcExt{in: func(_ context.Context, m *Message) {
		if m.Channel == "/stamped" {
			m.SetExt("sender", `"ana"`)
		}
	}}
	tests := []struct {
		name       string
		forward    bool
		channel    string
		ext        string
		want       string // the delivered ext, "" for none
		serverSide bool   // published with Server.Publish and WithExt
	}{
		{"credential", false, "/a", `{"token":"s3cret","k":1}`, "", false},
		{"set by an extension", false, "/stamped", `{"token":"s3cret"}`, `{"sender":"ana"}`, false},
		{"changed by an extension", false, "/stamped", `{"sender":"mallory","k":1}`, `{"sender":"ana"}`, false},
		{"forwarded as faye does", true, "/a", `{"token":"s3cret","k":1}`, `{"token":"s3cret","k":1}`, false},
		{"forwarded, and set", true, "/stamped", `{"k":1}`, `{"k":1,"sender":"ana"}`, false},
		{"the server's own", false, "/a", `{"k":2}`, `{"k":2}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Config{ForwardExt: tt.forward, Extensions: []Extension{stamp}})
			id := ts.handshake(t)
			ts.subscribe(t, id, tt.channel)
			if tt.serverSide {
				if err := ts.Publish(context.Background(), tt.channel, 1, WithExt(tt.ext)); err != nil {
					t.Fatal(err)
				}
			} else if r := ts.post(t, `{"channel":"`+tt.channel+`","data":1,"ext":`+tt.ext+`}`); !r.Get("0.successful").Bool() {
				t.Fatalf("publish: %s", r.Raw)
			}
			got := ts.deliveriesOf(t, id, tt.channel)
			if len(got) != 1 || got[0].Get("ext").Raw != tt.want {
				t.Fatalf("deliveries %v, want ext %s", got, tt.want)
			}
		})
	}
}

func TestPublisherExtReachesServiceHandlers(t *testing.T) {
	ts := newTestServer(t, Config{})
	if err := ts.HandleService("/service/who", func(_ context.Context, m *Message) (any, error) {
		return m.ExtString("auth", "user"), nil
	}); err != nil {
		t.Fatal(err)
	}
	r := ts.post(t, `{"channel":"/service/who","data":{},"ext":{"auth":{"user":"ana"}}}`)
	if r.Get("1.data").String() != "ana" {
		t.Fatalf("service reply: %s", r.Raw)
	}
}

func TestFromServer(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	ext := funcExt{in: func(_ context.Context, m *Message) {
		if !channels.IsMeta(m.Channel) {
			mu.Lock()
			seen[m.Channel] = m.FromServer()
			mu.Unlock()
		}
	}}
	ts := newTestServer(t, Config{Extensions: []Extension{ext}})
	if err := ts.Publish(context.Background(), "/by/server", 1); err != nil {
		t.Fatal(err)
	}
	ts.publish(t, "/by/http", "1")
	// A client's message with neither request nor session (as a
	// transport that keeps no request would hand it over) is still a
	// client's.
	x := ts.newExchange(context.Background(), nil, nil)
	x.run([]Message{{Channel: "/by/nobody", Data: "1"}})
	x.finish()
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{"/by/server": true, "/by/http": false, "/by/nobody": false}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("FromServer: %v, want %v", seen, want)
	}
}

func TestSessionAttributes(t *testing.T) {
	s := &Session{}
	if _, ok := s.Get("k"); ok {
		t.Fatal("a new session has an attribute")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("k", i%2)
			for j := range 100 {
				s.Set(key, j)
				if _, ok := s.Get(key); !ok {
					t.Error("an attribute went missing")
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Set("k0", "v")
	if v, ok := s.Get("k0"); !ok || v != "v" {
		t.Fatalf("Get = %v, %v", v, ok)
	}
	s.Set("k0", nil)
	if _, ok := s.Get("k0"); ok {
		t.Fatal("Set(nil) kept the attribute")
	}
}

type ctxKey struct{}

// hookProbe records, per channel, what the hooks' context looked like.
type hookProbe struct {
	mu  sync.Mutex
	got map[string]string
}

func (p *hookProbe) record(ctx context.Context, what string) {
	d, ok := ctx.Deadline()
	left := time.Until(d)
	s := fmt.Sprintf("value=%v deadline=%v live=%v", ctx.Value(ctxKey{}), ok && left > 0 && left <= time.Minute, ctx.Err() == nil)
	p.mu.Lock()
	p.got[what] = s
	p.mu.Unlock()
}

func (p *hookProbe) ext() Extension {
	return funcExt{
		in:  func(ctx context.Context, m *Message) { p.record(ctx, "in "+m.Channel) },
		out: func(ctx context.Context, r *Reply) { p.record(ctx, "out "+r.Channel) },
	}
}

// TestHookContextIsTheSameOnEveryTransport: over long-polling and over a
// WebSocket, the hooks get the request's values, a deadline of
// HookTimeout, and a context that is still live after the HTTP handler
// (of the upgrade, for the WebSocket) returned.
func TestHookContextIsTheSameOnEveryTransport(t *testing.T) {
	p := &hookProbe{got: map[string]string{}}
	srv, err := New(Config{Extensions: []Extension{p.ext()}, HookTimeout: 30 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := bayeuxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, "req")))
	}), srv.Shutdown)
	url := hs.URL + "/bayeux"
	const want = "value=req deadline=true live=true"

	r := bayeuxtest.MustPost(t, url, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket"]}`)
	id := r.Get("0.clientId").String()
	bayeuxtest.MustPost(t, url, `{"channel":"/http","data":1}`)
	c := bayeuxtest.DialWebSocket(t, url, nil)
	if err := c.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/ws"}]`)); err != nil {
		t.Fatal(err)
	}
	readFrame(t, c, 5*time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, what := range []string{"in /meta/handshake", "out /meta/handshake", "in /http", "out /http", "in /meta/subscribe", "out /meta/subscribe"} {
		if p.got[what] != want {
			t.Errorf("%s: %q, want %q", what, p.got[what], want)
		}
	}
}

// A long-poll is held for its whole hold time, however short HookTimeout,
// and the Outgoing hook of its reply gets a live context.
func TestHookTimeoutDoesNotShortenHeldConnect(t *testing.T) {
	p := &hookProbe{got: map[string]string{}}
	ts := newTestServer(t, Config{Extensions: []Extension{p.ext()}, HookTimeout: 20 * time.Millisecond, Timeout: 300 * time.Millisecond})
	id := ts.handshake(t)
	start := time.Now()
	r := ts.post(t, connectBody(id, ""))
	if held := time.Since(start); held < 250*time.Millisecond || !r.Get("0.successful").Bool() {
		t.Fatalf("connect held %v: %s", held, r.Raw)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if got := p.got["out /meta/connect"]; !strings.HasSuffix(got, "live=true") {
		t.Fatalf("the held connect's reply had a context %q", got)
	}
}

func TestRejectChannel(t *testing.T) {
	reject := funcExt{in: func(_ context.Context, m *Message) {
		if m.Channel != channels.MetaSubscribe {
			return
		}
		for _, ch := range m.Subscriptions() {
			if channels.Reaches(ch, "/private/**") {
				m.RejectChannel(ch, "")
			}
			if ch == "/odd" {
				m.RejectChannel(ch, "403:/odd:Not today")
			}
		}
	}}
	ts := newTestServer(t, Config{Extensions: []Extension{reject}})
	id := ts.handshake(t)
	r := ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","id":"3","subscription":["/a","/private/x","/b","/**","/odd"]}`).Get("0")
	if r.Get("successful").Bool() || r.Get("error").String() != "403:/private/x:Forbidden channel" || r.Get("id").String() != "3" ||
		r.Get("subscription").Raw != `["/a","/private/x","/b","/**","/odd"]` {
		t.Fatalf("reply: %s", r.Raw)
	}
	rejected := r.Get("ext.rejected").Raw
	if rejected != `{"/private/x":"403:/private/x:Forbidden channel","/**":"403:/**:Forbidden channel","/odd":"403:/odd:Not today"}` {
		t.Fatalf("ext.rejected: %s", rejected)
	}
	if subs := ts.Session(id).Subscriptions(); fmt.Sprint(subs) != "[/a /b]" {
		t.Fatalf("subscriptions %v", subs)
	}
	// With nothing rejected, the reply is a plain success.
	r = ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":["/c"]}`).Get("0")
	if !r.Get("successful").Bool() || r.Get("ext").Exists() {
		t.Fatalf("reply: %s", r.Raw)
	}
}

func TestRejectedChannelsBesideReplays(t *testing.T) {
	reject := funcExt{in: func(_ context.Context, m *Message) {
		if m.Channel == channels.MetaSubscribe {
			m.RejectChannel("/h/no", ErrorForbidden("/h/no"))
		}
	}}
	ts := historyServer(t, Config{Extensions: []Extension{reject}})
	id := ts.handshake(t)
	r := ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":["/h/a","/h/no"],"ext":{"replay":{"/h/a":-2}}}`).Get("0")
	if r.Get("successful").Bool() || !r.Get("ext.replay./h/a").Exists() || r.Get(`ext.rejected./h/no`).String() != "403:/h/no:Forbidden channel" {
		t.Fatalf("reply: %s", r.Raw)
	}
}

func TestExtNestedKeys(t *testing.T) {
	m := &Message{Ext: `{"auth":{"token":"t","n":1,"a.b":"dot"},"token":"top","a.b":"literal"}`}
	tests := []struct {
		keys []string
		str  string
		raw  string
	}{
		{[]string{"token"}, "top", `"top"`},
		{[]string{"auth", "token"}, "t", `"t"`},
		{[]string{"auth", "n"}, "", `1`},
		{[]string{"auth", "a.b"}, "dot", `"dot"`},
		{[]string{"a.b"}, "literal", `"literal"`},
		{[]string{"auth", "missing"}, "", ``},
		{[]string{"token", "x"}, "", ``},
	}
	for _, tt := range tests {
		if got := m.ExtString(tt.keys[0], tt.keys[1:]...); got != tt.str {
			t.Errorf("ExtString%q = %q, want %q", tt.keys, got, tt.str)
		}
		raw, ok := m.ExtField(tt.keys[0], tt.keys[1:]...)
		if raw != tt.raw || ok != (tt.raw != "") {
			t.Errorf("ExtField%q = %q, %v", tt.keys, raw, ok)
		}
	}
}

func TestExportedErrors(t *testing.T) {
	tests := []struct{ got, want string }{
		{ErrorForbidden("/a"), "403:/a:Forbidden channel"},
		{ErrorInvalidChannel("/a/*/b"), "405:/a/*/b:Invalid channel"},
		{ErrorUnknownClient("abc"), "401:abc:Unknown client"},
		{ErrorParameterMissing("data"), "402:data:Missing required parameter"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
}
