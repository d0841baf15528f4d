package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"
)

// soakConfig describes a soak run: clients come and go while publishes
// flow, and the server's size is sampled.
type soakConfig struct {
	url            string
	apiURL         string // the server's HTTP API: publishes, /clients, /channels
	pprofURL       string // the server's /debug/pprof/ (goroutines); optional
	clients        int
	lpFrac         float64
	churn          float64 // share of the clients replaced every second
	unclean        float64 // share of the leavers that just close their socket
	sharedChannels int
	sharedRate     float64 // publishes per second, all shared channels together
	personalRate   float64 // publishes per second to personal channels
	duration       time.Duration
	sample         time.Duration
	tolerance      float64 // flatness: last third within this fraction of the middle third
	concurrency    int
	serverPID      int
	meta           runMeta
}

func runSoakMode(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	cfg := &soakConfig{}
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var jsonPath string
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8000/bayeux", "server's Bayeux URL")
	fs.StringVar(&cfg.apiURL, "api-url", "", "the server's HTTP API (bayou --api-addr): publishes, GET /clients and /channels; required")
	fs.StringVar(&cfg.pprofURL, "pprof-url", "", "the server's pprof URL (bayou --pprof), e.g. http://127.0.0.1:6060/debug/pprof/, for its goroutine count")
	fs.IntVar(&cfg.clients, "clients", 10000, "clients connected at any time")
	fs.Float64Var(&cfg.lpFrac, "lp", 0.2, "share of long-polling clients (the others use WebSockets)")
	fs.Float64Var(&cfg.churn, "churn", 0.02, "share of the clients that leave, and of new ones that arrive, every second")
	fs.Float64Var(&cfg.unclean, "unclean", 0.3, "share of the leaving clients that just close their socket (no /meta/disconnect)")
	fs.IntVar(&cfg.sharedChannels, "shared", 100, "shared channels (/soak/shared/<k>); each client is on one, and on its own /soak/u/<i>")
	fs.Float64Var(&cfg.sharedRate, "shared-rate", 50, "publishes per second to the shared channels, all together")
	fs.Float64Var(&cfg.personalRate, "personal-rate", 500, "publishes per second to personal channels, all together")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Minute, "how long the churn and publishes go on")
	fs.DurationVar(&cfg.sample, "sample", 10*time.Second, "sampling interval")
	fs.Float64Var(&cfg.tolerance, "tolerance", 0.10, "flat: the last third's mean within this share of the middle third's")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "clients set up concurrently during the ramp")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "server's PID, for its RSS")
	metaFlags(fs, &cfg.meta, &jsonPath)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	switch {
	case fs.NArg() > 0:
		return 2, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.apiURL == "":
		return 2, errors.New("need --api-url")
	case cfg.clients < 1 || cfg.sharedChannels < 1 || cfg.concurrency < 1 || cfg.duration <= 0 || cfg.sample <= 0:
		return 2, errors.New("need --clients, --shared, --concurrency ≥ 1, --duration and --sample > 0")
	case cfg.lpFrac < 0 || cfg.lpFrac > 1 || cfg.churn < 0 || cfg.churn > 1 || cfg.unclean < 0 || cfg.unclean > 1:
		return 2, errors.New("--lp, --churn and --unclean are shares, 0 to 1")
	}
	if cfg.meta.Label == "" {
		cfg.meta.Label = "soak"
	}
	// A socket per client, some spare for the joins under way and the
	// handshakes' pooled connections.
	need := uint64(cfg.clients + cfg.clients/10 + 2*cfg.concurrency + 256)
	lim, ok, restore := raiseFileLimitTo(need)
	defer restore()
	r := runSoak(ctx, cfg, stderr)
	r.FileLimit = lim
	if !ok {
		r.Errors[fmt.Sprintf("open-file limit too low: %d, this run needs about %d", lim, need)] = 1
	}
	return exitStatus(emitLine(stdout, jsonPath, r.Fatal,
		func(w io.Writer) { printSoakText(w, r) }, func(w io.Writer) { printSoakJSON(w, r) }))
}

// soakClient is one client of a soak run: a subscriber on its personal
// channel and on one shared channel.
type soakClient struct {
	s      *subscriber
	cancel context.CancelFunc // ends its reader
	shared int
	joined int64 // unix ns: every subscription confirmed
	pos    int   // index in the pool; -1 once it left

	personalSeq int64        // publisher goroutine only
	personalGot atomic.Int64 // personal messages received
	sharedGot   atomic.Int64 // shared messages sent after joined and received
}

// soakPool is the set of the clients connected now.
type soakPool struct {
	mu     sync.Mutex
	active []*soakClient
}

