package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
)

// historyConfig keeps the last 3 publications of the channels under /h.
func historyConfig() bayeux.Config {
	return bayeux.Config{History: []bayeux.HistoryRule{{Pattern: "/h/**", Size: 3}}}
}

// publish publishes the JSON data on ch through the server, with the JSON
// object ext unless it is empty.
func (e *env) publish(t *testing.T, ch, data, ext string) {
	t.Helper()
	var opts []bayeux.PublishOption
	if ext != "" {
		opts = append(opts, bayeux.WithExt(ext))
	}
	if err := e.srv.Publish(context.Background(), ch, json.RawMessage(data), opts...); err != nil {
		t.Fatalf("publish on %s: %v", ch, err)
	}
}

// history returns the answer of GET /history for query, failing unless it
// is a 200.
func (e *env) history(t *testing.T, query string) response {
	t.Helper()
	r := e.call(t, "GET", "/history?"+query, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /history?%s: %d %s", query, r.status, r.body.Raw)
	}
	return r
}

func TestHistory(t *testing.T) {
	e := newEnv(t, historyConfig(), api.Config{})
	// Offsets 1 to 5 on /h/a; 3, 4 and 5 are retained.
	for i := 1; i <= 5; i++ {
		ext := ""
		switch i {
		case 3:
			ext = `{"from":"bot","replayId":99}` // the server's replayId wins
		case 4:
			ext = `{"trace":{"id":"x<y>"}}`
		}
		e.publish(t, "/h/a", fmt.Sprintf(`{"n":%d}`, i), ext)
	}
	epoch := e.history(t, "channel=/h/a").body.Get("epoch").String()
	if epoch == "" {
		t.Fatal("no epoch after 5 publications")
	}
	items := map[int]string{
		3: `{"replayId":3,"data":{"n":3},"ext":{"from":"bot"}}`,
		4: `{"replayId":4,"data":{"n":4},"ext":{"trace":{"id":"x<y>"}}}`,
		5: `{"replayId":5,"data":{"n":5}}`,
	}
	answer := func(offsets ...int) string {
		parts := []string{}
		for _, o := range offsets {
			parts = append(parts, items[o])
		}
		return `{"channel":"/h/a","epoch":"` + epoch + `","replayId":5,"publications":[` + strings.Join(parts, ",") + `]}`
	}
	tests := []struct {
		name, query, json string
	}{
		{"all retained", "channel=/h/a", answer(3, 4, 5)},
		{"since 0", "channel=/h/a&since=0", answer(3, 4, 5)},
		{"since a lost offset", "channel=/h/a&since=1", answer(3, 4, 5)},
		{"since the oldest retained", "channel=/h/a&since=3", answer(4, 5)},
		{"since the latest", "channel=/h/a&since=5", answer()},
		{"since ahead", "channel=/h/a&since=9", answer()},
		{"limit", "channel=/h/a&limit=2", answer(3, 4)},
		{"since and limit", "channel=/h/a&since=3&limit=1", answer(4)},
		{"limit above retained", "channel=/h/a&limit=1000", answer(3, 4, 5)},
		{"limit 0: the position alone", "channel=/h/a&limit=0", answer()},
		{"limit 0 with since", "channel=/h/a&since=1&limit=0", answer()},
		{"leading zeros", "channel=/h/a&since=0003&limit=01", answer(4)},
		{"largest since", "channel=/h/a&since=9223372036854775807", answer()},
		{"escaped channel", "channel=%2Fh%2Fa", answer(3, 4, 5)},
		{"no publication yet", "channel=/h/none", `{"channel":"/h/none","epoch":"","replayId":0,"publications":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.history(t, tt.query); r.body.Raw != tt.json+"\n" {
				t.Errorf("body %s\nwant %s", r.body.Raw, tt.json)
			}
		})
	}
}

// TestHistoryAsDelivered checks that the publications GET /history returns
// are what a subscriber received: data, ext and position.
func TestHistoryAsDelivered(t *testing.T) {
	e := newEnv(t, historyConfig(), api.Config{})
	id := e.handshake(t)
	e.subscribe(t, id, "/h/**")
	e.drain(t, id)
	e.publish(t, "/h/x/y", `{"text":"hi","list":[1,2,{"a":null}]}`, `{"from":"bot","n":1.5}`)
	e.publish(t, "/h/x/y", `"plain"`, "")
	got := e.drain(t, id)
	r := e.history(t, "channel=/h/x/y")
	pubs := r.body.Get("publications").Array()
	if len(got) != 2 || len(pubs) != 2 {
		t.Fatalf("delivered %v; history %s", got, r.body.Raw)
	}
	for i, m := range got {
		p := pubs[i]
		if m.Get("ext.replayId").Uint() != p.Get("replayId").Uint() || m.Get("ext.epoch").String() != r.body.Get("epoch").String() {
			t.Errorf("publication %d: delivered at %s, history says %s in %s", i, m.Get("ext").Raw, p.Get("replayId").Raw, r.body.Get("epoch").Raw)
		}
		if m.Get("data").Raw != p.Get("data").Raw {
			t.Errorf("publication %d: delivered data %s, history data %s", i, m.Get("data").Raw, p.Get("data").Raw)
		}
		ext := m.Get("ext").Map()
		delete(ext, "replayId")
		delete(ext, "epoch")
		if len(ext) != len(p.Get("ext").Map()) || (len(ext) == 0) == p.Get("ext").Exists() {
			t.Errorf("publication %d: delivered ext %s, history ext %s", i, m.Get("ext").Raw, p.Get("ext").Raw)
		}
		for k, v := range ext {
			if p.Get("ext."+k).Raw != v.Raw {
				t.Errorf("publication %d: ext.%s delivered %s, history %s", i, k, v.Raw, p.Get("ext."+k).Raw)
			}
		}
	}
}

func TestHistoryLimitCap(t *testing.T) {
	e := newEnv(t, bayeux.Config{History: []bayeux.HistoryRule{{Pattern: "/big", Size: api.MaxHistoryLimit + 5}}}, api.Config{})
	for i := 1; i <= api.MaxHistoryLimit+5; i++ {
		e.publish(t, "/big", fmt.Sprint(i), "")
	}
	tests := []struct {
		name, query string
		first, n    int64
	}{
		{"default limit", "channel=/big", 1, api.MaxHistoryLimit},
		{"next page", "channel=/big&since=1000", 1001, 5},
		{"small limit", "channel=/big&since=10&limit=3", 11, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.history(t, tt.query)
			pubs := r.body.Get("publications").Array()
			if int64(len(pubs)) != tt.n || pubs[0].Get("replayId").Int() != tt.first || pubs[0].Get("data").Int() != tt.first ||
				r.body.Get("replayId").Int() != api.MaxHistoryLimit+5 {
				t.Errorf("%d publications from %s, position %s; want %d from %d", len(pubs), pubs[0].Raw, r.body.Get("replayId").Raw, tt.n, tt.first)
			}
		})
	}
	wantError(t, "limit above the maximum", e.call(t, "GET", fmt.Sprintf("/history?channel=/big&limit=%d", api.MaxHistoryLimit+1), ""),
		http.StatusBadRequest, "bad_request")
}

func TestRemoveHistory(t *testing.T) {
	e := newEnv(t, historyConfig(), api.Config{})
	e.publish(t, "/h/a", "1", "")
	e.publish(t, "/h/a", "2", "")
	e.publish(t, "/h/b", "1", "")
	before := e.history(t, "channel=/h/a").body.Get("epoch").String()
	kept := e.history(t, "channel=/h/b").body.Raw

	r := e.call(t, "DELETE", "/history?channel=/h/a", "")
	if r.status != http.StatusOK || r.body.Raw != `{"ok":true}`+"\n" {
		t.Fatalf("DELETE: %d %s", r.status, r.body.Raw)
	}
	if got := e.history(t, "channel=/h/a").body.Raw; got != `{"channel":"/h/a","epoch":"","replayId":0,"publications":[]}`+"\n" {
		t.Errorf("after DELETE: %s", got)
	}
	if got := e.history(t, "channel=/h/b").body.Raw; got != kept {
		t.Errorf("another channel's history changed: %s, was %s", got, kept)
	}
	e.publish(t, "/h/a", "3", "")
	after := e.history(t, "channel=/h/a")
	if ep := after.body.Get("epoch").String(); ep == "" || ep == before {
		t.Errorf("epoch after DELETE and a publish: %q, before %q", ep, before)
	}
	if got := after.body.Get("replayId").Int(); got != 1 || after.body.Get("publications.#").Int() != 1 {
		t.Errorf("after DELETE and a publish: %s", after.body.Raw)
	}
	// Deleting what is already gone succeeds.
	for range 2 {
		e.call(t, "DELETE", "/history?channel=/h/a", "")
	}
	if r := e.call(t, "DELETE", "/history?channel=/h/never", ""); r.status != http.StatusOK {
		t.Errorf("DELETE of a channel never published: %d %s", r.status, r.body.Raw)
	}
}

func TestHistoryErrors(t *testing.T) {
	e := newEnv(t, historyConfig(), api.Config{})
	e.publish(t, "/h/a", "1", "")
	e.publish(t, "/x", "1", "")
	tests := []struct {
		name, method, target string
		status               int
		code                 string
		allow                string
	}{
		{"no rule", "GET", "/history?channel=/x", 404, "no_history", ""},
		{"no rule, delete", "DELETE", "/history?channel=/x", 404, "no_history", ""},
		{"parent of the rule", "GET", "/history?channel=/h", 404, "no_history", ""},
		{"meta", "GET", "/history?channel=/meta/connect", 404, "no_history", ""},
		{"service", "DELETE", "/history?channel=/service/h", 404, "no_history", ""},

		{"no channel", "GET", "/history", 400, "bad_request", ""},
		{"empty channel", "GET", "/history?channel=", 400, "bad_request", ""},
		{"no channel, delete", "DELETE", "/history", 400, "bad_request", ""},
		{"pattern", "GET", "/history?channel=/h/*", 400, "bad_request", ""},
		{"pattern, delete", "DELETE", "/history?channel=/h/**", 400, "bad_request", ""},
		{"not a name", "GET", "/history?channel=h/a", 400, "bad_request", ""},
		{"trailing slash", "GET", "/history?channel=/h/a/", 400, "bad_request", ""},
		{"non-ASCII", "GET", "/history?channel=/h/%C3%A9", 400, "bad_request", ""},
		{"channel twice", "GET", "/history?channel=/h/a&channel=/h/b", 400, "bad_request", ""},
		{"since negative", "GET", "/history?channel=/h/a&since=-1", 400, "bad_request", ""},
		{"since signed", "GET", "/history?channel=/h/a&since=%2B1", 400, "bad_request", ""},
		{"since fraction", "GET", "/history?channel=/h/a&since=1.5", 400, "bad_request", ""},
		{"since word", "GET", "/history?channel=/h/a&since=all", 400, "bad_request", ""},
		{"since empty", "GET", "/history?channel=/h/a&since=", 400, "bad_request", ""},
		{"since too large", "GET", "/history?channel=/h/a&since=9223372036854775808", 400, "bad_request", ""},
		{"since beyond uint64", "GET", "/history?channel=/h/a&since=99999999999999999999", 400, "bad_request", ""},
		{"since twice", "GET", "/history?channel=/h/a&since=1&since=2", 400, "bad_request", ""},
		{"limit negative", "GET", "/history?channel=/h/a&limit=-1", 400, "bad_request", ""},
		{"limit above the maximum", "GET", "/history?channel=/h/a&limit=1001", 400, "bad_request", ""},
		{"limit word", "GET", "/history?channel=/h/a&limit=ten", 400, "bad_request", ""},
		{"unknown parameter", "GET", "/history?channel=/h/a&offset=1", 400, "bad_request", ""},
		{"since on delete", "DELETE", "/history?channel=/h/a&since=1", 400, "bad_request", ""},

		{"post", "POST", "/history?channel=/h/a", 405, "method_not_allowed", "DELETE, GET, HEAD"},
		{"put", "PUT", "/history?channel=/h/a", 405, "method_not_allowed", "DELETE, GET, HEAD"},
		{"below", "GET", "/history/h/a", 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(t, tt.method, tt.target, "")
			wantError(t, tt.name, r, tt.status, tt.code)
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
	// Nothing above removed /h/a's history.
	if r := e.history(t, "channel=/h/a"); r.body.Get("publications.#").Int() != 1 {
		t.Errorf("after the refused requests: %s", r.body.Raw)
	}
	if r := e.call(t, "HEAD", "/history?channel=/h/a", ""); r.status != http.StatusOK {
		t.Errorf("HEAD: %d", r.status)
	}
}

func TestHistoryAccess(t *testing.T) {
	const key = "s3cret-key"
	keys := api.Config{Keys: []string{key}}
	tests := []struct {
		name   string
		cfg    api.Config
		method string
		mods   []func(*http.Request)
		status int
	}{
		{"default, loopback", api.Config{}, "GET", nil, 200},
		{"default, loopback, delete", api.Config{}, "DELETE", nil, 200},
		{"default, remote", api.Config{}, "GET", mods(from("192.0.2.7:1")), 403},
		{"default, remote, delete", api.Config{}, "DELETE", mods(from("192.0.2.7:1")), 403},
		{"default, web page, delete", api.Config{}, "DELETE", mods(header("Origin", "https://evil.example")), 403},
		{"keys, no key", keys, "GET", nil, 401},
		{"keys, wrong key, delete", keys, "DELETE", mods(header("Authorization", "Bearer nope")), 401},
		{"keys, bearer", keys, "GET", mods(from("192.0.2.7:1"), header("Authorization", "Bearer "+key)), 200},
		{"keys, X-API-Key, delete", keys, "DELETE", mods(header("X-API-Key", key)), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, historyConfig(), tt.cfg)
			e.publish(t, "/h/a", "1", "")
			r := e.call(t, tt.method, "/history?channel=/h/a", "", tt.mods...)
			if r.status != tt.status {
				t.Errorf("%d %s, want %d", r.status, r.body.Raw, tt.status)
			}
			if tt.status == 200 && tt.method == "GET" && r.body.Get("publications.#").Int() != 1 {
				t.Errorf("answer %s", r.body.Raw)
			}
			want := 1
			if tt.status == 200 && tt.method == "DELETE" {
				want = 0
			}
			pubs, _, err := e.srv.History(context.Background(), "/h/a", 0, 0)
			if err != nil || len(pubs) != want {
				t.Errorf("after the request: %d publications retained (%v), want %d", len(pubs), err, want)
			}
		})
	}
}
