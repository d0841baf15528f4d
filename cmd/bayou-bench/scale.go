package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// scaleConfig describes a scale run: N WebSocket clients, each subscribed
// to its own channel, then one publish to every channel.
type scaleConfig struct {
	urls           []string // Bayeux URLs; clients are spread round-robin
	clients        int
	sources        int // loopback source addresses; 0: one per 25,000 clients
	concurrency    int
	channel        string // channel prefix: client i is on <channel>/<i>
	via            string // "api" or "ws"
	apiURL         string
	pubs           int // WebSocket publishers, or concurrent API requests
	batch          int // publishes per API request
	window         int // unacknowledged publishes per WebSocket publisher
	settle         time.Duration
	deliverTimeout time.Duration
	serverPIDs     []int
	redisAddr      string
	restartCmd     string                          // shown in the progress lines
	restart        func(ctx context.Context) error // restarts a node: runs restartCmd
	baseline       time.Duration                   // the probe's measure before the restart
	hold           time.Duration                   // longest wait for the clients to come back after restartCmd
	probeSub       string                          // Bayeux URL of the probe's listener
	probePub       string                          // Bayeux URL the probe publishes to
	readBuf        int
	meta           runMeta
}

func runScaleMode(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	cfg := &scaleConfig{}
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var urls, pids, jsonPath string
	var settle, deliver, hold float64
	fs.StringVar(&urls, "url", "http://127.0.0.1:8000/bayeux", "server's Bayeux URL; comma-separated URLs of a cluster's nodes spread the clients round-robin")
	fs.IntVar(&cfg.clients, "clients", 10000, "WebSocket clients, client i subscribed to <channel>/<i>")
	fs.IntVar(&cfg.sources, "sources", 0, "loopback source addresses 127.0.0.1, .2, ... the clients connect from (one has about 28k ephemeral ports); 0: one per 25,000 clients")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "clients set up (and, after a restart, set up again) concurrently")
	fs.StringVar(&cfg.channel, "channel", "/users", "channel prefix")
	fs.StringVar(&cfg.via, "pub", "api", "how to publish: api (batches to POST /publish on --api-url) or ws (--pubs WebSocket publishers)")
	fs.StringVar(&cfg.apiURL, "api-url", "", "the HTTP API's URL (bayou --api-addr), for --pub api")
	fs.IntVar(&cfg.pubs, "pubs", 4, "WebSocket publishers (--pub ws) or concurrent API requests (--pub api)")
	fs.IntVar(&cfg.batch, "batch", 500, "publishes per API request")
	fs.IntVar(&cfg.window, "window", 64, "unacknowledged publishes per WebSocket publisher")
	fs.Float64Var(&settle, "settle", 3, "seconds to wait after the ramp before reading the servers' RSS")
	fs.Float64Var(&deliver, "deliver-timeout", 60, "seconds to wait for every delivery of a round")
	fs.StringVar(&pids, "server-pid", "", "servers' PIDs (comma-separated), to read their RSS and CPU")
	fs.StringVar(&cfg.redisAddr, "redis", "", "the cluster's Redis host:port, to read INFO commandstats and memory before and after each phase")
	fs.StringVar(&cfg.restartCmd, "restart-cmd", "", "shell command run after the first round that restarts a node; its clients subscribe again, then a second round is published")
	fs.Float64Var(&hold, "hold", 120, "seconds to wait at most for the clients to come back after --restart-cmd")
	fs.StringVar(&cfg.probeSub, "probe-sub", "", "with --restart-cmd: Bayeux URL of a node (not the restarted one) where a probe listens")
	fs.StringVar(&cfg.probePub, "probe-pub", "", "with --restart-cmd: Bayeux URL of a third node the probe publishes to every 10 ms")
	fs.IntVar(&cfg.readBuf, "read-buffer", 1024, "WebSocket read buffer per client, bytes")
	metaFlags(fs, &cfg.meta, &jsonPath)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.urls = splitList(urls)
	for _, p := range splitList(pids) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 2, fmt.Errorf("--server-pid: %w", err)
		}
		cfg.serverPIDs = append(cfg.serverPIDs, n)
	}
	switch {
	case len(cfg.urls) == 0 || cfg.clients < 1 || cfg.concurrency < 1 || cfg.pubs < 1 || cfg.batch < 1 || cfg.window < 1:
		return 2, errors.New("need --url, --clients ≥ 1, --concurrency ≥ 1, --pubs ≥ 1, --batch ≥ 1, --window ≥ 1")
	case cfg.via != "api" && cfg.via != "ws":
		return 2, fmt.Errorf("--pub: want api or ws, got %q", cfg.via)
	case cfg.via == "api" && cfg.apiURL == "":
		return 2, errors.New("--pub api needs --api-url")
	case cfg.sources < 0 || cfg.sources > 250:
		return 2, errors.New("--sources: 0 to 250")
	case (cfg.probeSub == "") != (cfg.probePub == ""):
		return 2, errors.New("--probe-sub and --probe-pub go together")
	}
	if cfg.meta.Label == "" {
		cfg.meta.Label = "scale"
	}
	cfg.settle, cfg.deliverTimeout, cfg.hold, cfg.baseline = seconds(settle), seconds(deliver), seconds(hold), 3*time.Second
	if cfg.restartCmd != "" {
		cfg.restart = func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, "sh", "-c", cfg.restartCmd)
			cmd.Stdout, cmd.Stderr = stderr, stderr
			return cmd.Run()
		}
	}
	r := runScale(ctx, cfg, stderr)
	printScaleText(stdout, r)
	printScaleJSON(stdout, r)
	if jsonPath != "" {
		if err := appendLine(jsonPath, func(w io.Writer) { printScaleJSON(w, r) }); err != nil {
			return 1, err
		}
	}
	if r.Fatal != "" {
		return 1, errors.New(r.Fatal)
	}
	return 0, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// appendLine appends what write writes to the file at path.
