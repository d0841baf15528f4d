package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

// TestProbesOnEveryListener checks /healthz and /readyz on the Bayeux
// listener (at the root, and under --health-path) and on the API listener,
// without key.
func TestProbesOnEveryListener(t *testing.T) {
	for _, tt := range []struct {
		name, healthPath, prefix string
	}{
		{"root", "/", ""},
		{"under a path", "/ops/", "/ops"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startCommand(t, "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--api-key", "k", "--log-level", "error",
				"--health-path", tt.healthPath)
			root := strings.TrimSuffix(c.url(t, "Bayeux"), "/bayeux")
			api := strings.TrimSuffix(c.url(t, "the HTTP API"), "/")
			for _, url := range []string{root + tt.prefix + "/healthz", root + tt.prefix + "/readyz", api + "/healthz", api + "/readyz"} {
				if status, body := get(t, url); status != 200 || body != `{"ok":true}` {
					t.Errorf("GET %s: %d %s", url, status, body)
				}
			}
			if tt.prefix != "" {
				if status, _ := get(t, root+"/healthz"); status != 404 {
					t.Errorf("GET /healthz with --health-path %s: %d", tt.healthPath, status)
				}
			}
		})
	}
}

// TestPreDrain stops the command with --pre-drain: readiness fails at
// once while clients are still served, then the command drains and
// returns.
func TestPreDrain(t *testing.T) {
	c := startCommand(t, "--addr", "127.0.0.1:0", "--log-level", "error", "--pre-drain", "2", "--drain-timeout", "3", "--timeout", "1")
	url := c.url(t, "Bayeux")
	ready := strings.TrimSuffix(url, "/bayeux") + "/readyz"
	if status, _ := get(t, ready); status != 200 {
		t.Fatalf("readyz before the stop: %d", status)
	}
	stopped := time.Now()
	c.stop()
	var body string
	bayeuxtest.Eventually(t, time.Second, func() bool {
		var status int
		status, body = get(t, ready)
		return status == http.StatusServiceUnavailable
	}, "readyz failing once the drain began")
	if body != `{"ok":false,"reason":"bayeux: server draining"}` {
		t.Errorf("readyz while draining: %s", body)
	}
	if r := post(t, url, handshakeBody("")); r["successful"] != true {
		t.Fatalf("handshake during the pre-drain: %v", r)
	}
	if err := c.wait(t); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(stopped); d < 2*time.Second {
		t.Fatalf("the command returned %v after the stop, before the end of --pre-drain", d)
	}
}

// TestAPIBehindATrustedProxy checks that --trusted-proxies applies to the
// API: --api-allow is checked against the client X-Forwarded-For names
// when the peer is trusted, and against the peer otherwise.
func TestAPIBehindATrustedProxy(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted string
		status  int
	}{
		{"trusted proxy", "127.0.0.1", 200},
		{"untrusted peer", "10.0.0.0/8", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startCommand(t, "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--log-level", "error",
				"--api-allow", "203.0.113.0/24", "--trusted-proxies", tt.trusted)
			req, _ := http.NewRequest(http.MethodGet, c.url(t, "the HTTP API")+"clients", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("GET /clients via %s: %d, want %d", tt.name, res.StatusCode, tt.status)
			}
		})
	}
}
