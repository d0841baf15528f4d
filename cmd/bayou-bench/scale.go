package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
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
	procs          int // worker processes holding the clients; ≤ 1: this one
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
	fs.IntVar(&cfg.sources, "sources", 0, "loopback source addresses 127.0.0.1, .2, ... the clients of each process connect from (one has about 28k ephemeral ports); 0: one per 25,000 clients of a process")
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
	fs.IntVar(&cfg.procs, "procs", 1, "worker processes holding the clients (each opens at most its share of sockets: past one process's open-file limit); the sources are per process")
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
	case cfg.sources < 0 || cfg.procs < 1 || max(1, cfg.sources)*cfg.procs > 250:
		return 2, errors.New("--sources: 0 to 250, --procs ≥ 1, sources × procs ≤ 250")
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
	return exitStatus(emitLine(stdout, jsonPath, r.Fatal,
		func(w io.Writer) { printScaleText(w, r) }, func(w io.Writer) { printScaleJSON(w, r) }))
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
	perProc := cfg.clients / max(1, cfg.procs) // sockets of each process that holds clients
	need := uint64(perProc + 3*cfg.concurrency + cfg.pubs + 64)
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
	res.Sources, res.Procs = cfg.sources, max(1, cfg.procs)
	if res.Sources == 0 {
		res.Sources = 1 + (perProc-1)/25000
	}
	pubTargets, err := scaleTargets(cfg.urls, 0, 1, cfg.readBuf)
	if err != nil {
		res.Fatal = err.Error()
		return res
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var set clientSet
	if cfg.procs > 1 {
		set, err = newProcSet(ctx, cfg, cfg.procs, res.Sources, progress)
	} else {
		set, err = newLocalSet(cfg, &scaleState{ev: ev, resubSem: make(chan struct{}, cfg.concurrency)}, 0, 1, 0, res.Sources)
	}
	if err != nil {
		res.Fatal = err.Error()
		return res
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
	s0 := sumCPU(cfg.serverPIDs)
	fmt.Fprintf(progress, "scale: ramping up %d clients over %d node(s) from %d source address(es) in %d process(es)\n",
		cfg.clients, len(cfg.urls), res.Sources*max(1, cfg.procs), max(1, cfg.procs))
	start := time.Now()
	ids, toolCPU, err := set.ramp(ctx)
	ramp := time.Since(start)
	defer func() {
		errs, samples := set.close(context.Background())
		for k, n := range errs {
			ev.addN(k, samples[k], n)
		}
	}()
	if err != nil {
		ev.add("ramp", err.Error())
	}
	live := make([]*scaleClient, 0, len(ids))
	byIdx := make(map[int]*scaleClient, len(ids))
	if l, ok := set.(*localSet); ok {
		live = l.live
	} else {
		slices.Sort(ids)
		for _, i := range ids {
			live = append(live, newScaleClient(i, fmt.Sprintf("%s/%d", cfg.channel, i), nil, nil))
		}
	}
	for _, c := range live {
		byIdx[c.sub.idx] = c
	}
	res.Connected = len(live)
	res.SetupS = ramp.Seconds()
	res.SetupPerS = float64(len(live)) / ramp.Seconds()
	res.ToolCPU = toolCPU.Seconds() / ramp.Seconds()
	res.ServerCPU = (sumCPU(cfg.serverPIDs) - s0).Seconds() / ramp.Seconds()
	if len(live) == 0 {
		res.Fatal = errNoClients.Error()
		return res
	}
	redisRamp := readRedis("after the ramp")
	fmt.Fprintf(progress, "scale: %d clients subscribed in %.1fs; settling %s\n", len(live), ramp.Seconds(), cfg.settle)
	settleStart := time.Now()
	sleepCtx(ctx, cfg.settle)
	if rss1, ok := sumRSS(cfg.serverPIDs); ok && rssOK {
		res.RSSBeforeKiB, res.RSSAfterKiB = rss0>>10, rss1>>10
		res.RSSPerClientBytes = float64(rss1-rss0) / float64(len(live))
	}
	redis1 = readRedis("after the settling")
	if redis0 != nil && redisRamp != nil && redis1 != nil {
		res.Redis = &RedisCost{Subscribe: commandsPer(redis0, redisRamp, int64(len(live))),
			Idle:             commandsPer(redisRamp, redis1, max(1, int64(time.Since(settleStart).Seconds()))),
			UsedMemoryBefore: redis0.usedMemory, UsedMemoryAfter: redis1.usedMemory,
			MemPerChannelBytes: float64(redis1.usedMemory-redis0.usedMemory) / float64(len(live))}
	}

	rs := &roundSetup{cfg: cfg, pubTargets: pubTargets, live: live, byIdx: byIdx, set: set, ev: ev, progress: progress}
	rd := rs.publish(ctx, 1, "initial")
	res.Rounds = append(res.Rounds, rd)
	if res.Redis != nil {
		if redis2 := readRedis("after the publishes"); redis2 != nil {
			res.Redis.Publish = commandsPer(redis1, redis2, rd.Published-rd.PublishFailed)
		}
	}
	if cfg.restart != nil && ctx.Err() == nil {
		res.Restart = restartNode(ctx, cfg, set, ev, readRedis, res.Redis, progress)
		res.Rounds = append(res.Rounds, rs.publish(ctx, 2, "after the restart"))
	}
	res.OK = ctx.Err() == nil
	if ctx.Err() != nil {
		res.Fatal = "interrupted"
	}
	return res
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

// roundSetup is what a publish round needs.
type roundSetup struct {
	cfg        *scaleConfig
	pubTargets [][]*target
	live       []*scaleClient // the clients, or (with worker processes) stand-ins holding their expect flags
	byIdx      map[int]*scaleClient
	set        clientSet
	ev         *events
	progress   io.Writer
}

// publish publishes round r to every live client and waits for the
// deliveries.
func (rs *roundSetup) publish(ctx context.Context, r int, name string) ScaleRound {
	cfg := rs.cfg
	fmt.Fprintf(rs.progress, "scale: round %d (%s): publishing to %d channels via %s\n", r, name, len(rs.live), cfg.via)
	var rp roundPublish
	if cfg.via == "api" {
		rp = publishAPI(ctx, cfg.apiURL, rs.live, r, cfg.batch, cfg.pubs, rs.ev)
	} else {
		pt := make([]*target, len(rs.pubTargets))
		for i := range rs.pubTargets {
			pt[i] = rs.pubTargets[i][0]
		}
		rp = publishWS(ctx, pt, rs.live, r, cfg.pubs, cfg.window, rs.ev)
	}
	rd := ScaleRound{Name: name, Published: rp.sent, PublishFailed: rp.failed, PublishS: rp.end.Sub(rp.start).Seconds()}
	rc, err := rs.set.round(ctx, r, func(i int) bool {
		c := rs.byIdx[i]
		return c != nil && c.expect[r-1].Load()
	}, time.Now().Add(cfg.deliverTimeout))
	if err != nil {
		rs.ev.add("round", err.Error())
	}
	rd.Expected, rd.Received, rd.Lost, rd.Duplicated = rc.Expected, rc.Received, rc.Lost, rc.Duplicated
	rd.AllDelivered = err == nil && rd.Lost == 0 && rd.Expected == int64(len(rs.live))
	if rc.LastArrive > 0 {
		rd.DeliveredS = time.Duration(rc.LastArrive - rp.start.UnixNano()).Seconds()
	}
	rd.LatencyUS = latencyOf(&rc.Hist)
	return rd
}

// restartNode runs the restart command while a probe measures latency
// through two other nodes, and waits for the dropped clients to subscribe
// again.
func restartNode(ctx context.Context, cfg *scaleConfig, set clientSet, ev *events, readRedis func(string) *redisStats, rc *RedisCost, progress io.Writer) *RestartCost {
	out := &RestartCost{}
	var pr *probe
	if cfg.probeSub != "" {
		sub, err1 := newTarget(cfg.probeSub, 4096)
		pub, err2 := newTarget(cfg.probePub, 4096)
		if err := errors.Join(err1, err2); err != nil {
			ev.add("probe", err.Error())
		} else if pr, err = startProbe(ctx, sub, pub, 10*time.Millisecond, ev); err != nil {
			ev.add("probe setup failed", err.Error())
		}
	}
	sleepCtx(ctx, cfg.baseline)
	tBefore, before := time.Now(), readRedis("before the restart")
	if err := set.reconnect(ctx); err != nil {
		ev.add("reconnect", err.Error())
	}
	tKill := time.Now()
	fmt.Fprintf(progress, "scale: restarting a node: %s\n", cfg.restartCmd)
	if err := cfg.restart(ctx); err != nil {
		ev.add("restart command failed", err.Error())
	}
	// Wait until every dropped client is back (or lost) and nothing has
	// dropped for 2 s, or hold has passed.
	deadline := tKill.Add(cfg.hold)
	lastDrops, lastMove := int64(-1), time.Now()
	var s restartStatus
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var err error
		if s, err = set.status(ctx); err != nil {
			ev.add("status", err.Error())
			break
		}
		if s.Dropped != lastDrops {
			lastDrops, lastMove = s.Dropped, time.Now()
		}
		if s.Dropped > 0 && s.Resubbed+s.Failed >= s.Dropped && time.Since(lastMove) > 2*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	out.Dropped, out.Resubscribed = s.Dropped, s.Resubbed
	out.NotBack = out.Dropped - out.Resubscribed
	tBack := time.Unix(0, s.LastResub)
	if out.Resubscribed > 0 {
		out.ResubscribeS = tBack.Sub(tKill).Seconds()
		out.ResubPerS = float64(out.Resubscribed) / out.ResubscribeS
	} else {
		tBack = time.Now()
	}
	fmt.Fprintf(progress, "scale: %d dropped, %d back in %.2fs\n", out.Dropped, out.Resubscribed, out.ResubscribeS)
	after, tAfter := readRedis("after the re-subscribe"), time.Now()
	if rc != nil && before != nil && after != nil {
		if pr != nil && rc.Publish != nil {
			// Leave out the probe's own publishes: each costs what a
			// publish of the first round cost.
			_, sent, _ := pr.window(tBefore, tAfter)
			after.calls["publish"] -= int64(math.Round(float64(sent) * rc.Publish.ByCmd["publish"]))
		}
		rc.Resubscribe = commandsPer(before, after, out.Resubscribed)
	}
	if pr != nil {
		pr.stop()
		out.ProbeBaseline, _, _ = pr.window(tKill.Add(-cfg.baseline), tKill)
		out.ProbeDuring, out.ProbeSent, out.ProbeLost = pr.window(tKill, tBack)
	}
	return out
}
