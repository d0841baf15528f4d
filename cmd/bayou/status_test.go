package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestRunServesTheStatusPage starts the command with an API key: the API
// listener serves the status page without the key, and /status.json with
// it, carrying the binary's version and the session of a handshake.
func TestRunServesTheStatusPage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &bayeuxtest.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--api-key", "k",
			"--timeout", "1", "--log-level", "error"}, noEnv, stdout, io.Discard, nil)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after its context ended")
		}
	})
	urlOf := func(what string) string {
		t.Helper()
		re := regexp.MustCompile(`serving ` + what + ` at (http://\S+)`)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if m := re.FindStringSubmatch(stdout.String()); m != nil {
				return m[1]
			}
		}
		t.Fatalf("no URL printed for %s: %q", what, stdout.String())
		return ""
	}
	bayeuxURL, apiURL := urlOf("Bayeux"), urlOf("the HTTP API")
	if r := post(t, bayeuxURL, handshakeBody("")); r["successful"] != true {
		t.Fatalf("handshake: %v", r)
	}
	get := func(url, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, body := get(apiURL+"status", ""); status != http.StatusOK || !strings.Contains(body, "<title>Bayou status</title>") {
		t.Errorf("GET /status: %d %.200s", status, body)
	}
	if status, _ := get(apiURL+"status.json", ""); status != http.StatusUnauthorized {
		t.Errorf("GET /status.json without the key: %d, want 401", status)
	}
	status, body := get(apiURL+"status.json", "k")
	var st struct {
		Version  string `json:"version"`
		Sessions int    `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || status != http.StatusOK {
		t.Fatalf("GET /status.json: %d %s (%v)", status, body, err)
	}
	if st.Version != versionText() || st.Sessions != 1 {
		t.Errorf("status: %+v, want version %q and 1 session", st, versionText())
	}
}
