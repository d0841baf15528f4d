package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func TestParseAttackFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(*attackConfig) bool
	}{
		{"defaults", []string{"--server-pid", "7"}, "", func(c *attackConfig) bool {
			return c.serverPID == 7 && c.duration == 10*time.Second && c.workers == 8 && c.probeEvery == 50*time.Millisecond &&
				c.recoverWait == 30*time.Second && slices.Equal(c.kinds, attackKinds()) && c.meta.Label == "attack"
		}},
		{"Go durations", []string{"--server-pid", "7", "--duration", "1m30s", "--probe-interval", "20ms"}, "", func(c *attackConfig) bool {
			return c.duration == 90*time.Second && c.probeEvery == 20*time.Millisecond
		}},
		{"seconds", []string{"--server-pid", "7", "--duration", "2.5", "--recover-wait", "0"}, "", func(c *attackConfig) bool {
			return c.duration == 2500*time.Millisecond && c.recoverWait == 0
		}},
		{"kind list", []string{"--server-pid", "7", "--kind", "slowbody, utf8"}, "", func(c *attackConfig) bool {
			return slices.Equal(c.kinds, []string{"slowbody", "utf8"})
		}},
		{"labels", []string{"--server-pid", "7", "--label", "limits", "--probe-source", "127.0.0.2"}, "", func(c *attackConfig) bool {
			return c.meta.Label == "limits" && c.probeSource == "127.0.0.2"
		}},
		{"unknown kind", []string{"--server-pid", "7", "--kind", "utf8,cors"}, `unknown attack "cors"`, nil},
		{"no pid", []string{"--kind", "utf8"}, "need --server-pid", nil},
		{"no workers", []string{"--server-pid", "7", "--workers", "0"}, "--workers ≥ 1", nil},
		{"bad duration", []string{"--server-pid", "7", "--duration", "soon"}, "want a duration", nil},
		{"bad source", []string{"--server-pid", "7", "--probe-source", "localhost"}, "not an IP address", nil},
		{"extra argument", []string{"--server-pid", "7", "utf8"}, "unexpected arguments", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := parseAttackFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Fatalf("parsed %+v", cfg)
			}
		})
	}
}

func TestRSSRecovered(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		base, rss int64
		want      bool
	}{
		{10 * mb, 10 * mb, true},
		{10 * mb, 30 * mb, true}, // within 20 MiB
		{10 * mb, 30*mb + 1, false},
		{200 * mb, 250 * mb, true}, // within 25 %
		{200 * mb, 250*mb + 1, false},
		{80 * mb, 100 * mb, true}, // 25 % = 20 MiB: either rule
		{80 * mb, 5 * mb, true},   // below the baseline
	}
	for _, tt := range tests {
		if got := tt.rss <= rssLimit(tt.base); got != tt.want {
			t.Errorf("baseline %d MiB, RSS %d bytes: recovered %v, want %v", tt.base/mb, tt.rss, got, tt.want)
		}
	}
}

func TestReplyOutcome(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         string
		key, example string
	}{
		{"success", 200, `[{"channel":"/x","successful":true}]`, "HTTP 200", ""},
		{"refused channel", 200, `[{"channel":"/a/a","successful":false,"error":"405:/a/a...:Invalid channel"}]`,
			"HTTP 200 error 405", "405:/a/a...:Invalid channel"},
		{"first error of a batch", 200, `[{"channel":"/meta/handshake","successful":true},` +
			`{"channel":"/meta/handshake","successful":false,"error":"400::One handshake per request"}]`,
			"HTTP 200 error 400", "400::One handshake per request"},
		{"status", 400, "Bad request: JSON nested more than 64 deep\n", "HTTP 400", "Bad request: JSON nested more than 64 deep"},
		{"not JSON", 200, `oops`, "HTTP 200", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, example := replyOutcome(tt.status, []byte(tt.body))
			if key != tt.key || example != tt.example {
				t.Fatalf("got %q, %q; want %q, %q", key, example, tt.key, tt.example)
			}
		})
	}
}

func TestAttackBodies(t *testing.T) {
	hs := handshakeBody[1 : len(handshakeBody)-1]
	tests := []struct {
		name     string
		body     []byte
		min, max int
		messages int64 // 0: a single object
	}{
		{"1 MiB channel", channelPublish(bigBody), bigBody - 2, bigBody, 0},
		{"100 KB channel", channelPublish(smallChannel), smallChannel - 2, smallChannel, 0},
		{"1 MiB of {}", batchOf([]byte("{}"), (bigBody-1)/3), bigBody - 3, bigBody, (bigBody - 1) / 3},
		{"handshakes", batchOf(hs, handshakeBatch), 1000, 20000, handshakeBatch},
		{"subscribe", subscribeMany("abc", 3, 200, subscribeBatch), 1000, 4000, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := len(tt.body); n < tt.min || n > tt.max {
				t.Fatalf("%d bytes, want %d to %d", n, tt.min, tt.max)
			}
			if !gjson.ValidBytes(tt.body) {
				t.Fatalf("not JSON: %.100s", tt.body)
			}
			r := gjson.ParseBytes(tt.body)
			if got := r.Get("#").Int(); got != tt.messages {
				t.Fatalf("%d messages, want %d", got, tt.messages)
			}
		})
	}
	sub := gjson.ParseBytes(subscribeMany("abc", 3, 200, subscribeBatch)).Get("0")
	if sub.Get("clientId").String() != "abc" || sub.Get("subscription.#").Int() != subscribeBatch ||
		sub.Get("subscription.0").String() != "/flood/3/200" {
		t.Fatalf("subscribe %s", sub.Raw)
	}
}

