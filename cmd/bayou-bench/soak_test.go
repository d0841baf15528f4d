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
