package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
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

// startRedisServer runs a redis-server of the test's own on port of
// 127.0.0.1 and returns a function that kills it (also called at cleanup). The test is skipped
// when redis-server is not installed (scripts/redis-install.sh installs
// it), except in CI.
func startRedisServer(t *testing.T, port int) (kill func()) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not installed")
		}
		t.Skip("redis-server not installed (run scripts/redis-install.sh)")
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	bayeuxtest.Eventually(t, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "redis-server listening")
	return kill
}

// freePort returns a TCP port of 127.0.0.1 free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestReadyzFollowsRedis runs the command on Redis: /readyz is 200, turns
// 503 with the engine's error while Redis is down, and 200 again once it
// is back; /healthz stays 200 throughout.
func TestReadyzFollowsRedis(t *testing.T) {
	port := freePort(t)
	kill := startRedisServer(t, port)
	c := startCommand(t, "--addr", "127.0.0.1:0", "--log-level", "error", "--redis", "redis://127.0.0.1:"+strconv.Itoa(port)+"/0",
		"--redis-op-timeout", "0.3")
	root := strings.TrimSuffix(c.url(t, "Bayeux"), "/bayeux")
	if status, body := get(t, root+"/readyz"); status != 200 {
		t.Fatalf("readyz with Redis up: %d %s", status, body)
	}
	kill()
	var body string
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		var status int
		status, body = get(t, root+"/readyz")
		return status == http.StatusServiceUnavailable
	}, "readyz failing with Redis down")
	if !strings.Contains(body, `"reason":"bayeux: engine unreachable: redis:`) {
		t.Errorf("readyz with Redis down: %s", body)
	}
	if status, _ := get(t, root+"/healthz"); status != 200 {
		t.Errorf("healthz with Redis down: %d", status)
	}
	startRedisServer(t, port)
	bayeuxtest.Eventually(t, 10*time.Second, func() bool { status, _ := get(t, root+"/readyz"); return status == 200 },
		"readyz back once Redis is")
}
