package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
	"github.com/tidwall/gjson"
)

// env is a Bayeux server reachable over HTTP (for test clients, which
// long-poll) and its API handler (called in process, so that tests choose
// the request's source address).
type env struct {
	srv       *bayeux.Server
	bayeuxURL string
	api       http.Handler
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T, bcfg bayeux.Config, acfg api.Config) *env {
	t.Helper()
	bcfg.Logger = quietLogger()
	srv, err := bayeux.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := bayeuxtest.Serve(t, srv, srv.Shutdown)
	if acfg.Logger == nil {
		acfg.Logger = quietLogger()
	}
	return &env{srv: srv, bayeuxURL: hs.URL + "/bayeux", api: api.New(srv, acfg)}
}

// response is an API answer.
type response struct {
	status int
	header http.Header
	body   gjson.Result
}

// call sends a request to the API from 127.0.0.1; mods may change it
// (source address, headers).
func (e *env) call(t *testing.T, method, target, body string, mods ...func(*http.Request)) response {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:40000"
	for _, m := range mods {
		m(req)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	if method != http.MethodHead && !gjson.ValidBytes(b) {
		t.Fatalf("%s %s: invalid JSON answer %q", method, target, b)
	}
	return response{status: res.StatusCode, header: res.Header, body: gjson.ParseBytes(b)}
}

// from sets the request's peer address.
func from(addr string) func(*http.Request) {
	return func(r *http.Request) { r.RemoteAddr = addr }
}

// header sets a request header.
func header(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// post sends Bayeux messages as a long-polling client does.
func (e *env) post(t *testing.T, body string) gjson.Result {
	t.Helper()
	return bayeuxtest.MustPost(t, e.bayeuxURL, body)
}

func (e *env) handshake(t *testing.T) string {
	t.Helper()
	r := e.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`)
	id := r.Get("0.clientId").String()
	if id == "" {
		t.Fatalf("handshake: %s", r.Raw)
	}
	return id
}

func (e *env) subscribe(t *testing.T, id string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		r := e.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"`+p+`"}`)
		if !r.Get("0.successful").Bool() {
			t.Fatalf("subscribe %s: %s", p, r.Raw)
		}
	}
}

// drain connects without waiting and returns the messages delivered on
// channels other than /meta ones.
func (e *env) drain(t *testing.T, id string) []gjson.Result {
	t.Helper()
	r := e.post(t, `{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling","advice":{"timeout":0}}`)
	var out []gjson.Result
	for _, m := range r.Array() {
		if !strings.HasPrefix(m.Get("channel").String(), "/meta/") {
			out = append(out, m)
		}
	}
	return out
}

// wantError checks an error answer.
func wantError(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.body.Get("error.code").String() != code || r.body.Get("error.message").String() == "" {
		t.Errorf("%s: got %d %s, want %d %s", what, r.status, r.body.Raw, status, code)
	}
}