func (p *soakPool) add(c *soakClient) {
	p.mu.Lock()
	c.pos = len(p.active)
	p.active = append(p.active, c)
	p.mu.Unlock()
}

// take removes and returns n clients picked at random.
func (p *soakPool) take(n int) []*soakClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*soakClient
	for ; n > 0 && len(p.active) > 0; n-- {
		i := rand.N(len(p.active))
		c := p.active[i]
		last := p.active[len(p.active)-1]
		p.active[i], last.pos = last, i
		p.active = p.active[:len(p.active)-1]
		c.pos = -1
		out = append(out, c)
	}
	return out
}

// pick returns a client at random, or nil.
func (p *soakPool) pick() *soakClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.active) == 0 {
		return nil
	}
	return p.active[rand.N(len(p.active))]
}

func (p *soakPool) snapshot() []*soakClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*soakClient(nil), p.active...)
}

// soakRun is the state of a soak run.
type soakRun struct {
	life   context.Context // the clients' lifetime: the whole run, past the churn
	cfg    *soakConfig
	t      *target
	sh     *shared
	pool   soakPool
	next   atomic.Int64 // next client index
	joined atomic.Int64
	left   atomic.Int64
	failed atomic.Int64 // joins that failed

	pubMu     sync.Mutex
	sharedLog [][]int64 // per shared channel, the send times (unix ns, ascending) of its acknowledged publishes
	published atomic.Int64
	pubFailed atomic.Int64

	wg sync.WaitGroup // readers, joins and leaves
}

// join sets up one new client (its set-up bounded by ctx, its life by
// r.life) and adds it to the pool.
func (r *soakRun) join(ctx context.Context) {
	i := int(r.next.Add(1) - 1)
	k := i % r.cfg.sharedChannels
	s := &subscriber{idx: i, channel: fmt.Sprintf("/soak/u/%d", i), also: []string{fmt.Sprintf("/soak/shared/%d", k)},
		lp: rand.Float64() < r.cfg.lpFrac, sh: r.sh, t: r.t, stats: newRecvStats(2), done: make(chan struct{})}
	c := &soakClient{s: s, shared: k}
	s.onDelivery = func(f *msgFields, _ int64) {
		if f.pub == 1 {
			c.personalGot.Add(1)
		} else if f.sent > c.joined {
			c.sharedGot.Add(1)
		}
	}
	if err := s.subscribe(ctx); err != nil {
		if ctx.Err() == nil {
			r.failed.Add(1)
			r.sh.ev.add("client setup failed", err.Error())
		}
		return
	}
	c.joined = time.Now().UnixNano()
	cctx, cancel := context.WithCancel(r.life) // not ctx: a client outlives the churn that brought it
	c.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if s.lp {
			s.pollLP(cctx)
		} else {
			s.readWS()
		}
	}()
	r.joined.Add(1)
	r.pool.add(c)
}

const disconnectFmt = `[{"channel":"/meta/disconnect","clientId":%q,"id":"d"}]`

// leave ends a client: cleanly (a /meta/disconnect, then a close) or not
// (the socket or the long-poll just closed).
func (r *soakRun) leave(ctx context.Context, c *soakClient, clean bool) {
	s := c.s
	s.leaving.Store(true)
	if clean {
		msg := fmt.Appendf(nil, disconnectFmt, s.clientID)
		if s.lp {
			if _, err := r.t.post(ctx, msg, nil); err != nil && ctx.Err() == nil {
				r.sh.ev.add("disconnect failed", err.Error())
			}
		} else {
			s.wmu.Lock()
			_ = s.conn.WriteMessage(websocket.TextMessage, msg)
			_ = s.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			s.wmu.Unlock()
		}
	}
	if s.conn != nil {
		s.conn.Close()
	}
	c.cancel()
	r.left.Add(1)
}

// churn replaces the share cfg.churn of the clients every second.
func (r *soakRun) churn(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var owed float64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		owed += r.cfg.churn * float64(r.cfg.clients)
		n := int(owed)
		owed -= float64(n)
		for _, c := range r.pool.take(n) {
			clean := rand.Float64() >= r.cfg.unclean
			r.wg.Add(1)
			go func() { defer r.wg.Done(); r.leave(ctx, c, clean) }()
		}
		for range n {
			r.wg.Add(1)
			go func() { defer r.wg.Done(); r.join(ctx) }()
		}
	}
}

