package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
)

// bayouWithAPI serves an in-process Bayou and its HTTP API; it returns the
// Bayeux URL, the API's URL and the Bayeux test server (whose connections
// a test may break).
func bayouWithAPI(t *testing.T) (string, string, *httptest.Server) {
	t.Helper()
	b, err := bayeux.New(bayeux.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b)
	apiSrv := httptest.NewServer(api.New(b, api.Config{}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
		apiSrv.Close()
		srv.Close()
	})
	return srv.URL + "/bayeux", apiSrv.URL + "/", srv
}

// TestMain lets the test binary stand for bayou-bench when it is started
// as a scale worker (scale --procs).
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		code, err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func smallScale(url, apiURL, via string) *scaleConfig {
	return &scaleConfig{urls: []string{url}, clients: 150, sources: 2, concurrency: 16, channel: "/users",
		via: via, apiURL: apiURL, pubs: 3, batch: 40, window: 8, deliverTimeout: 10 * time.Second,
		serverPIDs: []int{os.Getpid()}, hold: 20 * time.Second, baseline: time.Second, readBuf: 1024}
}

// checkRound fails unless every one of n clients got its message once.
func checkRound(t *testing.T, r *ScaleResult, i, n int) {
	t.Helper()
	var buf bytes.Buffer
	printScaleText(&buf, r)
	if len(r.Rounds) <= i {
		t.Fatalf("no round %d:\n%s", i+1, buf.String())
	}
	rd := r.Rounds[i]
	if !rd.AllDelivered || rd.Published != int64(n) || rd.PublishFailed != 0 || rd.Expected != int64(n) ||
		rd.Received != int64(n) || rd.Lost != 0 || rd.Duplicated != 0 || rd.LatencyUS.N != uint64(n) || rd.DeliveredS <= 0 {
		t.Fatalf("round %d:\n%s", i+1, buf.String())
	}
}

func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	url, apiURL, _ := bayouWithAPI(t)
	for _, tc := range []struct {
		via   string
		procs int
	}{{"api", 1}, {"ws", 1}, {"api", 3}} {
		t.Run(fmt.Sprintf("%s/procs=%d", tc.via, tc.procs), func(t *testing.T) {
			cfg := smallScale(url, apiURL, tc.via)
			cfg.channel = fmt.Sprintf("/users-%s-%d", tc.via, tc.procs)
			cfg.procs = tc.procs
			r := runScale(context.Background(), cfg, io.Discard)
			if !r.OK || r.Connected != cfg.clients || r.SetupPerS <= 0 || r.RSSAfterKiB == 0 || !r.FileLimitOK ||
				r.Sources != 2 || r.Procs != tc.procs || len(r.Errors) != 0 || len(r.Rounds) != 1 {
				t.Fatalf("%+v", r)
			}
			checkRound(t, r, 0, cfg.clients)
		})
	}
}

// TestScaleRestart breaks every client's socket (as a node's crash does):
// the clients subscribe again, the probe keeps measuring, and a second
// round reaches every client.
func TestScaleRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	url, apiURL, srv := bayouWithAPI(t)
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("procs=%d", procs), func(t *testing.T) {
			px := newBreaker(t, srv.Listener.Addr().String())
			cfg := smallScale("http://"+px.ln.Addr().String()+"/bayeux", apiURL, "api")
			cfg.clients, cfg.procs = 100, procs
			cfg.channel = fmt.Sprintf("/restart-%d", procs)
			cfg.probeSub, cfg.probePub = url, url
			cfg.restartCmd = "break every connection"
			cfg.restart = func(context.Context) error { px.breakAll(); return nil }
			r := runScale(context.Background(), cfg, io.Discard)
			checkRound(t, r, 0, cfg.clients)
			checkRound(t, r, 1, cfg.clients)
			rs := r.Restart
			if rs == nil || rs.Dropped < int64(cfg.clients) || rs.NotBack != 0 || rs.ResubscribeS <= 0 ||
				rs.ProbeBaseline.N == 0 || rs.ProbeSent == 0 {
				t.Fatalf("restart: %+v", rs)
			}
		})
	}
}

// breaker is a TCP proxy whose connections a test can break at once.
type breaker struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newBreaker(t *testing.T, backend string) *breaker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &breaker{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); b.breakAll(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			b.mu.Lock()
			b.conns = append(b.conns, c, s)
			b.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(s, c); s.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	return b
}

func (b *breaker) breakAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

func TestParseRedisInfo(t *testing.T) {
	st := newRedisStats()
	parseRedisInfo("# Commandstats\r\ncmdstat_publish:calls=30,usec=10,usec_per_call=0.33\r\n"+
		"cmdstat_info:calls=4,usec=1\r\ncmdstat_subscribe:calls=12,usec=3\r\n# Memory\r\nused_memory:123456\r\nused_memory_human:120K\r\n", st)
	if st.calls["publish"] != 30 || st.calls["subscribe"] != 12 || st.usedMemory != 123456 {
		t.Fatalf("%+v", st)
	}
	if st.usec["publish"] != 10 || st.usec["subscribe"] != 3 {
		t.Fatalf("%+v", st)
	}
	later := &redisStats{calls: map[string]int64{"publish": 60, "subscribe": 12, "info": 9, "hset": 5},
		usec: map[string]int64{"publish": 30, "subscribe": 3, "info": 50, "hset": 100}}
	d := commandsPer(st, later, 10)
	if d.PerOp != 3.5 || d.ByCmd["publish"] != 3 || d.ByCmd["hset"] != 0.5 || d.ByCmd["info"] != 0 ||
		d.USPerOp != 12 || d.USByCmd["hset"] != 10 || d.USByCmd["publish"] != 2 || d.USByCmd["info"] != 0 {
		t.Fatalf("%+v", d)
	}
}

func TestHistogramJSON(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{0, 90 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 2 * time.Second} {
		h.record(d)
	}
	b, err := h.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var back histogram
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if back != h {
		t.Fatalf("round trip of %s differs", b)
	}
	if err := back.UnmarshalJSON([]byte(`{"b":[[999999,1]]}`)); err == nil {
		t.Fatal("a bucket out of range was accepted")
	}
}
