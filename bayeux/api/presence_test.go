package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
	"github.com/bayou-pubsub/bayou/extensions/presence"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestPresence(t *testing.T) {
	p, err := presence.New(presence.Config{Channels: []string{"/chat/*"}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, bayeux.Config{Extensions: []bayeux.Extension{p}}, api.Config{Presence: p})
	id := e.handshake(t)
	bayeuxtest.MustPost(t, e.bayeuxURL, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/chat/lobby"}`)
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		return e.call(t, http.MethodGet, "/presence?channel=/chat/lobby", "").body.Get("members.0.clientId").String() == id
	}, "the member listed")

	tests := []struct {
		target string
		status int
		check  string // a gjson path that must exist in the answer
	}{
		{"/presence?channel=/chat/empty", http.StatusOK, "members"},
		{"/presence?channel=/chat/*", http.StatusBadRequest, "error"},
		{"/presence", http.StatusBadRequest, "error"},
		{"/presence?channel=/other", http.StatusNotFound, "error"},
		{"/presence?channel=/chat/a&x=1", http.StatusBadRequest, "error"},
	}
	for _, tt := range tests {
		r := e.call(t, http.MethodGet, tt.target, "")
		if r.status != tt.status || !r.body.Get(tt.check).Exists() {
			t.Errorf("GET %s: %d %s, want %d with %s", tt.target, r.status, r.body.Raw, tt.status, tt.check)
		}
	}
	if r := e.call(t, http.MethodGet, "/presence?channel=/chat/empty", ""); r.body.Get("members").Raw != "[]" {
		t.Errorf("empty channel: %s", r.body.Raw)
	}

	// Without presence configured.
	plain := newEnv(t, bayeux.Config{}, api.Config{})
	if r := plain.call(t, http.MethodGet, "/presence?channel=/chat/lobby", ""); r.status != http.StatusNotFound {
		t.Errorf("without presence: %d %s", r.status, r.body.Raw)
	}
}
