package bayeux

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// logLines parses the JSON log lines in out with the message msg.
func logLines(t *testing.T, out, msg string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			lines = append(lines, m)
		}
	}
	return lines
}

// TestSessionLogLines checks the Info lines of a session's start and end,
// and that a burst of handshakes past the budget is dropped and counted.
func TestSessionLogLines(t *testing.T) {
	out := &bayeuxtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(out, nil))
	ts := newTestServer(t, Config{Logger: log, SessionLogRate: 0.001}) // a burst of 1, then one line per 1000 s
	id := ts.handshake(t)
	if r := ts.post(t, connectBody(id, `,"advice":{"timeout":0}`)); !r.Get("0.successful").Bool() {
		t.Fatalf("connect: %s", r.Raw)
	}
	for range 5 {
		ts.handshake(t) // over the budget
	}
	started := logLines(t, out.String(), "session started")
	if len(started) != 1 || started[0]["clientId"] != id || started[0]["ip"] != "127.0.0.1" || started[0]["via"] != "http" {
		t.Fatalf("session started lines: %v", started)
	}

	ts.sessionLog.budget.SetLimit(rate.Inf) // the budget refills
	if r := ts.post(t, `{"channel":"/meta/disconnect","clientId":"`+id+`"}`); !r.Get("0.successful").Bool() {
		t.Fatalf("disconnect: %s", r.Raw)
	}
	ended := logLines(t, out.String(), "session ended")
	if len(ended) != 1 {
		t.Fatalf("session ended lines: %v\n%s", ended, out.String())
	}
	e := ended[0]
	if e["clientId"] != id || e["reason"] != "disconnect" || e["transport"] != "long-polling" || e["ip"] != "127.0.0.1" ||
		e["dropped"] != float64(5) || e["duration"] == nil {
		t.Fatalf("session ended line: %v", e)
	}
}

// TestSessionLogOff checks that a negative rate logs no session lines.
func TestSessionLogOff(t *testing.T) {
	out := &bayeuxtest.Buffer{}
	ts := newTestServer(t, Config{Logger: slog.New(slog.NewJSONHandler(out, nil)), SessionLogRate: -1})
	ts.handshake(t)
	if strings.Contains(out.String(), "session started") {
		t.Fatalf("logged %s", out.String())
	}
}

// TestDebugLinesCarryClientAndChannel checks that the debug line of a
// message names its channel and client.
func TestDebugLinesCarryClientAndChannel(t *testing.T) {
	out := &bayeuxtest.Buffer{}
	ts := newTestServer(t, Config{Logger: slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	id := ts.handshake(t)
	ts.subscribe(t, id, "/room/1")
	found := false
	for _, l := range logLines(t, out.String(), "message") {
		if l["channel"] == "/meta/subscribe" && l["clientId"] == id && l["ip"] == "127.0.0.1" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no debug line for the subscribe:\n%s", out.String())
	}
}

// TestSessionLogNeedsALogger checks that without a Logger of the caller's
// own the server writes no session lines (to the default logger).
func TestSessionLogNeedsALogger(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(t.Context()) }()
	if srv.sessionLog.budget != nil {
		t.Fatal("session lines would go to the default logger")
	}
}
