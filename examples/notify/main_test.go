package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// testServer serves the example with the demo tokens and a quota of 3
// sends per session; it returns the server and its base URL.
func testServer(t *testing.T) (*server, string) {
	t.Helper()
	o, err := parseOptions([]string{"-max-sends", "3", "-timeout", "2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(context.Background(), o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return srv, bayeuxtest.Serve(t, srv.handler, srv.Shutdown).URL
}

// client is a long-polling Bayeux client of the tests.
type client struct {
	t   *testing.T
	url string
	id  string
}

// handshake handshakes with ext (raw JSON, "" for none) and returns the
// reply.
func handshake(t *testing.T, base, ext string) (*client, gjson.Result) {
	t.Helper()
	msg := `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]`
	if ext != "" {
		msg += `,"ext":` + ext
	}
	r := bayeuxtest.MustPost(t, base+"/bayeux", msg+`}`).Get("0")
	return &client{t: t, url: base + "/bayeux", id: r.Get("clientId").String()}, r
}

// as handshakes as the user of token and returns the client.
func as(t *testing.T, base, token string) *client {
	t.Helper()
	c, r := handshake(t, base, `{"auth":{"token":"`+token+`"}}`)
	if !r.Get("successful").Bool() {
		t.Fatalf("handshake with %s: %s", token, r.Raw)
	}
	return c
}

// send posts one message of the client (its clientId is added) and returns
// the replies.
func (c *client) send(msg string) gjson.Result {
	c.t.Helper()
	return bayeuxtest.MustPost(c.t, c.url, `{"clientId":"`+c.id+`",`+msg[1:])
}

// subscribe subscribes to the raw JSON subscription and returns the reply.
func (c *client) subscribe(sub string) gjson.Result {
	c.t.Helper()
	return c.send(`{"channel":"/meta/subscribe","subscription":` + sub + `}`).Get("0")
}

// connect sends an immediate /meta/connect and returns the replies.
func (c *client) connect() gjson.Result {
	c.t.Helper()
	return c.send(`{"channel":"/meta/connect","connectionType":"long-polling","advice":{"timeout":0}}`)
}

func TestHandshake(t *testing.T) {
	_, base := testServer(t)
	tests := []struct {
		name, ext, err, user string
	}{
		{"no ext", "", errTokenRequired, ""},
		{"token at the top of ext", `{"token":"ana-token"}`, errTokenRequired, ""},
		{"token not a string", `{"auth":{"token":7}}`, errTokenRequired, ""},
		{"wrong token", `{"auth":{"token":"nope"}}`, errInvalidToken, ""},
		{"ana", `{"auth":{"token":"ana-token"}}`, "", "ana"},
		{"bob, with acknowledgements", `{"auth":{"token":"bob-token"},"ack":true}`, "", "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := handshake(t, base, tt.ext)
			if tt.err != "" {
				if r.Get("successful").Bool() || r.Get("error").String() != tt.err || r.Get("advice.reconnect").String() != "none" {
					t.Fatalf("want %q with advice reconnect none: %s", tt.err, r.Raw)
				}
				return
			}
			if !r.Get("successful").Bool() || r.Get("ext.user").String() != tt.user {
				t.Fatalf("want a success with ext.user %q: %s", tt.user, r.Raw)
			}
			if strings.Contains(tt.ext, "ack") && !r.Get("ext.ack").Bool() {
				t.Fatalf("the user was added to ext, and ext.ack lost: %s", r.Raw)
			}
		})
	}
}

func TestSubscribeRules(t *testing.T) {
	srv, base := testServer(t)
	ana := as(t, base, "ana-token")
	tests := []struct {
		sub      string // raw JSON
		rejected []string
	}{
		{`"/users/ana/inbox"`, nil},
		{`"/users/ana/**"`, nil},
		{`"/notifications"`, nil},
		{`"/chat/*"`, nil},
		{`"/users/bob/inbox"`, []string{"/users/bob/inbox"}},
		{`"/users/*"`, []string{"/users/*"}},
		{`"/users/**"`, []string{"/users/**"}},
		{`["/chat/x","/**","/users/ana/*"]`, []string{"/**"}},
		{`["/users/bob/**","/users/ana/x","/*"]`, []string{"/users/bob/**"}},
	}
	for _, tt := range tests {
		r := ana.subscribe(tt.sub)
		if len(tt.rejected) == 0 {
			if !r.Get("successful").Bool() {
				t.Errorf("subscribe %s: %s", tt.sub, r.Raw)
			}
			continue
		}
		if r.Get("successful").Bool() || len(r.Get("ext.rejected").Map()) != len(tt.rejected) {
			t.Errorf("subscribe %s: want %v rejected: %s", tt.sub, tt.rejected, r.Raw)
		}
		for _, ch := range tt.rejected {
			if r.Get("ext.rejected."+gjson.Escape(ch)).String() != bayeux.ErrorForbidden(ch) {
				t.Errorf("subscribe %s: %s not rejected: %s", tt.sub, ch, r.Raw)
			}
		}
	}
	subs := srv.Session(ana.id).Subscriptions()
	slices.Sort(subs)
	want := []string{"/*", "/chat/*", "/chat/x", "/notifications", "/users/ana/*", "/users/ana/**", "/users/ana/inbox", "/users/ana/x"}
	if !slices.Equal(subs, want) {
		t.Fatalf("ana's subscriptions: %v, want %v", subs, want)
	}
}

func TestPublishRules(t *testing.T) {
	_, base := testServer(t)
	ana := as(t, base, "ana-token")
	tests := []struct {
		channel  string
		clientID bool
		err      string
	}{
		{"/chat/room", true, ""},
		{"/users/ana/inbox", true, ""},
		{"/users/bob/inbox", true, bayeux.ErrorForbidden("/users/bob/inbox")},
		{"/notifications", true, bayeux.ErrorForbidden("/notifications")},
		{"/chat/room", false, errTokenRequired},
	}
	for _, tt := range tests {
		msg := `{"channel":"` + tt.channel + `","data":"x"}`
		var r gjson.Result
		if tt.clientID {
			r = ana.send(msg).Get("0")
		} else {
			r = bayeuxtest.MustPost(t, base+"/bayeux", msg).Get("0")
		}
		if r.Get("successful").Bool() != (tt.err == "") || r.Get("error").String() != tt.err {
			t.Errorf("publish on %s (clientId %v): want error %q: %s", tt.channel, tt.clientID, tt.err, r.Raw)
		}
	}
}

// received returns the data of the messages on channel among replies.
func received(replies gjson.Result, channel string) []string {
	var out []string
	for _, r := range replies.Array() {
		if r.Get("channel").String() == channel && r.Get("data").Exists() {
			out = append(out, r.Get("data").Raw)
		}
	}
	return out
}

func TestServiceNotifiesOneUser(t *testing.T) {
	_, base := testServer(t)
	ana, bob1, bob2, cy := as(t, base, "ana-token"), as(t, base, "bob-token"), as(t, base, "bob-token"), as(t, base, "cy-token")
	for _, c := range []*client{bob1, bob2, cy} {
		if r := c.subscribe(`"/notifications"`); !r.Get("successful").Bool() {
			t.Fatal(r.Raw)
		}
	}
	r := ana.send(`{"channel":"/service/notify","data":{"to":"bob","text":"hi"},"id":"5"}`)
	if len(r.Array()) != 2 || !r.Get("0.successful").Bool() || r.Get("1.id").String() != "5" ||
		!r.Get("1.successful").Bool() || r.Get("1.data").Raw != `{"online":2,"to":"bob"}` {
		t.Fatalf("the service's answer: %s", r.Raw)
	}
	for _, bob := range []*client{bob1, bob2} {
		got := received(bob.connect(), notifications)
		if len(got) != 1 || got[0] != `{"from":"ana","text":"hi"}` {
			t.Fatalf("bob got %v", got)
		}
	}
	cy.send(`{"channel":"/chat/fence","data":"fence"}`) // nothing more is on its way to cy
	if got := received(cy.connect(), notifications); len(got) != 0 {
		t.Fatalf("cy got bob's notification: %v", got)
	}
}

func TestServiceRefusals(t *testing.T) {
	_, base := testServer(t)
	ana := as(t, base, "ana-token")
	tests := []struct{ data, err string }{
		{`{"to":"bob"}`, ""},
		{`"bob"`, `"expected {\"to\": user, \"text\": text}"`},
		{`{"to":"/users/x","text":"hi"}`, `"expected {\"to\": user, \"text\": text}"`},
		{`{"to":"bob","text":"` + strings.Repeat("x", maxText+1) + `"}`, `"expected {\"to\": user, \"text\": text}"`},
		{`{"to":"bob","text":"2"}`, ""},
		{`{"to":"bob","text":"3"}`, ""},
		{`{"to":"bob","text":"4"}`, `"too many notifications from this session"`},
	}
	for _, tt := range tests {
		r := ana.send(`{"channel":"/service/notify","data":` + tt.data + `}`).Get("1")
		if r.Get("successful").Bool() != (tt.err == "") || (tt.err != "" && r.Get("data").Raw != tt.err) {
			t.Errorf("data %.40s: want %s: %s", tt.data, tt.err, r.Raw)
		}
	}
}

func TestNotifyEndpoint(t *testing.T) {
	_, base := testServer(t)
	bob := as(t, base, "bob-token")
	bob.subscribe(`"/notifications"`)
	tests := []struct {
		method, auth, body string
		status             int
		answer             string
	}{
		{http.MethodPost, "Bearer " + demoKey, `{"user":"bob","text":"deploy done"}`, http.StatusOK, `{"online":1}`},
		{http.MethodPost, "Bearer " + demoKey, `{"user":"nobody","text":"x"}`, http.StatusOK, `{"online":0}`},
		{http.MethodGet, "Bearer " + demoKey, "", http.StatusMethodNotAllowed, ""},
		{http.MethodPost, "", `{"user":"bob","text":"x"}`, http.StatusUnauthorized, ""},
		{http.MethodPost, "Bearer wrong", `{"user":"bob","text":"x"}`, http.StatusUnauthorized, ""},
		{http.MethodPost, "Bearer " + demoKey, `{"user":"bob"`, http.StatusBadRequest, ""},
		{http.MethodPost, "Bearer " + demoKey, `{"user":"a/b","text":"x"}`, http.StatusBadRequest, ""},
		{http.MethodPost, "Bearer " + demoKey, strings.Repeat(" ", 9*maxText), http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, base+"/notify", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status || (tt.answer != "" && strings.TrimSpace(string(b)) != tt.answer) {
			t.Errorf("%s %s %.30s: got %d %s", tt.method, tt.auth, tt.body, res.StatusCode, b)
		}
	}
	if got := received(bob.connect(), notifications); len(got) != 1 || got[0] != `{"from":"server","text":"deploy done"}` {
		t.Fatalf("bob got %v", got)
	}
}

func TestDeliveryKeepsUsersChannels(t *testing.T) {
	srv, base := testServer(t)
	ana, bob := as(t, base, "ana-token"), as(t, base, "bob-token")
	auth, err := newTokenAuth(map[string]string{"t": "ana"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		channel  string
		filtered bool
		ana, bob bool
	}{
		{"/chat/x", false, true, true},
		{"/users/ana/inbox", true, true, false},
		{"/users/ana", true, true, false},
		{"/users/bob/a/b", true, false, true},
	}
	for _, tt := range tests {
		m := &bayeux.Message{Channel: tt.channel, Data: "1"}
		f := auth.Delivery(context.Background(), m)
		if (f != nil) != tt.filtered {
			t.Fatalf("%s: filtered %v", tt.channel, f != nil)
		}
		if f == nil {
			continue
		}
		if got := f(srv.Session(ana.id), m); got != tt.ana {
			t.Errorf("%s to ana: %v", tt.channel, got)
		}
		if got := f(srv.Session(bob.id), m); got != tt.bob {
			t.Errorf("%s to bob: %v", tt.channel, got)
		}
		if f(nil, m) {
			t.Errorf("%s to no session: true", tt.channel)
		}
	}
	// End to end: the server's own publish on ana's channel reaches ana.
	ana.subscribe(`"/users/ana/inbox"`)
	if err := srv.Publish(context.Background(), "/users/ana/inbox", "for ana"); err != nil {
		t.Fatal(err)
	}
	if got := received(ana.connect(), "/users/ana/inbox"); len(got) != 1 {
		t.Fatalf("ana got %v", got)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"-tokens", "a=x,b=y"}, true},
		{[]string{"-tokens", "a"}, false},
		{[]string{"-api-key", ""}, false},
		{[]string{"extra"}, false},
	}
	for _, tt := range tests {
		if _, err := parseOptions(tt.args, io.Discard); (err == nil) != tt.ok {
			t.Errorf("%v: %v", tt.args, err)
		}
	}
	for _, tokens := range []map[string]string{{"": "ana"}, {"t": "a/b"}, {"t": ""}} {
		if _, err := newTokenAuth(tokens); err == nil {
			t.Errorf("newTokenAuth(%v) accepted them", tokens)
		}
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &bayeuxtest.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, out, io.Discard) }()
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(out.String(), "serving Bayeux at http://127.0.0.1:") }, "the serving line")
	url := strings.TrimSpace(strings.TrimPrefix(out.String(), "serving Bayeux at "))
	c, r := handshake(t, strings.TrimSuffix(url, "/bayeux"), `{"auth":{"token":"cy-token"}}`)
	if !r.Get("successful").Bool() || c.id == "" {
		t.Fatalf("handshake: %s", r.Raw)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
