package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
)

// forbidExt rejects publishes on /forbidden/**, as an authorizing
// extension would.
type forbidExt struct{ bayeux.NopExtension }

func (forbidExt) Incoming(_ context.Context, m *bayeux.Message) {
	if strings.HasPrefix(m.Channel, "/forbidden") {
		m.Error = "403::Forbidden"
	}
}

// identityExt gives sessions the identity named by the handshake's
// ext.user.
type identityExt struct{ bayeux.NopExtension }

func (identityExt) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel == "/meta/handshake" && m.ExtString("user") != "" {
		m.Session.SetIdentity(&bayeux.Identity{User: m.ExtString("user"), Roles: []string{"member"}})
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, bayeux.Config{Extensions: []bayeux.Extension{forbidExt{}, identityExt{}}}, api.Config{MaxBodyBytes: 200})
	r := e.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"user":"ana"}}`)
	a := r.Get("0.clientId").String()
	e.subscribe(t, a, "/chat/a", "/news")
	b := e.handshake(t)
	e.subscribe(t, b, "/chat/*")
	e.handshake(t) // c subscribes to nothing

	big := `{"channel":"/chat/a","data":"` + strings.Repeat("x", 300) + `"}`
	tests := []struct {
		name, method, target, body string
		status                     int
		code                       string // error code, for errors
		json                       string // expected body, for successes
		allow                      string // expected Allow header
	}{
		{name: "health", method: "GET", target: "/health", status: 200, json: `{"ok":true}`},
		{name: "health head", method: "HEAD", target: "/health", status: 200},
		{name: "health post", method: "POST", target: "/health", status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "health query", method: "GET", target: "/health?x=1", status: 400, code: "bad_request"},
		{name: "unknown route", method: "GET", target: "/nope", status: 404, code: "not_found"},
		{name: "root", method: "GET", target: "/", status: 404, code: "not_found"},

		{name: "publish", method: "POST", target: "/publish", body: `{"channel":"/chat/a","data":{"t":1}}`, status: 200, json: `{"ok":true}`},
		{name: "publish ext exclude", method: "POST", target: "/publish", body: `{"channel":"/chat/a","data":1,"ext":{"k":"v"},"exclude":"` + a + `"}`, status: 200, json: `{"ok":true}`},
		{name: "publish null data", method: "POST", target: "/publish", body: `{"channel":"/chat/a","data":null}`, status: 200, json: `{"ok":true}`},
		{name: "publish get", method: "GET", target: "/publish", status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "publish empty", method: "POST", target: "/publish", body: " \n", status: 400, code: "bad_request"},
		{name: "publish bad json", method: "POST", target: "/publish", body: `{"channel":`, status: 400, code: "bad_request"},
		{name: "publish trailing", method: "POST", target: "/publish", body: `{"channel":"/a","data":1} {}`, status: 400, code: "bad_request"},
		{name: "publish unknown field", method: "POST", target: "/publish", body: `{"channel":"/a","data":1,"excludes":"x"}`, status: 400, code: "bad_request"},
		{name: "publish no channel", method: "POST", target: "/publish", body: `{"data":1}`, status: 400, code: "bad_request"},
		{name: "publish no data", method: "POST", target: "/publish", body: `{"channel":"/a"}`, status: 400, code: "bad_request"},
		{name: "publish ext not object", method: "POST", target: "/publish", body: `{"channel":"/a","data":1,"ext":[1]}`, status: 400, code: "bad_request"},
		{name: "publish channel type", method: "POST", target: "/publish", body: `{"channel":1,"data":1}`, status: 400, code: "bad_request"},
		{name: "publish not an object", method: "POST", target: "/publish", body: `"x"`, status: 400, code: "bad_request"},
		{name: "publish meta", method: "POST", target: "/publish", body: `{"channel":"/meta/x","data":1}`, status: 422, code: "rejected"},
		{name: "publish wildcard", method: "POST", target: "/publish", body: `{"channel":"/chat/*","data":1}`, status: 422, code: "rejected"},
		{name: "publish invalid channel", method: "POST", target: "/publish", body: `{"channel":"chat","data":1}`, status: 422, code: "rejected"},
		{name: "publish refused by extension", method: "POST", target: "/publish", body: `{"channel":"/forbidden/x","data":1}`, status: 422, code: "rejected"},
		{name: "publish too large", method: "POST", target: "/publish", body: big, status: 413, code: "too_large"},

		{name: "deliver unknown client", method: "POST", target: "/clients/nobody/deliver", body: `{"channel":"/x","data":1}`, status: 404, code: "not_found"},
		{name: "deliver meta", method: "POST", target: "/clients/" + a + "/deliver", body: `{"channel":"/meta/connect","data":1}`, status: 422, code: "rejected"},
		{name: "deliver invalid channel", method: "POST", target: "/clients/" + a + "/deliver", body: `{"channel":"/a/*","data":1}`, status: 422, code: "rejected"},
		{name: "deliver no data", method: "POST", target: "/clients/" + a + "/deliver", body: `{"channel":"/x"}`, status: 400, code: "bad_request"},
		{name: "deliver no channel", method: "POST", target: "/clients/" + a + "/deliver", body: `{"data":1}`, status: 400, code: "bad_request"},
		{name: "deliver unknown field", method: "POST", target: "/clients/" + a + "/deliver", body: `{"channel":"/x","data":1,"ext":{}}`, status: 400, code: "bad_request"},
		{name: "deliver get", method: "GET", target: "/clients/" + a + "/deliver", status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "disconnect unknown", method: "DELETE", target: "/clients/nobody", status: 404, code: "not_found"},
		{name: "client put", method: "PUT", target: "/clients/" + a, status: 405, code: "method_not_allowed", allow: "DELETE, GET, HEAD"},

		{name: "count", method: "GET", target: "/clients", status: 200, json: `{"count":3}`},
		{name: "recipients", method: "GET", target: "/clients?channel=/chat/a", status: 200,
			json: `{"channel":"/chat/a","count":2,"clients":` + sortedIDs(a, b) + `}`},
		{name: "recipients none", method: "GET", target: "/clients?channel=/empty", status: 200, json: `{"channel":"/empty","count":0,"clients":[]}`},
		{name: "recipients of a pattern", method: "GET", target: "/clients?channel=/chat/*", status: 400, code: "bad_request"},
		{name: "recipients bad name", method: "GET", target: "/clients?channel=chat", status: 400, code: "bad_request"},
		{name: "clients unknown param", method: "GET", target: "/clients?chanel=/chat/a", status: 400, code: "bad_request"},
		{name: "client", method: "GET", target: "/clients/" + a, status: 200,
			json: `{"clientId":"` + a + `","subscriptions":["/chat/a","/news"],"user":"ana","roles":["member"]}`},
		{name: "client anonymous", method: "GET", target: "/clients/" + b, status: 200, json: `{"clientId":"` + b + `","subscriptions":["/chat/*"]}`},
		{name: "client unknown", method: "GET", target: "/clients/nobody", status: 404, code: "not_found"},

		{name: "channels", method: "GET", target: "/channels", status: 200,
			json: `{"channels":[{"channel":"/chat/*","subscribers":1},{"channel":"/chat/a","subscribers":1},{"channel":"/news","subscribers":1}]}`},
		{name: "channels head", method: "HEAD", target: "/channels", status: 200},
		{name: "channels prefix", method: "GET", target: "/channels?prefix=/chat", status: 200,
			json: `{"channels":[{"channel":"/chat/*","subscribers":1},{"channel":"/chat/a","subscribers":1}]}`},
		{name: "channels prefix slash", method: "GET", target: "/channels?prefix=/chat/", status: 200,
			json: `{"channels":[{"channel":"/chat/*","subscribers":1},{"channel":"/chat/a","subscribers":1}]}`},
		{name: "channels prefix is a segment", method: "GET", target: "/channels?prefix=/ch", status: 200, json: `{"channels":[]}`},
		{name: "channels prefix root", method: "GET", target: "/channels?prefix=/", status: 200,
			json: `{"channels":[{"channel":"/chat/*","subscribers":1},{"channel":"/chat/a","subscribers":1},{"channel":"/news","subscribers":1}]}`},
		{name: "channels bad prefix", method: "GET", target: "/channels?prefix=chat", status: 400, code: "bad_request"},
		{name: "channels post", method: "POST", target: "/channels", status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(t, tt.method, tt.target, tt.body)
			switch {
			case tt.code != "":
				wantError(t, tt.name, r, tt.status, tt.code)
			case r.status != tt.status:
				t.Errorf("status %d, want %d: %s", r.status, tt.status, r.body.Raw)
			case tt.json != "" && r.body.Raw != tt.json+"\n":
				t.Errorf("body %s, want %s", r.body.Raw, tt.json)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
}

func sortedIDs(ids ...string) string {
	if ids[0] > ids[1] {
		ids[0], ids[1] = ids[1], ids[0]
	}
	return `["` + strings.Join(ids, `","`) + `"]`
}

func TestRejectedMessageIsTheBayeuxError(t *testing.T) {
	e := newEnv(t, bayeux.Config{Extensions: []bayeux.Extension{forbidExt{}}}, api.Config{})
	tests := []struct{ channel, message string }{
		{"/forbidden/x", "403::Forbidden"},
		{"/meta/x", "403:/meta/x:Forbidden channel"},
	}
	for _, tt := range tests {
		r := e.call(t, "POST", "/publish", `{"channel":"`+tt.channel+`","data":1}`)
		if got := r.body.Get("error.message").String(); r.status != 422 || got != tt.message {
			t.Errorf("%s: %d %s, want message %q", tt.channel, r.status, r.body.Raw, tt.message)
		}
	}
}

func TestPublishExclude(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{})
	sender, other := e.handshake(t), e.handshake(t)
	e.subscribe(t, sender, "/chat")
	e.subscribe(t, other, "/chat")
	e.drain(t, sender)
	e.drain(t, other)
	r := e.call(t, "POST", "/publish", `{"channel":"/chat","data":{"text":"hi"},"ext":{"from":"bot"},"exclude":"`+sender+`"}`)
	if r.status != 200 {
		t.Fatalf("publish: %d %s", r.status, r.body.Raw)
	}
	if got := e.drain(t, sender); len(got) != 0 {
		t.Errorf("the excluded client received %v", got)
	}
	got := e.drain(t, other)
	if len(got) != 1 || got[0].Get("channel").String() != "/chat" || got[0].Get("data.text").String() != "hi" ||
		got[0].Get("ext.from").String() != "bot" {
		t.Errorf("the other client received %v", got)
	}
	// Without exclude, both receive it.
	e.call(t, "POST", "/publish", `{"channel":"/chat","data":2}`)
	if s, o := e.drain(t, sender), e.drain(t, other); len(s) != 1 || len(o) != 1 {
		t.Errorf("without exclude: sender got %v, other got %v", s, o)
	}
}

func TestPublishAudience(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{})
	ana, staff, anon := e.handshake(t), e.handshake(t), e.handshake(t)
	e.srv.Session(ana).SetIdentity(&bayeux.Identity{User: "ana"})
	e.srv.Session(staff).SetIdentity(&bayeux.Identity{User: "sam", Roles: []string{"staff"}})
	for _, id := range []string{ana, staff, anon} {
		e.subscribe(t, id, "/alerts")
		e.drain(t, id)
	}
	tests := []struct {
		to   string
		want map[string]int // messages per client
	}{
		{`{"users":["ana"]}`, map[string]int{ana: 1}},
		{`{"roles":["staff"]}`, map[string]int{staff: 1}},
		{`{"clientIds":["` + anon + `"],"users":["ana"]}`, map[string]int{ana: 1, anon: 1}},
		{`{"users":[""]}`, map[string]int{}},
		{`{}`, map[string]int{}},
	}
	for _, tt := range tests {
		r := e.call(t, "POST", "/publish", `{"channel":"/alerts","data":1,"to":`+tt.to+`}`)
		if r.status != 200 {
			t.Fatalf("publish to %s: %d %s", tt.to, r.status, r.body.Raw)
		}
		for _, id := range []string{ana, staff, anon} {
			if got := len(e.drain(t, id)); got != tt.want[id] {
				t.Errorf("to %s: %s received %d messages, want %d", tt.to, id, got, tt.want[id])
			}
		}
	}
	r := e.call(t, "POST", "/publish", `{"channel":"/alerts","data":1,"to":{"user":"ana"}}`)
	wantError(t, "an unknown field in to", r, 400, "bad_request")
}

func TestBatchPublish(t *testing.T) {
	e := newEnv(t, bayeux.Config{Extensions: []bayeux.Extension{forbidExt{}}}, api.Config{})
	id := e.handshake(t)
	e.subscribe(t, id, "/**")
	e.drain(t, id)
	tests := []struct {
		name, body, results string
		channels            []string // delivered, in order
	}{
		{
			name: "mixed",
			body: `[{"channel":"/a","data":1},{"channel":"/forbidden/x","data":2},{"channel":"/b"},` +
				`{"channel":"/c","data":3,"bogus":1},"text",{"channel":"/d","data":4}]`,
			results: `[{"ok":true},{"ok":false,"error":{"code":"rejected","message":"403::Forbidden"}},` +
				`{"ok":false,"error":{"code":"bad_request","message":"\"data\" is required"}},` +
				`{"ok":false,"error":{"code":"bad_request","message":"invalid JSON body: unknown field \"bogus\""}},` +
				`{"ok":false,"error":{"code":"bad_request","message":"invalid JSON body: expected an object, got a string"}},` +
				`{"ok":true}]`,
			channels: []string{"/a", "/d"},
		},
		{name: "in order", body: ` [{"channel":"/x/1","data":1},{"channel":"/x/2","data":2},{"channel":"/x/3","data":3}]`,
			results: `[{"ok":true},{"ok":true},{"ok":true}]`, channels: []string{"/x/1", "/x/2", "/x/3"}},
		{name: "empty", body: `[]`, results: `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(t, "POST", "/publish", tt.body)
			if r.status != 200 || r.body.Get("results").Raw != tt.results {
				t.Errorf("answer %d %s\nwant results %s", r.status, r.body.Raw, tt.results)
			}
			var got []string
			for _, m := range e.drain(t, id) {
				got = append(got, m.Get("channel").String())
			}
			if strings.Join(got, " ") != strings.Join(tt.channels, " ") {
				t.Errorf("delivered %q, want %q", got, tt.channels)
			}
		})
	}
	r := e.call(t, "POST", "/publish", `[{"channel":"/a","data":1},`)
	wantError(t, "malformed batch", r, 400, "bad_request")
}

