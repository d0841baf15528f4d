package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ScaleResult is the outcome of a scale run, printed as one JSON line.
type ScaleResult struct {
	runMeta
	Scenario string   `json:"scenario"`
	URLs     []string `json:"urls"`
	OK       bool     `json:"ok"`
	Fatal    string   `json:"fatal,omitempty"`

	Clients     int    `json:"clients"`
	Connected   int    `json:"connected"`
	Sources     int    `json:"source_addresses"` // per process
	Procs       int    `json:"procs"`
	FileLimit   uint64 `json:"file_limit"`
	FileLimitOK bool   `json:"file_limit_ok"`
	ServerFiles string `json:"server_file_limits,omitempty"`

	SetupS            float64 `json:"setup_s"`
	SetupPerS         float64 `json:"handshake_subscribe_per_s"`
	ToolCPU           float64 `json:"tool_cpu_cores"`
	ServerCPU         float64 `json:"server_cpu_cores,omitempty"`
	RSSBeforeKiB      int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB       int64   `json:"rss_after_kib,omitempty"`
	RSSPerClientBytes float64 `json:"rss_per_client_bytes,omitempty"`

	PublishVia string       `json:"publish_via"`
	Publishers int          `json:"publishers"`
	Rounds     []ScaleRound `json:"rounds"`

	Redis   *RedisCost   `json:"redis,omitempty"`
	Restart *RestartCost `json:"restart,omitempty"`

	Errors       map[string]int64  `json:"errors,omitempty"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

// ScaleRound is one round of one publish to every client.
type ScaleRound struct {
	Name          string  `json:"name"`
	Published     int64   `json:"published"`
	PublishFailed int64   `json:"publish_failed"`
	PublishS      float64 `json:"publish_s"`
	Expected      int64   `json:"expected"`
	Received      int64   `json:"received"`
	Lost          int64   `json:"lost"`
	Duplicated    int64   `json:"duplicated"`
	AllDelivered  bool    `json:"all_delivered"`
	DeliveredS    float64 `json:"all_delivered_s"` // first publish sent to last expected delivery
	LatencyUS     Latency `json:"latency_us"`
}

// RedisCost is what the cluster's Redis did per operation.
type RedisCost struct {
	Subscribe          *redisDelta `json:"per_subscribe"`
	Publish            *redisDelta `json:"per_publish"`
	Resubscribe        *redisDelta `json:"per_resubscribe,omitempty"`
	Idle               *redisDelta `json:"idle_per_s"` // while the clients sit idle after the ramp
	UsedMemoryBefore   int64       `json:"used_memory_before"`
	UsedMemoryAfter    int64       `json:"used_memory_after"`
	MemPerChannelBytes float64     `json:"memory_per_channel_bytes"`
}

// RestartCost is what one node's restart cost: its clients' re-subscribe
// and the latency of a probe through two other nodes meanwhile.
type RestartCost struct {
	Dropped       int64   `json:"dropped"`
	Resubscribed  int64   `json:"resubscribed"`
	NotBack       int64   `json:"not_back"`
	ResubscribeS  float64 `json:"resubscribe_s"` // kill to the last re-subscribe
	ResubPerS     float64 `json:"resubscribes_per_s"`
	ProbeBaseline Latency `json:"probe_before_us"`
	ProbeDuring   Latency `json:"probe_during_us"`
	ProbeSent     int     `json:"probe_sent"`
	ProbeLost     int     `json:"probe_lost"`
}

func printScaleJSON(w io.Writer, r *ScaleResult) {
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", b)
}

func fmtLatency(l Latency) string {
	return fmt.Sprintf("p50 %s  p99 %s  max %s  (%d samples)", fmtUS(l.P50), fmtUS(l.P99), fmtUS(l.Max), l.N)
}

// fmtByCmd lists the commands per operation, most first.
func fmtByCmd(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]] > m[names[j]] })
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.3f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// printScaleText writes the human-readable summary of r.
func printScaleText(w io.Writer, r *ScaleResult) {
	fmt.Fprintf(w, "== scale  %d node(s): %s\n", len(r.URLs), strings.Join(r.URLs, " "))
	if r.Fatal != "" {
		fmt.Fprintf(w, "   FAILED: %s\n", r.Fatal)
	}
	lim := "enough"
	if !r.FileLimitOK {
		lim = "TOO LOW for this run (hard limit)"
	}
	fmt.Fprintf(w, "   clients %d connected+subscribed of %d, in %d process(es) with %d source address(es) each; tool's file limit %d (%s)\n",
		r.Connected, r.Clients, r.Procs, r.Sources, r.FileLimit, lim)
	if r.ServerFiles != "" {
		fmt.Fprintf(w, "   servers' file limits: %s\n", r.ServerFiles)
	}
	fmt.Fprintf(w, "   ramp %.1fs: %s handshake+subscribe/s; CPU: tool %.2f cores, servers %.2f cores\n",
		r.SetupS, fmtRate(r.SetupPerS), r.ToolCPU, r.ServerCPU)
	if r.RSSAfterKiB > 0 {
		fmt.Fprintf(w, "   server RSS %d KiB -> %d KiB: %.0f bytes (%.2f KiB) per client\n",
			r.RSSBeforeKiB, r.RSSAfterKiB, r.RSSPerClientBytes, r.RSSPerClientBytes/1024)
	}
	for _, rd := range r.Rounds {
		all := "NOT every client got its message"
		if rd.AllDelivered {
			all = fmt.Sprintf("every client had its message %.2fs after the first publish", rd.DeliveredS)
		}
		fmt.Fprintf(w, "   round %q via %s (%d publishers): published %d (failed %d) in %.2fs; %s\n",
			rd.Name, r.PublishVia, r.Publishers, rd.Published, rd.PublishFailed, rd.PublishS, all)
		fmt.Fprintf(w, "      expected %d  received %d  lost %d  duplicated %d; latency %s\n",
			rd.Expected, rd.Received, rd.Lost, rd.Duplicated, fmtLatency(rd.LatencyUS))
	}
	if rc := r.Redis; rc != nil {
		for _, d := range []struct {
			what string
			d    *redisDelta
		}{{"subscribe (handshake to subscribed)", rc.Subscribe}, {"second while idle", rc.Idle},
			{"publish", rc.Publish}, {"re-subscribe after the restart", rc.Resubscribe}} {
			if d.d == nil {
				continue
			}
			fmt.Fprintf(w, "   redis per %s: %.2f commands (%s); %.1f µs of Redis time (%s)\n",
				d.what, d.d.PerOp, fmtByCmd(d.d.ByCmd), d.d.USPerOp, fmtByCmd(d.d.USByCmd))
		}
		fmt.Fprintf(w, "   redis: used_memory %d -> %d bytes: %.0f bytes per channel\n", rc.UsedMemoryBefore, rc.UsedMemoryAfter, rc.MemPerChannelBytes)
	}
	if rs := r.Restart; rs != nil {
		fmt.Fprintf(w, "   restart: %d clients dropped, %d re-subscribed (%d not back) %.2fs after the kill (%s re-subscribes/s)\n",
			rs.Dropped, rs.Resubscribed, rs.NotBack, rs.ResubscribeS, fmtRate(rs.ResubPerS))
		fmt.Fprintf(w, "   probe through two other nodes: before %s\n", fmtLatency(rs.ProbeBaseline))
		fmt.Fprintf(w, "   probe during the re-subscribe: %s; %d of %d probes lost\n", fmtLatency(rs.ProbeDuring), rs.ProbeLost, rs.ProbeSent)
	}
	printErrors(w, r.Errors, r.ErrorSamples)
}

// printErrors lists the errors of a run, or says there were none.
func printErrors(w io.Writer, errs map[string]int64, samples map[string]string) {
	if len(errs) == 0 {
		fmt.Fprintln(w, "   errors: none")
		return
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "   ERROR x%d %s", errs[k], k)
		if s := samples[k]; s != "" {
			fmt.Fprintf(w, ": %s", strings.ReplaceAll(s, "\n", " "))
		}
		fmt.Fprintln(w)
	}
}