func appendLine(path string, write func(io.Writer)) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	write(f)
	return f.Close()
}

// raiseFileLimitTo raises the soft open-file limit to need, bounded by the
// hard limit. It returns the limit in force, whether it reaches need, and
// a function that restores the limit found.
func raiseFileLimitTo(need uint64) (uint64, bool, func()) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		return 0, false, func() {}
	}
	if old.Cur >= need {
		return old.Cur, true, func() {}
	}
	l := old
	l.Cur = min(need, old.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return old.Cur, false, func() {}
	}
	return l.Cur, l.Cur >= need, func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }
}

// procFileLimit returns the "Max open files" line of /proc/pid/limits
// (soft and hard), or "?".
func procFileLimit(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) >= 2 {
				return f[0] + "/" + f[1]
			}
		}
	}
	return "?"
}

func sumRSS(pids []int) (int64, bool) {
	var sum int64
	for _, p := range pids {
		r, ok := procRSS(p)
		if !ok {
			return 0, false
		}
		sum += r
	}
	return sum, len(pids) > 0
}

func sumCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		c, _ := procCPU(p)
		sum += c
	}
	return sum
}

// runScale runs the scale scenario; progress goes to progress.
func runScale(ctx context.Context, cfg *scaleConfig, progress io.Writer) *ScaleResult {
	res := &ScaleResult{runMeta: cfg.meta, Scenario: "scale", URLs: cfg.urls, Clients: cfg.clients,
		PublishVia: cfg.via, Publishers: cfg.pubs}
	ev := newEvents()
	defer func() { res.Errors, res.ErrorSamples = ev.snapshot() }()
	need := uint64(cfg.clients + 3*cfg.concurrency + cfg.pubs + 64)
	lim, ok, restore := raiseFileLimitTo(need)
	defer restore()
	res.FileLimit, res.FileLimitOK = lim, ok
	if !ok {
		ev.add("open-file limit too low", fmt.Sprintf("the hard limit allows %d files; this run needs about %d (at most about %d clients)",
			lim, need, int(lim)-3*cfg.concurrency-cfg.pubs-64))
	}
	var sl []string
	for _, p := range cfg.serverPIDs {
		sl = append(sl, fmt.Sprintf("pid %d: %s", p, procFileLimit(p)))
	}
	res.ServerFiles = strings.Join(sl, ", ")
	res.Sources = cfg.sources
	if res.Sources == 0 {
		res.Sources = 1 + (cfg.clients-1)/25000
	}
	targets, err := scaleTargets(cfg.urls, res.Sources, cfg.readBuf)
	if err != nil {
		res.Fatal = err.Error()
		return res
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := &scaleState{ev: ev, resubSem: make(chan struct{}, cfg.concurrency)}
	all := make([]*scaleClient, cfg.clients)
	for i := range all {
		node := i % len(cfg.urls)
		src := (i / len(cfg.urls)) % res.Sources
		all[i] = newScaleClient(i, fmt.Sprintf("%s/%d", cfg.channel, i), targets[node][src], st)
	}
	var redis0, redis1 *redisStats
	readRedis := func(what string) *redisStats {
		if cfg.redisAddr == "" {
			return nil
		}
		s, err := readRedisStats(ctx, cfg.redisAddr)
		if err != nil {
			ev.add("redis INFO failed", what+": "+err.Error())
		}
		return s
	}
	redis0 = readRedis("before the ramp")
	rss0, rssOK := sumRSS(cfg.serverPIDs)
	c0, s0 := selfCPU(), sumCPU(cfg.serverPIDs)
	fmt.Fprintf(progress, "scale: ramping up %d clients over %d node(s) from %d source address(es)\n", cfg.clients, len(cfg.urls), res.Sources)
	start := time.Now()
	live := setupScale(ctx, all, cfg.concurrency, ev)
	ramp := time.Since(start)
	res.Connected = len(live)
	res.SetupS = ramp.Seconds()
	res.SetupPerS = float64(len(live)) / ramp.Seconds()
	res.ToolCPU = (selfCPU() - c0).Seconds() / ramp.Seconds()
	res.ServerCPU = (sumCPU(cfg.serverPIDs) - s0).Seconds() / ramp.Seconds()
	defer closeScale(st, live)
	if len(live) == 0 {
		res.Fatal = errNoClients.Error()
		return res
	}
	fmt.Fprintf(progress, "scale: %d clients subscribed in %.1fs; settling %s\n", len(live), ramp.Seconds(), cfg.settle)
	sleepCtx(ctx, cfg.settle)
	if rss1, ok := sumRSS(cfg.serverPIDs); ok && rssOK {
		res.RSSBeforeKiB, res.RSSAfterKiB = rss0>>10, rss1>>10
		res.RSSPerClientBytes = float64(rss1-rss0) / float64(len(live))
	}
	redis1 = readRedis("after the ramp")
	if redis0 != nil && redis1 != nil {
		res.Redis = &RedisCost{Subscribe: commandsPer(redis0, redis1, int64(len(live))),
			UsedMemoryBefore: redis0.usedMemory, UsedMemoryAfter: redis1.usedMemory,
			MemPerChannelBytes: float64(redis1.usedMemory-redis0.usedMemory) / float64(len(live))}
	}

	rd := publishRound(ctx, cfg, targets, live, st, 1, "initial", progress)
	res.Rounds = append(res.Rounds, rd)
	if res.Redis != nil {
		if redis2 := readRedis("after the publishes"); redis2 != nil {
			res.Redis.Publish = commandsPer(redis1, redis2, rd.Published-rd.PublishFailed)
		}
	}
	if cfg.restart != nil && ctx.Err() == nil {
		res.Restart = restartNode(ctx, cfg, st, readRedis, res.Redis, progress)
		res.Rounds = append(res.Rounds, publishRound(ctx, cfg, targets, live, st, 2, "after the restart", progress))
	}
	res.OK = ctx.Err() == nil
	if ctx.Err() != nil {
		res.Fatal = "interrupted"
	}
	return res
}

// setupScale subscribes every client with n concurrent workers and starts
// the ones that made it; it returns those.
func setupScale(ctx context.Context, all []*scaleClient, n int, ev *events) []*scaleClient {
	var next atomic.Int64
	ok := make([]bool, len(all))
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(all) || ctx.Err() != nil {
					return
				}
				if err := all[i].sub.subscribe(ctx); err != nil {
					ev.add("client setup failed", err.Error())
					continue
				}
				ok[i] = true
				go all[i].run(ctx)
			}
		}()
	}
	wg.Wait()
	var live []*scaleClient
	for i, c := range all {
		if ok[i] {
			live = append(live, c)
		}
	}
	return live
}