func TestEmitAttack(t *testing.T) {
	r := &AttackResult{runMeta: runMeta{Label: "attack-utf8"}, Scenario: "attack", Kind: "utf8", URL: "http://127.0.0.1:1/bayeux",
		OK: true, Workers: 8, DurationS: 10, ProbeUS: Latency{P50: 900, P99: 2500, Max: 4000, N: 200}, P99OK: true,
		Requests: 1000, RequestsPerS: 100, Outcomes: map[string]int64{"HTTP 200": 990, "HTTP 400": 10},
		Samples: map[string]string{"HTTP 400": "Bad request"}, RSSBaselineKiB: 10240, RSSPeakKiB: 40960,
		RSSAfterKiB: 12288, RSSLimitKiB: 30720, RSSRecovered: true}
	path := filepath.Join(t.TempDir(), "results.jsonl")
	var out bytes.Buffer
	for range 2 {
		if err := emitAttack(r, path, &out); err != nil {
			t.Fatal(err)
		}
	}
	text := out.String()
	for _, want := range []string{"== attack utf8", "p99 2.50ms", "outcome      990  HTTP 200", "(e.g. Bad request)", "recovered: yes"} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")
	if len(lines) != 2 || !strings.Contains(text, lines[0]+"\n") {
		t.Fatalf("file %q", file)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"scenario": "attack", "kind": "utf8", "label": "attack-utf8", "p99_under_1s": true,
		"rss_recovered": true, "rss_after_kib": 12288.0, "attack_requests_per_s": 100.0} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if o, _ := got["outcomes"].(map[string]any); o["HTTP 400"] != 10.0 {
		t.Errorf("outcomes %v", got["outcomes"])
	}

	r.Fatal = "no server"
	if err := emitAttack(r, "", io.Discard); err == nil || !strings.Contains(err.Error(), "no server") {
		t.Fatalf("a fatal result returned %v", err)
	}
}

// slowServer accepts connections on 127.0.0.1 and hands each, with a reader
// past its request's headers, to serve.
func slowServer(t *testing.T, serve func(net.Conn, *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			go func() {
				br := bufio.NewReader(conn)
				if _, err := http.ReadRequest(br); err == nil {
					serve(conn, br)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// refuse answers 429 and closes the connection, as bayeux does beyond
// --max-connections-per-ip.
func refuse(conn net.Conn) {
	fmt.Fprint(conn, "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 5\r\n\r\nslow\n")
	conn.Close()
}

func TestSlowBody(t *testing.T) {
	tests := []struct {
		name    string
		c       int           // even: no body; odd: one byte a second
		limit   time.Duration // the request time limit
		attack  time.Duration // how long the attack lasts
		serve   func(net.Conn, *bufio.Reader)
		key     string
		atLeast time.Duration // the outcome comes after this
	}{
		{"refused at once", 0, 5 * time.Second, 10 * time.Second, func(c net.Conn, _ *bufio.Reader) { refuse(c) }, "HTTP 429", 0},
		{"refused at once while it drips", 1, 5 * time.Second, 10 * time.Second, func(c net.Conn, _ *bufio.Reader) { refuse(c) }, "HTTP 429", 0},
		{"refused after the first byte", 1, 500 * time.Millisecond, 10 * time.Second, func(c net.Conn, br *bufio.Reader) {
			if _, err := br.ReadByte(); err == nil {
				refuse(c)
			}
		}, "HTTP 429 after the time limit", 900 * time.Millisecond},
		{"held", 0, 5 * time.Second, 300 * time.Millisecond, func(net.Conn, *bufio.Reader) {}, openAtEnd, 300 * time.Millisecond},
		{"held while it drips", 1, 5 * time.Second, 1500 * time.Millisecond, func(net.Conn, *bufio.Reader) {}, openAtEnd, 1500 * time.Millisecond},
		{"closed", 1, 5 * time.Second, 10 * time.Second, func(c net.Conn, _ *bufio.Reader) { c.Close() },
			"closed by the server without an answer", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &attackRun{cfg: &attackConfig{timeout: tt.limit}, host: slowServer(t, tt.serve), path: "/bayeux"}
			ctx, cancel := context.WithTimeout(context.Background(), tt.attack)
			defer cancel()
			start := time.Now()
			key, detail := a.slowBody(ctx, tt.c)
			if d := time.Since(start); key != tt.key || d < tt.atLeast || d > tt.atLeast+time.Second {
				t.Fatalf("outcome %q (%s) after %v; want %q after %v to %v", key, detail, d, tt.key, tt.atLeast, tt.atLeast+time.Second)
			}
		})
	}
}
