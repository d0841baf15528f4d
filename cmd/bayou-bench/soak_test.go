package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"testing"
	"time"
)

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	url, apiURL, _ := bayouWithAPI(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	pp := httptest.NewServer(mux)
	t.Cleanup(pp.Close)
	cfg := &soakConfig{url: url, apiURL: apiURL, pprofURL: pp.URL + "/debug/pprof/", clients: 80, lpFrac: 0.25,
		churn: 0.05, unclean: 0.5, sharedChannels: 4, sharedRate: 20, personalRate: 60,
		duration: 4 * time.Second, sample: time.Second, tolerance: 0.1, concurrency: 8, serverPID: os.Getpid()}
	r := runSoak(context.Background(), cfg, &bytes.Buffer{})
	var buf bytes.Buffer
	printSoakText(&buf, r)
	if !r.OK || len(r.Samples) < 3 || len(r.Verdicts) != 4 || r.Lost != 0 || r.Dropped != 0 || r.Duplicated != 0 ||
		r.OutOfOrder != 0 || r.JoinFailed != 0 || r.Left < 8 || r.Joined < int64(cfg.clients)+8 || r.Steady < cfg.clients-4 ||
		r.Published < 200 || r.PublishFailed != 0 || r.Received == 0 || len(r.Errors) != 0 {
		t.Fatalf("soak:\n%s", buf.String())
	}
	for _, s := range r.Samples {
		if s.RSSKiB <= 0 || s.Goroutines <= 0 || s.Sessions <= 0 || s.Channels <= 0 {
			t.Fatalf("sample %+v:\n%s", s, buf.String())
		}
	}
}

func TestFlatness(t *testing.T) {
	mk := func(rss ...int64) []SoakSample {
		var ss []SoakSample
		for _, v := range rss {
			ss = append(ss, SoakSample{RSSKiB: v, Goroutines: 10, Sessions: -1, Channels: 0})
		}
		return ss
	}
	for _, tc := range []struct {
		name    string
		samples []SoakSample
		flat    bool
		change  float64
	}{
		{"warm-up ignored, flat", mk(10, 50, 100, 104, 100, 96), true, (98.0 - 102) / 102},
		{"growing", mk(100, 100, 100, 100, 120, 120), false, 0.2},
		{"within tolerance", mk(100, 100, 100, 100, 109, 109), true, 0.09},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := flatness(tc.samples, 0.1)
			// rss, goroutines (constant) and channels (0 throughout); sessions were not sampled.
			if len(v) != 3 || v[0].Series != "rss_kib" || v[0].Flat != tc.flat || !v[1].Flat || !v[2].Flat ||
				v[0].Change < tc.change-1e-9 || v[0].Change > tc.change+1e-9 {
				t.Fatalf("%+v", v)
			}
		})
	}
	if v := flatness(mk(1, 2), 0.1); v != nil {
		t.Fatalf("two samples: %+v", v)
	}
}

func TestGoroutineTotal(t *testing.T) {
	for in, want := range map[string]int64{
		"goroutine profile: total 1234\n1 @ 0x1\n": 1234,
		"goroutine profile: total 7":               7,
		"<html>":                                   -1,
		"":                                         -1,
	} {
		if got := goroutineTotal([]byte(in)); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
}

// TestSoakOwed checks the accounting of what steady clients are owed: the
// personal publishes acknowledged for them, and the shared ones sent after
// they joined, less what they received.
func TestSoakOwed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &soakRun{sh: &shared{ev: newEvents()}, sharedLog: [][]int64{
		{t0.UnixNano() + 1, t0.UnixNano() + 5, t0.UnixNano() + 9},
		{t0.UnixNano() + 2},
	}}
	mk := func(lp bool, shared int, joined, expect, personalGot, sharedGot int64) *soakClient {
		c := &soakClient{s: &subscriber{lp: lp}, shared: shared, joined: t0.UnixNano() + joined}
		c.s.expect.Store(expect)
		c.personalGot.Store(personalGot)
		c.sharedGot.Store(sharedGot)
		return c
	}
	for _, tc := range []struct {
		name  string
		c     *soakClient
		owed  int64
		event string
	}{
		{"all received", mk(false, 0, 0, 4, 4, 3), 0, ""},
		{"joined after two of the shared publishes", mk(false, 0, 6, 0, 0, 1), 0, ""},
		{"a shared one missing", mk(false, 0, 4, 2, 2, 1), 1, "steady WebSocket clients missing shared messages"},
		{"personal ones missing", mk(true, 1, 0, 5, 2, 1), 3, "steady long-polling clients missing personal messages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.sh.ev = newEvents()
			if got := r.owed([]*soakClient{tc.c}); got != tc.owed {
				t.Fatalf("owed %d, want %d", got, tc.owed)
			}
			r.explainLost([]*soakClient{tc.c}, t0)
			counts, _ := r.sh.ev.snapshot()
			if tc.event == "" && len(counts) != 0 || tc.event != "" && (len(counts) != 1 || counts[tc.event] != tc.owed) {
				t.Fatalf("events %v", counts)
			}
		})
	}
}

// TestSoakClientOutlivesChurn: a client that joined through the churn
// keeps receiving once the churn and the publishes stop (the steady
// clients are owed what was published before).
func TestSoakClientOutlivesChurn(t *testing.T) {
	url, apiURL, _ := bayouWithAPI(t)
	tg, err := newTarget(url, 4096)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := &soakConfig{url: url, apiURL: apiURL, sharedChannels: 1, lpFrac: 1}
	r := &soakRun{cfg: cfg, t: tg, sh: &shared{ev: newEvents()}, sharedLog: make([][]int64, 1), life: ctx}
	runCtx, stopRun := context.WithCancel(ctx)
	r.join(runCtx)
	stopRun()
	cs := r.pool.snapshot()
	if len(cs) != 1 || !cs[0].s.lp {
		t.Fatalf("clients %v", cs)
	}
	c := cs[0]
	body := appendPublish(nil, benchMsg{channel: c.s.channel, seq: 1, sent: time.Now().UnixNano(), pub: 1, measured: true})
	if _, err := postJSON(ctx, http.DefaultClient, apiURL+"publish", body, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); c.personalGot.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the client stopped polling when the churn stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.sh.stopping.Store(true)
	c.cancel()
	waitGroup(&r.wg, 5*time.Second)
}
