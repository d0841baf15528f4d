package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:s3cret@redis:6379/0", "redis://:xxxxx@redis:6379/0"},
		{"rediss://user:s3cret@redis:6380", "rediss://user:xxxxx@redis:6380"},
		{"redis://user@redis", "redis://user@redis"},
		{"redis://redis/0?password=s3cret&dial_timeout=1s", "redis://redis/0?dial_timeout=1s&password=xxxxx"},
		{"redis://u:p%zz@host", "(unparseable URL)"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// jsonLines parses the JSON log lines of out with the message msg.
func jsonLines(t *testing.T, out, msg string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if m["msg"] == msg {
			lines = append(lines, m)
		}
	}
	return lines
}

// TestJSONLogsOfSessions runs the command with JSON logs behind a trusted
// proxy, and checks the Info lines of a session's start and end: they
// carry the client address the proxy named, the transport and the reason.
func TestJSONLogsOfSessions(t *testing.T) {
	c := startCommand(t, "--addr", "127.0.0.1:0", "--log-format", "json", "--trusted-proxies", "127.0.0.1", "--timeout", "1")
	url := c.url(t, "Bayeux")
	send := func(body string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "198.51.100.23")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var replies []map[string]any
		if err := json.NewDecoder(res.Body).Decode(&replies); err != nil || len(replies) == 0 {
			t.Fatalf("%s: %v %v", body, replies, err)
		}
		return replies[0]
	}
	id := send(handshakeBody(""))["clientId"].(string)
	send(`{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling","advice":{"timeout":0}}`)
	send(`{"channel":"/meta/disconnect","clientId":"` + id + `"}`)
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(c.stderr.String(), `"session ended"`) }, "the end logged")
	start := jsonLines(t, c.stderr.String(), "session started")
	end := jsonLines(t, c.stderr.String(), "session ended")
	if len(start) != 1 || start[0]["level"] != "INFO" || start[0]["clientId"] != id || start[0]["ip"] != "198.51.100.23" {
		t.Errorf("session started: %v", start)
	}
	if len(end) != 1 || end[0]["ip"] != "198.51.100.23" || end[0]["transport"] != "long-polling" || end[0]["reason"] != "disconnect" {
		t.Errorf("session ended: %v", end)
	}
	if len(jsonLines(t, c.stderr.String(), "settings")) != 1 {
		t.Errorf("no settings line:\n%s", c.stderr.String())
	}
}

// TestRedisPasswordNeverLogged starts the command on an unreachable Redis
// whose URL holds a password: neither the error nor the log shows it.
func TestRedisPasswordNeverLogged(t *testing.T) {
	for _, url := range []string{"redis://user:s3cret-pw@127.0.0.1:1/0", "redis://user:s3cret-pw%zz@127.0.0.1:1/0"} {
		stderr := &bayeuxtest.Buffer{}
		err := run(t.Context(), []string{"--addr", "127.0.0.1:0", "--redis", url, "--redis-op-timeout", "0.2", "--log-level", "debug"},
			noEnv, &bayeuxtest.Buffer{}, stderr, nil)
		if err == nil {
			t.Fatalf("%s: run succeeded", url)
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(stderr.String(), "s3cret") {
			t.Fatalf("the password shows: %v\n%s", err, stderr.String())
		}
	}
}