// publish sends, every 100 ms, the shared and personal publishes due, as
// one batch to the HTTP API.
func (r *soakRun) publish(ctx context.Context) {
	hc := &http.Client{Timeout: 30 * time.Second}
	url := strings.TrimSuffix(r.cfg.apiURL, "/") + "/publish"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var owedShared, owedPersonal float64
	sharedSeq := make([]int64, r.cfg.sharedChannels)
	nextShared := 0
	var body, rbuf []byte
	var items []func(ok bool)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		owedShared += r.cfg.sharedRate / 10
		owedPersonal += r.cfg.personalRate / 10
		ns, np := int(owedShared), int(owedPersonal)
		owedShared -= float64(ns)
		owedPersonal -= float64(np)
		body, items = append(body[:0], '['), items[:0]
		now := time.Now().UnixNano()
		for range ns {
			k := nextShared
			nextShared = (nextShared + 1) % r.cfg.sharedChannels
			sharedSeq[k]++
			body = appendPublish(append(body, ','), benchMsg{channel: fmt.Sprintf("/soak/shared/%d", k), seq: sharedSeq[k], sent: now, pub: 0, measured: true})
			items = append(items, func(ok bool) {
				if ok {
					r.pubMu.Lock()
					r.sharedLog[k] = append(r.sharedLog[k], now)
					r.pubMu.Unlock()
				}
			})
		}
		for range np {
			c := r.pool.pick()
			if c == nil {
				break
			}
			c.personalSeq++
			body = appendPublish(append(body, ','), benchMsg{channel: c.s.channel, seq: c.personalSeq, sent: now, pub: 1, measured: true})
			items = append(items, func(ok bool) {
				if ok {
					c.s.expect.Add(1)
				}
			})
		}
		if len(items) == 0 {
			continue
		}
		body[1] = ' ' // the comma before the first item
		body = append(body, ']')
		var err error
		rbuf, err = postJSON(ctx, hc, url, body, rbuf)
		if err != nil {
			if ctx.Err() == nil {
				r.pubFailed.Add(int64(len(items)))
				r.sh.ev.add("API publish failed", err.Error())
			}
			continue
		}
		res := gjson.GetBytes(rbuf, "results").Array()
		for i, fn := range items {
			ok := i < len(res) && res[i].Get("ok").Bool()
			if !ok {
				r.pubFailed.Add(1)
				r.sh.ev.add("API publish refused", fmt.Sprintf("%.200s", rbuf))
			}
			r.published.Add(1)
			fn(ok)
		}
	}
}

// runSoak runs the soak scenario; progress lines go to progress.
func runSoak(ctx context.Context, cfg *soakConfig, progress io.Writer) *SoakResult {
	res := &SoakResult{runMeta: cfg.meta, Scenario: "soak", URL: cfg.url, Clients: cfg.clients, LPShare: cfg.lpFrac,
		Churn: cfg.churn, Unclean: cfg.unclean, DurationS: cfg.duration.Seconds(), SampleS: cfg.sample.Seconds(),
		Tolerance: cfg.tolerance, Errors: map[string]int64{}}
	t, err := newTarget(cfg.url, 4096)
	if err != nil {
		res.Fatal = err.Error()
		return res
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &soakRun{life: ctx, cfg: cfg, t: t, sh: &shared{ev: newEvents()}, sharedLog: make([][]int64, cfg.sharedChannels)}
	sampler := newSoakSampler(cfg)

	fmt.Fprintf(progress, "soak: ramping up %d clients (%.0f%% long-polling)\n", cfg.clients, 100*cfg.lpFrac)
	start := time.Now()
	var rwg sync.WaitGroup
	var ramp atomic.Int64
	for w := 0; w < cfg.concurrency; w++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for ramp.Add(1) <= int64(cfg.clients) && ctx.Err() == nil {
				r.join(ctx)
			}
		}()
	}
	rwg.Wait()
	res.RampS = time.Since(start).Seconds()
	fmt.Fprintf(progress, "soak: %d clients in %.1fs; churn and publishes for %s\n", len(r.pool.snapshot()), res.RampS, cfg.duration)

	runCtx, stopRun := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); r.churn(runCtx) }()
	go func() { defer bg.Done(); r.publish(runCtx) }()
	t0 := time.Now()
	end := t0.Add(cfg.duration)
	sample := func() {
		sm := sampler.take(ctx, time.Since(t0), len(r.pool.snapshot()), r.joined.Load(), r.left.Load())
		res.Samples = append(res.Samples, sm)
		fmt.Fprintf(progress, "soak: %s\n", sm.line())
	}
	tick := time.NewTicker(cfg.sample)
	last := t0
	for time.Now().Before(end) && ctx.Err() == nil {
		select {
		case <-tick.C:
			sample()
			last = time.Now()
		case <-ctx.Done():
		case <-time.After(time.Until(end)):
		}
	}
	tick.Stop()
	if ctx.Err() == nil && time.Since(last) > cfg.sample/2 {
		sample() // the end of the run
	}
	stopRun()
	bg.Wait()

	// Drain: the steady clients (those never told to leave) get every
	// message owed to them, or 10 s pass.
	steady := r.pool.snapshot()
	drainStart := time.Now()
	for time.Since(drainStart) < 10*time.Second && ctx.Err() == nil && r.owed(steady) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	res.DrainS = time.Since(drainStart).Seconds()
	res.Steady = len(steady)
	res.Lost = r.owed(steady)
	if res.Lost > 0 {
		r.explainLost(steady, t0)
	}
	r.sh.stopping.Store(true)
	for _, c := range steady {
		c.cancel()
		c.s.close()
	}
	waitGroup(&r.wg, 20*time.Second)
	for _, c := range steady {
		res.Duplicated += c.s.stats.duplicates
		res.OutOfOrder += c.s.stats.late
		res.Received += c.s.stats.unique
	}
	res.Joined, res.Left, res.JoinFailed = r.joined.Load(), r.left.Load(), r.failed.Load()
	res.Published, res.PublishFailed = r.published.Load(), r.pubFailed.Load()
	res.Dropped = r.sh.dropped.Load()
	res.Verdicts = flatness(res.Samples, cfg.tolerance)
	res.Flat = len(res.Verdicts) > 0
	for _, v := range res.Verdicts {
		res.Flat = res.Flat && v.Flat
	}
	evs, samples := r.sh.ev.snapshot()
	for k, v := range evs {
		res.Errors[k] += v
	}
	res.ErrorSamples = samples
	res.OK = ctx.Err() == nil
	if !res.OK {
		res.Fatal = "interrupted"
	}
	return res
}

