package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestPrintToken(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-print-token", "u1"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(strings.TrimSpace(out.String()), "."); len(parts) != 3 {
		t.Fatalf("not a JWT: %q", out.String())
	}
	if _, err := Token([]byte("s"), "", time.Minute, time.Now()); err == nil {
		t.Fatal("a token for an empty user")
	}
}

// post sends one message to url and returns the replies.
func post(t *testing.T, url, body string) []map[string]any {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var replies []map[string]any
	if err := json.NewDecoder(res.Body).Decode(&replies); err != nil || len(replies) == 0 {
		t.Fatalf("POST %s: %v", body, err)
	}
	return replies
}

func TestUsersChannels(t *testing.T) {
	srv, err := NewServer([]byte(demoSecret), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	url := bayeuxtest.Serve(t, srv, srv.Shutdown).URL + "/bayeux"
	ext := func(user string) string {
		if user == "" {
			return ""
		}
		s, err := Token([]byte(demoSecret), user, time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return `,"ext":{"token":"` + s + `"}`
	}
	connect := func(user string) string {
		r := post(t, url, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]`+ext(user)+`}`)
		id, _ := r[0]["clientId"].(string)
		if id == "" {
			t.Fatalf("handshake as %q: %v", user, r)
		}
		return id
	}
	ids := map[string]string{"u1": connect("u1"), "u2": connect("u2"), "": connect("")}
	tests := []struct {
		user, pattern string
		ok            bool
	}{
		{"u1", "/users/u1/**", true},
		{"u1", "/users/u2/**", false},
		{"u1", "/users/*", false},
		{"u1", "/**", true},
		{"", "/users/u1/**", false},
		{"", "/chat/*", true},
		{"u2", "/users/u2/inbox", true},
	}
	for _, tt := range tests {
		r := post(t, url, `{"channel":"/meta/subscribe","clientId":"`+ids[tt.user]+`","subscription":"`+tt.pattern+`"}`)
		if r[0]["successful"] != tt.ok {
			t.Errorf("%q subscribe %s: %v", tt.user, tt.pattern, r)
		}
	}
	for _, ch := range []string{"/users/u2/inbox", "/users/u1/inbox"} {
		r := post(t, url, `{"channel":"`+ch+`","clientId":"`+ids["u2"]+`","data":"hi"}`)
		if r[0]["successful"] != (ch == "/users/u2/inbox") {
			t.Errorf("u2 publish on %s: %v", ch, r)
		}
	}
	received := func(user string) []string {
		var chans []string
		for _, m := range post(t, url, `{"channel":"/meta/connect","clientId":"`+ids[user]+`","connectionType":"long-polling","advice":{"timeout":0}}`) {
			if _, ok := m["data"]; ok {
				chans = append(chans, m["channel"].(string))
			}
		}
		return chans
	}
	if got := received("u1"); len(got) != 0 {
		t.Errorf("u1 received %q through /**", got)
	}
	if got := received("u2"); len(got) != 1 || got[0] != "/users/u2/inbox" {
		t.Errorf("u2 received %q", got)
	}
}
