package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func startYardstick(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(newYardstick(25*time.Second, io.Discard))
	t.Cleanup(srv.Close)
	return srv.URL + "/bayeux"
}

func startBayou(t *testing.T) string {
	t.Helper()
	b, err := bayeux.New(bayeux.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return bayeuxtest.Serve(t, b, b.Shutdown).URL + "/bayeux"
}

func smallLoad(url, scenario string) *loadConfig {
	return &loadConfig{
		scenario: scenario, personal: scenario == "personal", url: url,
		subs: 20, publishers: 2, window: 4, payload: 10,
		warmup: 200 * time.Millisecond, duration: 500 * time.Millisecond, drain: 3 * time.Second,
		channel: "/t/fan", maxLag: 16, stallTimeout: time.Second, concurrency: 4, readBuf: 4096,
		serverPID: os.Getpid(),
	}
}

func checkClean(t *testing.T, r *Result) {
	t.Helper()
	var buf bytes.Buffer
	printText(&buf, r)
	if !r.OK || r.Fatal != "" || r.Published == 0 || r.Lost != 0 || r.Duplicated != 0 || r.OutOfOrder != 0 ||
		r.DroppedSubs != 0 || len(r.Errors) != 0 || r.Expected != r.Received || r.LatencyUS.N == 0 {
		t.Fatalf("unexpected result:\n%s", buf.String())
	}
}

func TestLoadAgainstYardstick(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	url := startYardstick(t)
	for _, sc := range []string{"fanout", "personal"} {
		t.Run(sc, func(t *testing.T) {
			cfg := smallLoad(url, sc)
			cfg.channel = "/t/" + sc
			r := runLoad(context.Background(), cfg)
			checkClean(t, r)
			if sc == "fanout" && r.Expected != r.Published*int64(cfg.subs) {
				t.Fatalf("expected %d for %d publishes to %d subscribers", r.Expected, r.Published, cfg.subs)
			}
		})
	}
	t.Run("fixed rate", func(t *testing.T) {
		cfg := smallLoad(url, "fanout")
		cfg.channel, cfg.rate, cfg.publishers = "/t/rate", 40, 1
		cfg.duration = time.Second
		r := runLoad(context.Background(), cfg)
		checkClean(t, r)
		if r.Published < 30 || r.Published > 50 {
			t.Fatalf("published %d in 1s at 40/s", r.Published)
		}
	})
}

func TestLoadAgainstBayou(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	url := startBayou(t)
	t.Run("fanout with long-polling", func(t *testing.T) {
		cfg := smallLoad(url, "fanout")
		cfg.lpFrac = 0.25
		r := runLoad(context.Background(), cfg)
		checkClean(t, r)
		if r.LPSubscribers != 5 {
			t.Fatalf("lp subscribers %d", r.LPSubscribers)
		}
	})
	t.Run("personal over HTTP publishes", func(t *testing.T) {
		cfg := smallLoad(url, "personal")
		cfg.pubHTTP = true
		checkClean(t, runLoad(context.Background(), cfg))
	})
	t.Run("idle", func(t *testing.T) {
		r := runIdle(context.Background(), &idleConfig{url: url, clients: 50, concurrency: 8, readBuf: 1024, serverPID: os.Getpid()})
		if !r.OK || r.Connected != 50 || r.HandshakesPerS <= 0 || r.RSSAfterKiB == 0 || len(r.Errors) != 0 {
			t.Fatalf("idle: %+v", r)
		}
	})
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/r.jsonl"
	var buf bytes.Buffer
	mk := func(label, server string, round int, r Result) {
		r.Label, r.Server, r.Round, r.OK = label, server, round, true
		printJSON(&buf, &r)
	}
	for round := 1; round <= 2; round++ {
		mk(lblFanout, "faye", round, Result{DeliveredPerS: 50e3})
		mk(lblFanout, "bayou", round, Result{DeliveredPerS: 800e3})
		mk(lblFanout, "yardstick", round, Result{DeliveredPerS: 1000e3})
		mk(lblFanout, "bayou-history", round, Result{DeliveredPerS: 700e3})
		mk(lblLP, "faye", round, Result{DeliveredPerS: 40e3})
		mk(lblLP, "bayou", round, Result{DeliveredPerS: 200e3})
		mk(lblLatency, "bayou", round, Result{LatencyUS: Latency{P99: 1100}})
		mk(lblLatency, "yardstick", round, Result{LatencyUS: Latency{P99: 1000}})
		mk(lblPersonal, "faye", round, Result{DeliveredPerS: 10e3})
		mk(lblPersonal, "bayou", round, Result{DeliveredPerS: 30e3, LatencyUS: Latency{P99: 2000}})
		mk(lblPersonal, "yardstick", round, Result{DeliveredPerS: 40e3, LatencyUS: Latency{P99: 1000}})
		mk(lblIdle, "faye", round, Result{RSSPerClientBytes: 13000, HandshakesPerS: 2000})
		mk(lblIdle, "bayou", round, Result{RSSPerClientBytes: 9000, HandshakesPerS: 6000})
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := run(context.Background(), []string{"report", path}, &out, io.Discard)
	if err != nil || code != 0 {
		t.Fatalf("report: %d %v", code, err)
	}
	s := out.String()
	for _, want := range []string{
		"[PASS] fan-out 1,000 WS, max rate: bayou ≥ 10x faye",
		"[PASS] fan-out 1,000 WS, max rate: bayou ≥ 70% of the yardstick",
		"[FAIL] fan-out 20% long-polling",
		"[PASS] fan-out at 20 publishes/s",
		"[PASS] personal channels, 2,000 subscribers: bayou ≥ 2.5x faye",
		"[FAIL] personal channels, 2,000 subscribers: bayou ≥ 0.95x the yardstick",
		"[FAIL] personal channels, 2,000 subscribers: bayou p99 ≤ 1.5x the yardstick's",
		"[FAIL] 10,000 idle WS clients: bayou ≤ 8 KiB",
		"[PASS] 10,000 idle WS clients: bayou handshake",
		"[PASS] fan-out 1,000 WS on a channel with history",
		"bayou-history/bayou = 700.0k / 800.0k = 0.88x",
		"16.00x",
		"7 of 11 targets passed",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}
