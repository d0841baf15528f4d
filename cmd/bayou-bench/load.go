package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig describes a fan-out or personal-channels run.
type loadConfig struct {
	scenario     string
	url          string
	pubURL       string // publishers' URL when not url (another cluster node)
	subs         int
	lpFrac       float64
	publishers   int
	rate         float64 // publishes per second in total; 0: as fast as the window allows
	window       int     // unacknowledged publishes per WebSocket publisher
	pubHTTP      bool
	warmup       time.Duration
	duration     time.Duration
	drain        time.Duration
	payload      int
	channel      string
	personal     bool
	maxLag       int // publishes per subscriber not yet delivered (flow control); 0: off
	stallTimeout time.Duration
	concurrency  int
	readBuf      int
	serverPID    int
	meta         runMeta
}

// runMeta labels a result for the comparison report.
type runMeta struct {
	Server string `json:"server,omitempty"`
	Round  int    `json:"round,omitempty"`
	Label  string `json:"label,omitempty"`
}

// Latency is a latency summary in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	N    uint64  `json:"samples"`
}

// Result is one run's outcome, printed as one JSON line.
type Result struct {
	runMeta
	Scenario string `json:"scenario"`
	URL      string `json:"url"`
	OK       bool   `json:"ok"`
	Fatal    string `json:"fatal,omitempty"`

	// load runs
	Subscribers     int     `json:"subscribers,omitempty"`
	LPSubscribers   int     `json:"lp_subscribers,omitempty"`
	Publishers      int     `json:"publishers,omitempty"`
	PublishVia      string  `json:"publish_via,omitempty"`
	TargetRate      float64 `json:"target_rate,omitempty"`
	WarmupS         float64 `json:"warmup_s,omitempty"`
	DurationS       float64 `json:"duration_s,omitempty"`
	Published       int64   `json:"published"`
	PublishFailed   int64   `json:"publish_failed"`
	Expected        int64   `json:"expected"`
	Received        int64   `json:"received"`
	Lost            int64   `json:"lost"`
	Duplicated      int64   `json:"duplicated"`
	OutOfOrder      int64   `json:"out_of_order"`
	Foreign         int64   `json:"foreign"`
	DeliveredPerS   float64 `json:"delivered_per_s"`
	PublishedPerS   float64 `json:"published_per_s"`
	MsgsPerFrame    float64 `json:"msgs_per_frame,omitempty"`
	LatencyUS       Latency `json:"latency_us"`
	Stalls          int64   `json:"stalls"`
	DroppedSubs     int64   `json:"dropped_subscribers"`
	SetupPerS       float64 `json:"setup_per_s,omitempty"`
	ToolCPU         float64 `json:"tool_cpu_cores"`
	ServerCPU       float64 `json:"server_cpu_cores,omitempty"`
	ServerCPUPerDel float64 `json:"server_cpu_us_per_delivery,omitempty"`
	OtherCPU        float64 `json:"other_cpu_cores"` // every other process on the machine: noise

	// idle runs
	Clients           int     `json:"clients,omitempty"`
	Connected         int     `json:"connected,omitempty"`
	HandshakesPerS    float64 `json:"handshakes_per_s,omitempty"`
	RSSBeforeKiB      int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB       int64   `json:"rss_after_kib,omitempty"`
	RSSPerClientBytes float64 `json:"rss_per_client_bytes,omitempty"`

	Errors       map[string]int64  `json:"errors,omitempty"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// setupAll subscribes the subscriber of every item (sub gives it) with n
// concurrent workers and calls start for each that made it; failed ones
// are reported and left out. It returns the items that made it.
func setupAll[T any](ctx context.Context, items []T, n int, ev *events, sub func(T) *subscriber, start func(T)) []T {
	if n < 1 {
		n = 1
	}
	var next atomic.Int64
	ok := make([]bool, len(items))
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) || ctx.Err() != nil {
					return
				}
				if err := sub(items[i]).subscribe(ctx); err != nil {
					ev.add("subscriber setup failed", err.Error())
					continue
				}
				ok[i] = true
				start(items[i])
			}
		}()
	}
	wg.Wait()
	var live []T
	for i, it := range items {
		if ok[i] {
			live = append(live, it)
		}
	}
	return live
}

// self is setupAll's sub for a slice of subscribers.
func self(s *subscriber) *subscriber { return s }

// runLoad runs the fan-out or personal-channels scenario.
func runLoad(ctx context.Context, cfg *loadConfig) *Result {
	res := &Result{runMeta: cfg.meta, Scenario: cfg.scenario, URL: cfg.url, Subscribers: cfg.subs,
		Publishers: cfg.publishers, TargetRate: cfg.rate, WarmupS: cfg.warmup.Seconds(), DurationS: cfg.duration.Seconds()}
	res.PublishVia = "websocket"
	if cfg.pubHTTP {
		res.PublishVia = "http"
	}
	t, err := newTarget(cfg.url, cfg.readBuf)
	if err != nil {
		res.Fatal = err.Error()
		return res
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sh := &shared{ev: newEvents()}

	nLP := int(math.Round(float64(cfg.subs) * cfg.lpFrac))
	res.LPSubscribers = nLP
	all := make([]*subscriber, cfg.subs)
	for i := range all {
		ch := cfg.channel
		if cfg.personal {
			ch = fmt.Sprintf("%s/%d", cfg.channel, i)
		}
		// Long-polling subscribers are spread evenly among the others.
		lp := nLP > 0 && (i*nLP)/cfg.subs != ((i+1)*nLP)/cfg.subs
		all[i] = &subscriber{idx: i, channel: ch, lp: lp, sh: sh, t: t, personal: cfg.personal,
			stats: newRecvStats(cfg.publishers), done: make(chan struct{})}
	}
	setupStart := time.Now()
	live := setupAll(ctx, all, cfg.concurrency, sh.ev, self, func(s *subscriber) {
		if s.lp {
			go s.pollLP(ctx)
		} else {
			go s.readWS()
		}
	})
	setupDur := time.Since(setupStart)
	res.SetupPerS = float64(len(live)) / setupDur.Seconds()
	if len(live) == 0 {
		res.Fatal = "no subscriber could subscribe"
		res.Errors, res.ErrorSamples = sh.ev.snapshot()
		return res
	}
	sh.alive.Store(int64(len(live)))
	if cfg.personal {
		// Publishers target every subscriber that made it.
		all = live
	}
	// Flow control: on average maxLag messages in flight per subscriber.
	sh.maxLag = int64(cfg.maxLag) * int64(len(live))

	pt := t // publishers may use another node of a cluster
	if cfg.pubURL != "" {
		if pt, err = newTarget(cfg.pubURL, cfg.readBuf); err != nil {
			res.Fatal = "--pub-url: " + err.Error()
			sh.stopping.Store(true)
			return res
		}
	}
	pubs := make([]*publisher, cfg.publishers)
	for i := range pubs {
		pubs[i] = &publisher{idx: i, sh: sh, t: pt, cfg: cfg, subs: all, http: cfg.pubHTTP,
			done: make(chan struct{}), rng: uint64(i)*0x9E3779B97F4A7C15 + 12345}
		if err := pubs[i].start(ctx); err != nil {
			res.Fatal = "publisher: " + err.Error()
			sh.stopping.Store(true)
			closeAll(live, pubs[:i])
			return res
		}
	}
	time.Sleep(300 * time.Millisecond) // let connects and subscriptions settle

	start := time.Now()
	t0 := start.Add(cfg.warmup)
	t1 := t0.Add(cfg.duration)
	var pwg sync.WaitGroup
	for _, p := range pubs {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			p.run(ctx, start, t0.UnixNano(), t1.UnixNano())
		}()
	}
	time.Sleep(time.Until(t0))
	d0, c0 := sh.delivered.Load(), selfCPU()
	s0, sOK := procCPU(cfg.serverPID)
	m0, mOK := machineCPU()
	time.Sleep(time.Until(t1))
	d1, c1 := sh.delivered.Load(), selfCPU()
	s1, _ := procCPU(cfg.serverPID)
	m1, _ := machineCPU()
	pwg.Wait()

	// Drain: wait for every acknowledgement and every delivery owed, or
	// until nothing has moved for a second, or cfg.drain has passed.
	drainEnd := time.Now().Add(cfg.drain)
	last, lastMove := int64(-1), time.Now()
	for time.Now().Before(drainEnd) {
		pending := false
		for _, p := range pubs {
			if !p.http && len(p.window) > 0 {
				pending = true
			}
		}
		d := sh.delivered.Load()
		if !pending && d >= sh.owed.Load() {
			break
		}
		if d != last {
			last, lastMove = d, time.Now()
		} else if time.Since(lastMove) > time.Second && !pending {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sh.stopping.Store(true)
	cancel()
	closeAll(live, pubs)

	// Results.
	var tot totals
	var measuredAcked, failed int64
	for _, p := range pubs {
		measuredAcked += p.measuredAcked.Load()
		failed += p.failed.Load()
		res.Stalls += p.stalls.Load()
	}
	for _, s := range live {
		tot.add(s.stats)
		exp := measuredAcked
		if cfg.personal {
			exp = s.expect.Load()
		}
		res.Expected += exp
		res.Lost += lost(exp, s.stats.unique)
	}
	res.Lost += int64(cfg.subs-len(live)) * func() int64 {
		if cfg.personal {
			return 0
		}
		return measuredAcked
	}()
	res.Published = measuredAcked
	res.PublishFailed = failed
	res.Received = tot.unique
	res.Duplicated = tot.duplicates
	res.OutOfOrder = tot.late
	res.Foreign = tot.foreign
	res.DroppedSubs = sh.dropped.Load() + int64(cfg.subs-len(live))
	secs := t1.Sub(t0).Seconds()
	res.DeliveredPerS = float64(d1-d0) / secs
	res.PublishedPerS = float64(measuredAcked) / secs
	if tot.frames > 0 {
		res.MsgsPerFrame = float64(tot.msgs) / float64(tot.frames)
	}
	h := &tot.hist
	res.LatencyUS = Latency{P50: msf(h.quantile(0.50)), P90: msf(h.quantile(0.90)), P99: msf(h.quantile(0.99)),
		Max: msf(time.Duration(h.max)), Mean: msf(h.mean()), N: h.n}
	res.ToolCPU = (c1 - c0).Seconds() / secs
	if sOK {
		res.ServerCPU = (s1 - s0).Seconds() / secs
		if d1 > d0 {
			res.ServerCPUPerDel = msf(s1-s0) / float64(d1-d0)
		}
	}
	if mOK {
		res.OtherCPU = max(0, (m1-m0).Seconds()/secs-res.ToolCPU-res.ServerCPU)
	}
	res.Errors, res.ErrorSamples = sh.ev.snapshot()
	res.OK = true
	return res
}

func closeAll(subs []*subscriber, pubs []*publisher) {
	for _, p := range pubs {
		if p != nil {
			p.close()
		}
	}
	for _, s := range subs {
		s.close()
	}
	deadline := time.After(10 * time.Second)
	for _, s := range subs {
		select {
		case <-s.done:
		case <-deadline:
			return
		}
	}
}

// idleConfig describes an idle-clients run.
type idleConfig struct {
	url         string
	clients     int
	concurrency int
	settle      time.Duration
	hold        time.Duration
	serverPID   int
	readBuf     int
	meta        runMeta
}

// runIdle ramps up idle subscribed WebSocket clients, each on its own
// channel, and measures the ramp rate and the server's memory per client.
func runIdle(ctx context.Context, cfg *idleConfig) *Result {
	res := &Result{runMeta: cfg.meta, Scenario: "idle", URL: cfg.url, Clients: cfg.clients}
	t, err := newTarget(cfg.url, cfg.readBuf)
	if err != nil {
		res.Fatal = err.Error()
		return res
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sh := &shared{ev: newEvents()}
	rss0, rssOK := procRSS(cfg.serverPID)
	c0 := selfCPU()
	s0, sOK := procCPU(cfg.serverPID)
	m0, mOK := machineCPU()
	all := make([]*subscriber, cfg.clients)
	for i := range all {
		all[i] = &subscriber{idx: i, channel: fmt.Sprintf("/idle/%d", i), sh: sh, t: t, personal: true,
			stats: newRecvStats(0), done: make(chan struct{})}
	}
	start := time.Now()
	live := setupAll(ctx, all, cfg.concurrency, sh.ev, self, func(s *subscriber) { go s.readWS() })
	ramp := time.Since(start)
	res.ToolCPU = (selfCPU() - c0).Seconds() / ramp.Seconds()
	if s1, ok := procCPU(cfg.serverPID); ok && sOK {
		res.ServerCPU = (s1 - s0).Seconds() / ramp.Seconds()
	}
	if m1, ok := machineCPU(); ok && mOK {
		res.OtherCPU = max(0, (m1-m0).Seconds()/ramp.Seconds()-res.ToolCPU-res.ServerCPU)
	}
	res.Connected = len(live)
	res.HandshakesPerS = float64(len(live)) / ramp.Seconds()
	res.SetupPerS = res.HandshakesPerS
	time.Sleep(cfg.settle)
	if rssOK && len(live) > 0 {
		if rss1, ok := procRSS(cfg.serverPID); ok {
			res.RSSBeforeKiB, res.RSSAfterKiB = rss0>>10, rss1>>10
			res.RSSPerClientBytes = float64(rss1-rss0) / float64(len(live))
		}
	}
	time.Sleep(cfg.hold)
	res.DroppedSubs = sh.dropped.Load() + int64(cfg.clients-len(live))
	sh.stopping.Store(true)
	cancel()
	closeAll(live, nil)
	res.Errors, res.ErrorSamples = sh.ev.snapshot()
	res.OK = len(live) > 0
	if !res.OK {
		res.Fatal = "no client could subscribe"
	}
	return res
}

func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtUS(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.0fµs", us)
	}
}

// printText writes the human-readable summary of r.
func printText(w io.Writer, r *Result) {
	fmt.Fprintf(w, "== %s", r.Scenario)
	if r.Server != "" {
		fmt.Fprintf(w, "  server=%s", r.Server)
	}
	if r.Round > 0 {
		fmt.Fprintf(w, "  round=%d", r.Round)
	}
	fmt.Fprintf(w, "  %s\n", r.URL)
	if r.Fatal != "" {
		fmt.Fprintf(w, "   FAILED: %s\n", r.Fatal)
	}
	if r.Scenario == "idle" {
		fmt.Fprintf(w, "   clients %d connected+subscribed of %d, %s handshake+subscribe/s; CPU during the ramp: tool %.2f cores, server %.2f cores, other processes %.2f cores\n",
			r.Connected, r.Clients, fmtRate(r.HandshakesPerS), r.ToolCPU, r.ServerCPU, r.OtherCPU)
		if r.RSSAfterKiB > 0 {
			fmt.Fprintf(w, "   server RSS %d KiB -> %d KiB: %.0f bytes (%.2f KiB) per client\n",
				r.RSSBeforeKiB, r.RSSAfterKiB, r.RSSPerClientBytes, r.RSSPerClientBytes/1024)
		}
	} else if r.OK {
		rate := "max"
		if r.TargetRate > 0 {
			rate = fmt.Sprintf("%g/s", r.TargetRate)
		}
		fmt.Fprintf(w, "   subscribers %d (%d long-polling), publishers %d over %s, rate %s, warm-up %gs, measured %gs; setup %s subscribers/s\n",
			r.Subscribers, r.LPSubscribers, r.Publishers, r.PublishVia, rate, r.WarmupS, r.DurationS, fmtRate(r.SetupPerS))
		fmt.Fprintf(w, "   published %d (failed %d)  expected %d  received %d  lost %d  duplicated %d  out-of-order %d\n",
			r.Published, r.PublishFailed, r.Expected, r.Received, r.Lost, r.Duplicated, r.OutOfOrder)
		fmt.Fprintf(w, "   delivered/s %s  published/s %s  msgs/frame %.1f  flow-control stalls %d\n",
			fmtRate(r.DeliveredPerS), fmtRate(r.PublishedPerS), r.MsgsPerFrame, r.Stalls)
		l := r.LatencyUS
		fmt.Fprintf(w, "   latency p50 %s  p90 %s  p99 %s  max %s  mean %s  (%d samples)\n",
			fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.Max), fmtUS(l.Mean), l.N)
		fmt.Fprintf(w, "   CPU: tool %.2f cores", r.ToolCPU)
		if r.ServerCPU > 0 {
			fmt.Fprintf(w, ", server %.2f cores (%.2f µs per delivery)", r.ServerCPU, r.ServerCPUPerDel)
		}
		fmt.Fprintf(w, ", other processes %.2f cores\n", r.OtherCPU)
	}
	if r.DroppedSubs > 0 {
		fmt.Fprintf(w, "   DROPPED subscribers: %d\n", r.DroppedSubs)
	}
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "   errors: none")
	} else {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "   ERROR x%d %s", r.Errors[k], k)
			if s := r.ErrorSamples[k]; s != "" {
				fmt.Fprintf(w, ": %s", strings.ReplaceAll(s, "\n", " "))
			}
			fmt.Fprintln(w)
		}
	}
}

func printJSON(w io.Writer, r *Result) {
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", b)
}