// closeScale stops every client and waits (at most 20 s) for them.
func closeScale(st *scaleState, live []*scaleClient) {
	st.stopping.Store(true)
	for _, c := range live {
		c.close()
	}
	deadline := time.After(20 * time.Second)
	for _, c := range live {
		select {
		case <-c.done:
		case <-deadline:
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// publishRound publishes round r to every live client and waits for the
// deliveries.
func publishRound(ctx context.Context, cfg *scaleConfig, targets [][]*target, live []*scaleClient, st *scaleState, r int, name string, progress io.Writer) ScaleRound {
	fmt.Fprintf(progress, "scale: round %d (%s): publishing to %d channels via %s\n", r, name, len(live), cfg.via)
	var rp roundPublish
	if cfg.via == "api" {
		rp = publishAPI(ctx, cfg.apiURL, live, r, cfg.batch, cfg.pubs, st.ev)
	} else {
		pt := make([]*target, len(targets))
		for i := range targets {
			pt[i] = targets[i][0]
		}
		rp = publishWS(ctx, pt, live, r, cfg.pubs, cfg.window, st.ev)
	}
	rd := ScaleRound{Name: name, Published: rp.sent, PublishFailed: rp.failed, PublishS: rp.end.Sub(rp.start).Seconds()}
	for _, c := range live {
		if c.expect[r-1].Load() {
			rd.Expected++
		}
	}
	deadline := time.Now().Add(cfg.deliverTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil && st.delivered[r-1].Load() < rd.Expected {
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range live {
		got := c.got[r-1].Load() > 0
		if got {
			rd.Received++
		}
		if c.expect[r-1].Load() && !got {
			rd.Lost++
		}
	}
	rd.Duplicated = st.duplicated[r-1].Load()
	rd.AllDelivered = rd.Lost == 0 && rd.Expected == int64(len(live))
	if last := st.lastArrive[r-1].Load(); last > 0 {
		rd.DeliveredS = time.Duration(last - rp.start.UnixNano()).Seconds()
	}
	st.histMu.Lock()
	rd.LatencyUS = latencyOf(&st.hist[r-1])
	st.histMu.Unlock()
	return rd
}

// restartNode runs the restart command while a probe measures latency
// through two other nodes, and waits for the dropped clients to subscribe
// again.
func restartNode(ctx context.Context, cfg *scaleConfig, st *scaleState, readRedis func(string) *redisStats, rc *RedisCost, progress io.Writer) *RestartCost {
	out := &RestartCost{}
	var pr *probe
	if cfg.probeSub != "" {
		sub, err1 := newTarget(cfg.probeSub, 4096)
		pub, err2 := newTarget(cfg.probePub, 4096)
		if err := errors.Join(err1, err2); err != nil {
			st.ev.add("probe", err.Error())
		} else if pr, err = startProbe(ctx, sub, pub, 10*time.Millisecond, st.ev); err != nil {
			st.ev.add("probe setup failed", err.Error())
		}
	}
	sleepCtx(ctx, cfg.baseline)
	before := readRedis("before the restart")
	st.reconnect.Store(true)
	tKill := time.Now()
	fmt.Fprintf(progress, "scale: restarting a node: %s\n", cfg.restartCmd)
	if err := cfg.restart(ctx); err != nil {
		st.ev.add("restart command failed", err.Error())
	}
	// Wait until every dropped client is back (or lost) and nothing has
	// dropped for 2 s, or hold has passed.
	deadline := tKill.Add(cfg.hold)
	lastDrops, lastMove := int64(-1), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		d := st.dropped.Load()
		if d != lastDrops {
			lastDrops, lastMove = d, time.Now()
		}
		if d > 0 && st.resubbed.Load()+st.failed.Load() >= d && time.Since(lastMove) > 2*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	out.Dropped, out.Resubscribed = st.dropped.Load(), st.resubbed.Load()
	out.NotBack = out.Dropped - out.Resubscribed
	tBack := time.Unix(0, st.lastResub.Load())
	if out.Resubscribed > 0 {
		out.ResubscribeS = tBack.Sub(tKill).Seconds()
		out.ResubPerS = float64(out.Resubscribed) / out.ResubscribeS
	} else {
		tBack = time.Now()
	}
	fmt.Fprintf(progress, "scale: %d dropped, %d back in %.2fs\n", out.Dropped, out.Resubscribed, out.ResubscribeS)
	if after := readRedis("after the re-subscribe"); rc != nil && before != nil && after != nil {
		rc.Resubscribe = commandsPer(before, after, out.Resubscribed)
	}
	if pr != nil {
		pr.stop()
		out.ProbeBaseline, _, _ = pr.window(tKill.Add(-cfg.baseline), tKill)
		out.ProbeDuring, out.ProbeSent, out.ProbeLost = pr.window(tKill, tBack)
	}
	return out
}
