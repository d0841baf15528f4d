package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The attack mode's results: one AttackResult per kind, with the names of
// the attack's outcomes and the server's RSS readings and their verdict,
// printed as text and as a JSON line as each attack ends, then a table of
// them all.

// AttackResult is one attack kind's outcome, printed as one JSON line.
type AttackResult struct {
	runMeta
	Scenario  string  `json:"scenario"` // "attack"
	Kind      string  `json:"kind"`
	URL       string  `json:"url"`
	OK        bool    `json:"ok"`
	Fatal     string  `json:"fatal,omitempty"`
	Workers   int     `json:"workers"`
	DurationS float64 `json:"duration_s"`

	ProbeUS      Latency `json:"probe_handshake_us"` // failed probes count as the request time limit
	ProbesFailed int64   `json:"probes_failed"`
	P99OK        bool    `json:"p99_under_1s"`

	Requests     int64             `json:"attack_requests"`
	RequestsPerS float64           `json:"attack_requests_per_s"`
	Outcomes     map[string]int64  `json:"outcomes"`
	Samples      map[string]string `json:"outcome_samples,omitempty"`
	Subscribers  int               `json:"subscribers,omitempty"` // utf8: listening on /x
	Deliveries   int64             `json:"deliveries,omitempty"`
	DroppedSubs  int64             `json:"dropped_subscribers,omitempty"`

	ServerCPU      float64 `json:"server_cpu_cores"`
	ToolCPU        float64 `json:"tool_cpu_cores"`
	RSSBaselineKiB int64   `json:"rss_baseline_kib"`
	RSSPeakKiB     int64   `json:"rss_peak_kib"`
	RSSAfterKiB    int64   `json:"rss_after_kib"` // at the end of the wait, recovered or not
	RSSLimitKiB    int64   `json:"rss_limit_kib"` // recovered: after ≤ limit
	RecoverWaitS   float64 `json:"recover_wait_s"`
	RSSRecovered   bool    `json:"rss_recovered"`

	Errors       map[string]int64  `json:"errors,omitempty"` // the probe's and the subscribers'
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

// replyOutcome names the outcome of an HTTP answer: its status, and the
// code of the first Bayeux error it holds ("HTTP 200 error 405"), with the
// error or the body as its detail.
func replyOutcome(status int, body []byte) (string, string) {
	key := "HTTP " + strconv.Itoa(status)
	if status != http.StatusOK {
		line, _, _ := bytes.Cut(bytes.TrimSpace(body), []byte("\n"))
		return key, string(line)
	}
	var it frameIter
	var f msgFields
	it.reset(body)
	for it.next(&f) {
		if f.successful == 0 {
			code, _, _ := strings.Cut(string(f.errText), ":")
			return key + " error " + code, string(f.errText)
		}
	}
	return key, ""
}

// errOutcome names the outcome of a request that got no answer.
func errOutcome(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return "no answer within the time limit"
	}
	return "connection error"
}

// openAtEnd is the outcome of a held connection cut by the end of the attack.
const openAtEnd = "still open at the end"

// connOutcome names how a held connection ended without an answer: cut
// by the end of the attack, or by the server.
func connOutcome(ctx context.Context, err error) (string, string) {
	if ctx.Err() != nil {
		return openAtEnd, ""
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "closed by the server without an answer", err.Error()
	}
	return errOutcome(err), err.Error()
}

// samplePeak returns the highest RSS of process pid (at least base), read
// every 100 ms until ctx ends.
func samplePeak(ctx context.Context, pid int, base int64) int64 {
	peak := base
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return peak
		case <-tick.C:
			if rss, ok := procRSS(pid); ok {
				peak = max(peak, rss)
			}
		}
	}
}

// rssLimit is the RSS under which a server whose baseline was base has
// recovered: within max(20 MiB, 25 %) of it.
func rssLimit(base int64) int64 { return base + max(20<<20, base/4) }

// waitRecovery reads the RSS of process pid every second, for at most
// wait, until it is back under rssLimit(base). It returns the last
// reading, the highest, the time waited and whether it came back.
func waitRecovery(ctx context.Context, pid int, base int64, wait time.Duration) (last, peak int64, waited time.Duration, ok bool) {
	start := time.Now()
	last, peak = base, base
	for {
		rss, read := procRSS(pid)
		if !read {
			return last, peak, time.Since(start), false // the server is gone
		}
		last, peak = rss, max(peak, rss)
		if rss <= rssLimit(base) {
			return last, peak, time.Since(start), true
		}
		if time.Since(start)+time.Second > wait || !pause(ctx, time.Second) {
			return last, peak, time.Since(start), false
		}
	}
}

