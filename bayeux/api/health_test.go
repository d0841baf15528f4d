package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
)

// downEngine is the memory engine with a failing Ping, as the Redis engine
// has while Redis is down.
type downEngine struct{ bayeux.Engine }

func (downEngine) Ping(context.Context) error { return errors.New("connection refused") }

// TestProbes checks /healthz and /readyz on the API, served without key
// (the API has one) and from any source, as they change while the server
// drains.
func TestProbes(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{Keys: []string{"k1", "k2"}})
	fromAnywhere := func(r *http.Request) { r.RemoteAddr = "198.51.100.1:1234" }
	tests := []struct {
		name, method, target string
		drain                bool
		status               int
		json                 string
	}{
		{name: "alive", method: "GET", target: "/healthz", status: 200, json: `{"ok":true}`},
		{name: "alive head", method: "HEAD", target: "/healthz", status: 200},
		{name: "ready", method: "GET", target: "/readyz", status: 200, json: `{"ok":true}`},
		{name: "ready post", method: "POST", target: "/readyz", status: 405},
		{name: "old health", method: "GET", target: "/health", status: 200, json: `{"ok":true}`},
		{name: "other routes need a key", method: "GET", target: "/clients", status: 401},
		{name: "not ready while draining", method: "GET", target: "/readyz", drain: true, status: 503,
			json: `{"ok":false,"reason":"bayeux: server draining"}`},
		{name: "alive while draining", method: "GET", target: "/healthz", drain: true, status: 200, json: `{"ok":true}`},
	}
	for _, tt := range tests {
		if tt.drain {
			e.srv.Drain()
		}
		r := e.call(t, tt.method, tt.target, "", fromAnywhere)
		if r.status != tt.status || (tt.json != "" && strings.TrimSpace(r.body.Raw) != tt.json) {
			t.Errorf("%s: %s %s = %d %s, want %d %s", tt.name, tt.method, tt.target, r.status, r.body.Raw, tt.status, tt.json)
		}
	}
}

func TestReadinessWithTheEngineDown(t *testing.T) {
	srv, err := bayeux.New(bayeux.Config{Engine: downEngine{bayeux.NewMemoryEngine()}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	rec := httptest.NewRecorder()
	api.Readiness(srv).ServeHTTP(rec, httptest.NewRequest("GET", "/anywhere/readyz", nil))
	if body := rec.Body.String(); rec.Code != 503 || !strings.Contains(body, `"reason":"bayeux: engine unreachable: connection refused"`) {
		t.Fatalf("readiness: %d %s", rec.Code, body)
	}
	rec = httptest.NewRecorder()
	api.Liveness().ServeHTTP(rec, httptest.NewRequest("GET", "/anywhere/healthz", nil))
	if rec.Code != 200 {
		t.Fatalf("liveness: %d %s", rec.Code, rec.Body)
	}
}