func TestDeliver(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{})
	to, other := e.handshake(t), e.handshake(t)
	e.subscribe(t, other, "/**")
	e.drain(t, to)
	e.drain(t, other)
	r := e.call(t, "POST", "/clients/"+to+"/deliver", `{"channel":"/notice","data":{"n":1}}`)
	if r.status != 200 || r.body.Raw != `{"ok":true}`+"\n" {
		t.Fatalf("deliver: %d %s", r.status, r.body.Raw)
	}
	if got := e.drain(t, to); len(got) != 1 || got[0].Get("channel").String() != "/notice" || got[0].Get("data.n").Int() != 1 {
		t.Errorf("recipient got %v", got)
	}
	if got := e.drain(t, other); len(got) != 0 {
		t.Errorf("a subscriber of /** got %v", got)
	}
}

func TestDisconnect(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{})
	id, keep := e.handshake(t), e.handshake(t)
	e.subscribe(t, id, "/a")
	e.subscribe(t, keep, "/a")
	r := e.call(t, "DELETE", "/clients/"+id, "")
	if r.status != 200 || r.body.Raw != `{"ok":true}`+"\n" {
		t.Fatalf("disconnect: %d %s", r.status, r.body.Raw)
	}
	if e.srv.Session(id) != nil || e.srv.Session(keep) == nil || e.srv.Subscribers("/a") != 1 {
		t.Errorf("after disconnect: session %v, other %v, subscribers of /a %d", e.srv.Session(id), e.srv.Session(keep), e.srv.Subscribers("/a"))
	}
	wantError(t, "again", e.call(t, "DELETE", "/clients/"+id, ""), http.StatusNotFound, "not_found")
	wantError(t, "lookup", e.call(t, "GET", "/clients/"+id, ""), http.StatusNotFound, "not_found")
	c := e.post(t, `{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling","advice":{"timeout":0}}`)
	if c.Get("0.successful").Bool() || c.Get("0.advice.reconnect").String() != "handshake" {
		t.Errorf("the disconnected client's connect: %s", c.Raw)
	}
}

func TestNilServerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(nil) did not panic")
		}
	}()
	api.New(nil, api.Config{})
}