// emitAttack prints r as text and as a JSON line, also appended to
// jsonPath when set. It returns r's fatal error, or the file's.
func emitAttack(r *AttackResult, jsonPath string, stdout io.Writer) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode the result: %w", err)
	}
	line = append(line, '\n')
	fatal := ""
	if r.Fatal != "" {
		fatal = fmt.Sprintf("attack %s: %s", r.Kind, r.Fatal)
	}
	return emitLine(stdout, jsonPath, fatal,
		func(w io.Writer) { printAttackText(w, r) }, func(w io.Writer) { _, _ = w.Write(line) })
}

// mib formats KiB as MiB.
func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// verdict formats a pass/fail.
func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// printCounts prints counts, most frequent first, one a line, with their
// samples.
func printCounts(w io.Writer, title string, counts map[string]int64, samples map[string]string) {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "   %s %8d  %s", title, counts[k], k)
		if s := samples[k]; s != "" {
			fmt.Fprintf(w, "  (e.g. %.120s)", strings.ReplaceAll(s, "\n", " "))
		}
		fmt.Fprintln(w)
	}
}

// printAttackText writes the human-readable summary of r.
func printAttackText(w io.Writer, r *AttackResult) {
	fmt.Fprintf(w, "== attack %s  %s  (%d workers, %gs; %s)\n", r.Kind, r.URL, r.Workers, r.DurationS, r.Label)
	if r.Fatal != "" {
		fmt.Fprintf(w, "   FAILED: %s\n", r.Fatal)
		return
	}
	l := r.ProbeUS
	fmt.Fprintf(w, "   probe handshakes: p50 %s  p99 %s  max %s  (%d probes, %d failed)  p99 < 1s: %s\n",
		fmtUS(l.P50), fmtUS(l.P99), fmtUS(l.Max), l.N, r.ProbesFailed, verdict(r.P99OK))
	fmt.Fprintf(w, "   attack: %s requests/s (%d in all); CPU: server %.2f cores, tool %.2f cores\n",
		fmtRate(r.RequestsPerS), r.Requests, r.ServerCPU, r.ToolCPU)
	printCounts(w, "outcome", r.Outcomes, r.Samples)
	if r.Subscribers > 0 {
		fmt.Fprintf(w, "   subscribers on /x: %d, %d deliveries, %d dropped\n", r.Subscribers, r.Deliveries, r.DroppedSubs)
	}
	fmt.Fprintf(w, "   server RSS: baseline %s, peak %s, after %s (%.0fs after the attack; limit %s)  recovered: %s\n",
		mib(r.RSSBaselineKiB), mib(r.RSSPeakKiB), mib(r.RSSAfterKiB), r.RecoverWaitS, mib(r.RSSLimitKiB), verdict(r.RSSRecovered))
	printCounts(w, "ERROR", r.Errors, r.ErrorSamples)
}

// printAttackTable writes one line per attack kind.
func printAttackTable(w io.Writer, rs []*AttackResult) {
	fmt.Fprintf(w, "\n%-12s %9s %9s %9s %7s %9s %8s %30s %7s %9s\n", "attack", "probe p50", "p99", "max", "failed",
		"req/s", "srv CPU", "RSS MiB base / peak / after", "p99<1s", "RSS back")
	for _, r := range rs {
		if r.Fatal != "" {
			fmt.Fprintf(w, "%-12s FAILED: %s\n", r.Kind, r.Fatal)
			continue
		}
		rss := fmt.Sprintf("%.1f / %.1f / %.1f", float64(r.RSSBaselineKiB)/1024, float64(r.RSSPeakKiB)/1024, float64(r.RSSAfterKiB)/1024)
		fmt.Fprintf(w, "%-12s %9s %9s %9s %7d %9s %8.2f %30s %7s %9s\n", r.Kind, fmtUS(r.ProbeUS.P50), fmtUS(r.ProbeUS.P99),
			fmtUS(r.ProbeUS.Max), r.ProbesFailed, fmtRate(r.RequestsPerS), r.ServerCPU, rss, verdict(r.P99OK), verdict(r.RSSRecovered))
	}
}
