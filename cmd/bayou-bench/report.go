package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// The report reads the JSON lines of a comparison run and prints, for each
// scenario label, the servers side by side, their ratios, and the verdict
// of every target. Each cell aggregates the rounds (median by default; the
// per-round values are printed too).

// Scenario labels the comparison script uses.
const (
	lblFanout   = "fanout-ws"
	lblLP       = "fanout-lp20"
	lblLatency  = "fanout-20ps"
	lblPersonal = "personal-2000"
	lblIdle     = "idle-10k"
)

type resultSet map[string]map[string][]*Result // label → server → rounds

func readResults(paths []string) (resultSet, error) {
	rs := resultSet{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(line, "{") {
				continue
			}
			r := new(Result)
			if err := json.Unmarshal([]byte(line), r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if rs[r.Label] == nil {
				rs[r.Label] = map[string][]*Result{}
			}
			rs[r.Label][r.Server] = append(rs[r.Label][r.Server], r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// aggregate combines one metric over rounds. Failed runs are skipped.
func aggregate(rounds []*Result, metric func(*Result) float64, how string, lowerIsBetter bool) (float64, []float64, bool) {
	var vals []float64
	for _, r := range rounds {
		if r.OK && r.Fatal == "" {
			vals = append(vals, metric(r))
		}
	}
	if len(vals) == 0 {
		return 0, nil, false
	}
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	switch how {
	case "best":
		if lowerIsBetter {
			return s[0], vals, true
		}
		return s[len(s)-1], vals, true
	case "mean":
		sum := 0.0
		for _, v := range s {
			sum += v
		}
		return sum / float64(len(s)), vals, true
	default: // median
		n := len(s)
		if n%2 == 1 {
			return s[n/2], vals, true
		}
		return (s[n/2-1] + s[n/2]) / 2, vals, true
	}
}

type metricDef struct {
	name          string
	get           func(*Result) float64
	format        func(float64) string
	lowerIsBetter bool
}

var (
	mDelivered = metricDef{"delivered/s", func(r *Result) float64 { return r.DeliveredPerS }, fmtRate, false}
	mP50       = metricDef{"latency p50", func(r *Result) float64 { return r.LatencyUS.P50 }, fmtUS, true}
	mP99       = metricDef{"latency p99", func(r *Result) float64 { return r.LatencyUS.P99 }, fmtUS, true}
	mMax       = metricDef{"latency max", func(r *Result) float64 { return r.LatencyUS.Max }, fmtUS, true}
	mSrvCPU    = metricDef{"server CPU µs/delivery", func(r *Result) float64 { return r.ServerCPUPerDel }, fmtF2, true}
	mSrvCores  = metricDef{"server CPU cores", func(r *Result) float64 { return r.ServerCPU }, fmtF2, false}
	mToolCPU   = metricDef{"tool CPU cores", func(r *Result) float64 { return r.ToolCPU }, fmtF2, false}
	mOther     = metricDef{"other procs' CPU (noise)", func(r *Result) float64 { return r.OtherCPU }, fmtF2, true}
	mFrame     = metricDef{"msgs/frame", func(r *Result) float64 { return r.MsgsPerFrame }, fmtF1, false}
	mRSS       = metricDef{"RSS/client", func(r *Result) float64 { return r.RSSPerClientBytes }, fmtBytes, true}
	mHS        = metricDef{"handshake+subscribe/s", func(r *Result) float64 { return r.HandshakesPerS }, fmtRate, false}
	mLost      = metricDef{"lost+dup+out-of-order", func(r *Result) float64 {
		return float64(r.Lost + r.Duplicated + r.OutOfOrder)
	}, fmtInt, true}
	mDropped = metricDef{"dropped subscribers", func(r *Result) float64 { return float64(r.DroppedSubs) }, fmtInt, true}
)

func fmtF1(v float64) string  { return fmt.Sprintf("%.1f", v) }
func fmtF2(v float64) string  { return fmt.Sprintf("%.2f", v) }
func fmtInt(v float64) string { return fmt.Sprintf("%.0f", v) }
func fmtBytes(v float64) string {
	return fmt.Sprintf("%.2f KiB", v/1024)
}

var reportServers = []string{"faye", "bayou", "bayou-base", "bayou-history", "yardstick"}

type scenarioDef struct {
	label   string
	title   string
	metrics []metricDef
}

var reportScenarios = []scenarioDef{
	{lblFanout, "fan-out, 1,000 WebSocket subscribers, max rate", []metricDef{mDelivered, mP50, mP99, mLost, mDropped, mFrame, mSrvCores, mSrvCPU, mToolCPU, mOther}},
	{lblLP, "fan-out, 1,000 subscribers (20% long-polling), max rate", []metricDef{mDelivered, mP50, mP99, mLost, mDropped, mSrvCores, mSrvCPU, mToolCPU, mOther}},
	{lblLatency, "fan-out, 1,000 WebSocket subscribers, 20 publishes/s", []metricDef{mP50, mP99, mMax, mDelivered, mLost, mDropped, mSrvCPU, mOther}},
	{lblPersonal, "personal channels, 2,000 WebSocket subscribers, max rate", []metricDef{mDelivered, mP50, mP99, mLost, mDropped, mSrvCores, mSrvCPU, mToolCPU, mOther}},
	{lblIdle, "10,000 idle WebSocket clients", []metricDef{mRSS, mHS, mDropped, mSrvCores, mToolCPU, mOther}},
}

// target is one pass/fail criterion.
type targetDef struct {
	name  string
	check func(rs resultSet, how string) (pass bool, detail string)
}

func ratioTarget(label string, m metricDef, num, den string, min float64) func(resultSet, string) (bool, string) {
	return func(rs resultSet, how string) (bool, string) {
		a, _, okA := aggregate(rs[label][num], m.get, how, m.lowerIsBetter)
		b, _, okB := aggregate(rs[label][den], m.get, how, m.lowerIsBetter)
		if !okA || !okB || b == 0 {
			return false, "no data"
		}
		r := a / b
		return r >= min, fmt.Sprintf("%s/%s = %s / %s = %.2fx (need ≥ %gx)", num, den, m.format(a), m.format(b), r, min)
	}
}

func targets() []targetDef {
	return []targetDef{
		{"fan-out 1,000 WS, max rate: bayou ≥ 10x faye delivered/s", ratioTarget(lblFanout, mDelivered, "bayou", "faye", 10)},
		{"fan-out 1,000 WS, max rate: bayou ≥ 70% of the yardstick", ratioTarget(lblFanout, mDelivered, "bayou", "yardstick", 0.7)},
		{"fan-out 1,000 WS, max rate: 0 lost, 0 duplicated, in order (every bayou round)", func(rs resultSet, _ string) (bool, string) {
			runs := rs[lblFanout]["bayou"]
			if len(runs) == 0 {
				return false, "no data"
			}
			var l, d, o, dr int64
			for _, r := range runs {
				if !r.OK {
					return false, "a run failed: " + r.Fatal
				}
				l, d, o, dr = l+r.Lost, d+r.Duplicated, o+r.OutOfOrder, dr+r.DroppedSubs
			}
			return l == 0 && d == 0 && o == 0 && dr == 0,
				fmt.Sprintf("lost %d, duplicated %d, out of order %d, dropped subscribers %d over %d rounds", l, d, o, dr, len(runs))
		}},
		{"fan-out 1,000 WS on a channel with history: ≥ 80% of bayou without", ratioTarget(lblFanout, mDelivered, "bayou-history", "bayou", 0.8)},
		{"fan-out 20% long-polling, max rate: bayou ≥ 10x faye", ratioTarget(lblLP, mDelivered, "bayou", "faye", 10)},
		{"fan-out at 20 publishes/s: bayou p99 ≤ 1.2x the yardstick's", p99Target(lblLatency, 1.2)},
		{"personal channels, 2,000 subscribers: bayou ≥ 2.5x faye", ratioTarget(lblPersonal, mDelivered, "bayou", "faye", 2.5)},
		{"personal channels, 2,000 subscribers: bayou ≥ 0.95x the yardstick", ratioTarget(lblPersonal, mDelivered, "bayou", "yardstick", 0.95)},
		{"personal channels, 2,000 subscribers: bayou p99 ≤ 1.5x the yardstick's", p99Target(lblPersonal, 1.5)},
		{"10,000 idle WS clients: bayou ≤ 8 KiB RSS per client", func(rs resultSet, how string) (bool, string) {
			a, _, ok := aggregate(rs[lblIdle]["bayou"], mRSS.get, how, true)
			if !ok {
				return false, "no data"
			}
			return a <= 8192, fmt.Sprintf("%s per client (need ≤ 8 KiB)", fmtBytes(a))
		}},
		{"10,000 idle WS clients: bayou handshake+subscribe/s ≥ 2.5x faye", ratioTarget(lblIdle, mHS, "bayou", "faye", 2.5)},
	}
}

// p99Target is the target that bayou's p99 latency in scenario label is at
// most limit times the yardstick's.
func p99Target(label string, limit float64) func(resultSet, string) (bool, string) {
	return func(rs resultSet, how string) (bool, string) {
		a, _, okA := aggregate(rs[label]["bayou"], mP99.get, how, true)
		b, _, okB := aggregate(rs[label]["yardstick"], mP99.get, how, true)
		if !okA || !okB || b == 0 {
			return false, "no data"
		}
		return a <= limit*b, fmt.Sprintf("p99 bayou %s vs yardstick %s = %.2fx (need ≤ %.2gx)", fmtUS(a), fmtUS(b), a/b, limit)
	}
}

func runReport(args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	how := fs.String("agg", "median", "how rounds combine: median, mean or best")
	strict := fs.Bool("strict", false, "exit with status 1 when a target fails")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() == 0 {
		return 2, errors.New("report: name the JSON result files")
	}
	rs, err := readResults(fs.Args())
	if err != nil {
		return 1, err
	}
	failed := printReport(stdout, rs, *how)
	if failed > 0 && *strict {
		return 1, nil
	}
	return 0, nil
}

// printReport prints the table and the targets; it returns how many
// targets failed.
func printReport(w io.Writer, rs resultSet, how string) int {
	fmt.Fprintf(w, "\nComparison (%s of rounds; per-round values in brackets)\n", how)
	for _, sc := range reportScenarios {
		byServer := rs[sc.label]
		if len(byServer) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s  [%s]\n", sc.title, sc.label)
		fmt.Fprintf(w, "  %-24s", "metric")
		var present []string
		for _, s := range reportServers {
			if len(byServer[s]) > 0 {
				present = append(present, s)
				fmt.Fprintf(w, " %-30s", s)
			}
		}
		hasFaye, hasYard := len(byServer["faye"]) > 0, len(byServer["yardstick"]) > 0
		hasBase := len(byServer["bayou-base"]) > 0
		if hasFaye {
			fmt.Fprintf(w, " %-12s", "bayou/faye")
		}
		if hasBase {
			fmt.Fprintf(w, " %-12s", "bayou/base")
		}
		if hasYard {
			fmt.Fprintf(w, " %-12s", "bayou/yard")
		}
		fmt.Fprintln(w)
		for _, m := range sc.metrics {
			fmt.Fprintf(w, "  %-24s", m.name)
			vals := map[string]float64{}
			oks := map[string]bool{}
			for _, s := range present {
				v, all, ok := aggregate(byServer[s], m.get, how, m.lowerIsBetter)
				vals[s], oks[s] = v, ok
				cell := "failed"
				if ok {
					parts := make([]string, len(all))
					for i, x := range all {
						parts[i] = m.format(x)
					}
					cell = m.format(v)
					if len(all) > 1 {
						cell += " [" + strings.Join(parts, " ") + "]"
					}
				}
				fmt.Fprintf(w, " %-30s", cell)
			}
			ratio := func(o string) string {
				if !oks["bayou"] || !oks[o] || vals[o] == 0 || math.IsNaN(vals["bayou"]/vals[o]) {
					return "-"
				}
				return fmt.Sprintf("%.2fx", vals["bayou"]/vals[o])
			}
			if hasFaye {
				fmt.Fprintf(w, " %-12s", ratio("faye"))
			}
			if hasBase {
				fmt.Fprintf(w, " %-12s", ratio("bayou-base"))
			}
			if hasYard {
				fmt.Fprintf(w, " %-12s", ratio("yardstick"))
			}
			fmt.Fprintln(w)
		}
		// Errors seen by any run of this scenario.
		for _, s := range present {
			for _, r := range byServer[s] {
				if r.Fatal != "" {
					fmt.Fprintf(w, "  ! %s round %d FAILED: %s\n", s, r.Round, r.Fatal)
				}
				keys := make([]string, 0, len(r.Errors))
				for k := range r.Errors {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "  ! %s round %d: %d x %s", s, r.Round, r.Errors[k], k)
					if smp := r.ErrorSamples[k]; smp != "" {
						fmt.Fprintf(w, " (e.g. %.160s)", strings.ReplaceAll(smp, "\n", " "))
					}
					fmt.Fprintln(w)
				}
			}
		}
	}
	fmt.Fprintf(w, "\nTargets\n")
	failed := 0
	ts := targets()
	for _, t := range ts {
		pass, detail := t.check(rs, how)
		verdict := "PASS"
		if !pass {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", verdict, t.name, detail)
	}
	fmt.Fprintf(w, "\n%d of %d targets passed\n", len(ts)-failed, len(ts))
	return failed
}
