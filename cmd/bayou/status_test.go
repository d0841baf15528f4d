package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRunServesTheStatusPage starts the command with an API key: the API
// listener serves the status page without the key, and /status.json with
// it, carrying the binary's version and the session of a handshake.
func TestRunServesTheStatusPage(t *testing.T) {
	c := startCommand(t, "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--api-key", "k",
		"--timeout", "1", "--log-level", "error")
	urlOf := func(what string) string { return c.url(t, what) }
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
