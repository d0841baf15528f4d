package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// SoakResult is the outcome of a soak run, printed as one JSON line.
type SoakResult struct {
	runMeta
	Scenario  string  `json:"scenario"`
	URL       string  `json:"url"`
	OK        bool    `json:"ok"`
	Fatal     string  `json:"fatal,omitempty"`
	Clients   int     `json:"clients"`
	LPShare   float64 `json:"lp_share"`
	Churn     float64 `json:"churn_per_s"`
	Unclean   float64 `json:"unclean_share"`
	DurationS float64 `json:"duration_s"`
	SampleS   float64 `json:"sample_s"`
	Tolerance float64 `json:"tolerance"`
	FileLimit uint64  `json:"file_limit"`
	RampS     float64 `json:"ramp_s"`

	Joined        int64   `json:"joined"`
	Left          int64   `json:"left"`
	JoinFailed    int64   `json:"join_failed"`
	Dropped       int64   `json:"dropped"` // sockets that broke without the tool closing them
	Published     int64   `json:"published"`
	PublishFailed int64   `json:"publish_failed"`
	Steady        int     `json:"steady_clients"` // connected at the end, never told to leave
	DrainS        float64 `json:"drain_s"`        // waiting for what the steady clients were owed (at most 10 s)
	Received      int64   `json:"steady_received"`
	Lost          int64   `json:"steady_lost"`
	Duplicated    int64   `json:"steady_duplicated"`
	OutOfOrder    int64   `json:"steady_out_of_order"`

	Samples  []SoakSample `json:"samples"`
	Verdicts []Flatness   `json:"flatness"`
	Flat     bool         `json:"flat"`

	Errors       map[string]int64  `json:"errors,omitempty"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

// SoakSample is one sample of the server's size; -1: not available.
type SoakSample struct {
	T          float64 `json:"t_s"`
	RSSKiB     int64   `json:"rss_kib"`
	Goroutines int64   `json:"goroutines"`
	Sessions   int64   `json:"sessions"`
	Channels   int64   `json:"channels"`
	Active     int     `json:"tool_clients"`
	Joined     int64   `json:"joined"`
	Left       int64   `json:"left"`
}

func (s SoakSample) line() string {
	return fmt.Sprintf("t=%4.0fs  rss %7d KiB  goroutines %6d  sessions %6d  channels %6d  tool clients %6d  joined %6d  left %6d",
		s.T, s.RSSKiB, s.Goroutines, s.Sessions, s.Channels, s.Active, s.Joined, s.Left)
}

// Flatness compares a series' last third with its middle third.
type Flatness struct {
	Series string  `json:"series"`
	Middle float64 `json:"middle_mean"`
	Last   float64 `json:"last_mean"`
	Change float64 `json:"change"`
	Flat   bool    `json:"flat"`
}

// soakSeries are the sampled series judged for flatness.
var soakSeries = []struct {
	name string
	get  func(SoakSample) float64
}{
	{"rss_kib", func(s SoakSample) float64 { return float64(s.RSSKiB) }},
	{"goroutines", func(s SoakSample) float64 { return float64(s.Goroutines) }},
	{"sessions", func(s SoakSample) float64 { return float64(s.Sessions) }},
	{"channels", func(s SoakSample) float64 { return float64(s.Channels) }},
}

// soakSampler reads the server's size: RSS from /proc, sessions and
// channels from the HTTP API, goroutines from pprof.
type soakSampler struct {
	cfg *soakConfig
	hc  *http.Client
}

func newSoakSampler(cfg *soakConfig) *soakSampler {
	return &soakSampler{cfg: cfg, hc: &http.Client{Timeout: 10 * time.Second}}
}

func (s *soakSampler) take(ctx context.Context, elapsed time.Duration, active int, joined, left int64) SoakSample {
	sm := SoakSample{T: elapsed.Seconds(), RSSKiB: -1, Goroutines: -1, Sessions: -1, Channels: -1,
		Active: active, Joined: joined, Left: left}
	if rss, ok := procRSS(s.cfg.serverPID); ok {
		sm.RSSKiB = rss >> 10
	}
	api := strings.TrimSuffix(s.cfg.apiURL, "/")
	if b, err := s.get(ctx, api+"/clients"); err == nil {
		if v := gjson.GetBytes(b, "count"); v.Exists() {
			sm.Sessions = v.Int()
		}
	}
	if b, err := s.get(ctx, api+"/channels"); err == nil {
		if v := gjson.GetBytes(b, "channels"); v.IsArray() {
			sm.Channels = int64(len(v.Array()))
		}
	}
	if s.cfg.pprofURL != "" {
		if b, err := s.get(ctx, strings.TrimSuffix(s.cfg.pprofURL, "/")+"/goroutine?debug=1"); err == nil {
			sm.Goroutines = goroutineTotal(b)
		}
	}
	return sm
}

func (s *soakSampler) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// goroutineTotal reads "goroutine profile: total N" from the first line
// of a debug=1 goroutine profile; -1 if absent.
func goroutineTotal(b []byte) int64 {
	line, _, _ := strings.Cut(string(b), "\n")
	if v, ok := strings.CutPrefix(line, "goroutine profile: total "); ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return n
		}
	}
	return -1
}

func printSoakJSON(w io.Writer, r *SoakResult) {
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", b)
}

// printSoakText writes the series and the verdicts of r.
func printSoakText(w io.Writer, r *SoakResult) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "== soak  %s\n", r.URL)
	if r.Fatal != "" {
		fmt.Fprintf(bw, "   FAILED: %s\n", r.Fatal)
	}
	fmt.Fprintf(bw, "   %d clients (%.0f%% long-polling), churn %.1f%%/s (%.0f%% without disconnect), %gs sampled every %gs; ramp %.1fs\n",
		r.Clients, 100*r.LPShare, 100*r.Churn, 100*r.Unclean, r.DurationS, r.SampleS, r.RampS)
	for _, s := range r.Samples {
		fmt.Fprintf(bw, "   %s\n", s.line())
	}
	for _, v := range r.Verdicts {
		verdict := "FLAT"
		if !v.Flat {
			verdict = "NOT FLAT"
		}
		fmt.Fprintf(bw, "   %-10s middle third %10.0f  last third %10.0f  change %+6.1f%%  %s (±%.0f%%)\n",
			v.Series, v.Middle, v.Last, 100*v.Change, verdict, 100*r.Tolerance)
	}
	if len(r.Verdicts) == 0 {
		fmt.Fprintln(bw, "   flatness: not enough samples (need 3)")
	}
	fmt.Fprintf(bw, "   clients joined %d, left %d (join failures %d, dropped by the server %d); published %d (failed %d)\n",
		r.Joined, r.Left, r.JoinFailed, r.Dropped, r.Published, r.PublishFailed)
	fmt.Fprintf(bw, "   %d steady clients (connected throughout their lifetime, to the end): received %d, LOST %d, duplicated %d, out of order %d (after %.1fs of drain)\n",
		r.Steady, r.Received, r.Lost, r.Duplicated, r.OutOfOrder, r.DrainS)
	printErrors(bw, r.Errors, r.ErrorSamples)
}