// owed returns the messages the clients have yet to receive: personal
// publishes acknowledged for them, and shared ones acknowledged on their
// channel and sent after they joined.
func (r *soakRun) owed(cs []*soakClient) int64 {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	var owed int64
	for _, c := range cs {
		log := r.sharedLog[c.shared]
		shared := int64(len(log) - sort.Search(len(log), func(i int) bool { return log[i] > c.joined }))
		owed += max(0, c.s.expect.Load()-c.personalGot.Load()) + max(0, shared-c.sharedGot.Load())
	}
	return owed
}

// explainLost records, per kind of client and of message, what the
// steady clients miss, with an example of each.
func (r *soakRun) explainLost(cs []*soakClient, t0 time.Time) {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	for _, c := range cs {
		log := r.sharedLog[c.shared]
		first := sort.Search(len(log), func(i int) bool { return log[i] > c.joined })
		kind := "WebSocket"
		if c.s.lp {
			kind = "long-polling"
		}
		at := time.Duration(c.joined - t0.UnixNano()).Round(time.Millisecond)
		if n := c.s.expect.Load() - c.personalGot.Load(); n > 0 {
			r.sh.ev.addN("steady "+kind+" clients missing personal messages", fmt.Sprintf("client %d (%s, joined at %s): %d of %d",
				c.s.idx, c.s.clientID, at, n, c.s.expect.Load()), n)
		}
		if n := int64(len(log)-first) - c.sharedGot.Load(); n > 0 {
			r.sh.ev.addN("steady "+kind+" clients missing shared messages", fmt.Sprintf("client %d (%s, joined at %s) on /soak/shared/%d: %d of %d",
				c.s.idx, c.s.clientID, at, c.shared, n, len(log)-first), n)
		}
	}
}

// waitGroup waits for wg, at most d.
func waitGroup(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// flatness compares, for each sampled series, the mean of the last third
// of the samples with that of the middle third (the first third is the
// warm-up).
func flatness(ss []SoakSample, tol float64) []Flatness {
	n := len(ss) / 3
	if n == 0 {
		return nil
	}
	mid, last := ss[n:2*n], ss[len(ss)-n:]
	var out []Flatness
	for _, m := range soakSeries {
		if m.get(ss[0]) < 0 {
			continue // not sampled
		}
		a, b := 0.0, 0.0
		for i := range n {
			a += m.get(mid[i])
			b += m.get(last[i])
		}
		a, b = a/float64(n), b/float64(n)
		change := 0.0
		if a != 0 {
			change = (b - a) / a
		} else if b != 0 {
			change = math.Inf(1)
		}
		out = append(out, Flatness{Series: m.name, Middle: a, Last: b, Change: change, Flat: math.Abs(change) <= tol})
	}
	return out
}
