package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The attack mode measures issue 10's acceptance criterion: under each
// hostile-input attack, all from one address, a normal client's handshake
// latency p99 stays under 1 s, and the server's RSS comes back near its
// baseline afterwards. For each kind it reads the server's RSS, runs the
// attack's workers for the duration while a probe client handshakes over
// long-polling every --probe-interval, then waits for the RSS to come back.

// attackKinds returns every attack kind in the order "all" runs them. The
// kinds that leave many sessions behind (a session lives until twice the
// server's timeout after its last connect) come last, so that they do not
// weigh on the others' baselines.
func attackKinds() []string {
	return []string{"utf8", "channel", "nesting", "slowbody", "subscribe", "idlesockets", "batch", "handshakes"}
}

// Sizes of the attacks' requests.
const (
	bigBody        = 1 << 20 // the server's default MaxMessageSize: the largest body it reads
	smallChannel   = 100_000 // the other channel publish's size
	handshakeBatch = 100     // handshakes per batch: the server's default MaxBatch
	subscribeBatch = 100     // channels per subscribe request
	slowBodyLen    = 1000    // the Content-Length slow bodies announce
	refusedPause   = 200 * time.Millisecond
)

// attackConfig describes an attack run of one or more kinds.
type attackConfig struct {
	url         string
	serverPID   int
	kinds       []string
	duration    time.Duration
	workers     int
	conns       int // slowbody, idlesockets: connections per worker
	subs        int // utf8: WebSocket subscribers on /x
	probeEvery  time.Duration
	timeout     time.Duration // every request's time limit
	recoverWait time.Duration
	probeSource string
	meta        runMeta
}

// durationValue is a flag.Value for a duration written as Go writes them
// ("10s", "500ms") or as a number of seconds ("10", "0.5") like the other
// modes' flags.
type durationValue struct{ d *time.Duration }

// String returns the duration in Go's notation.
func (v durationValue) String() string {
	if v.d == nil {
		return "0s"
	}
	return v.d.String()
}

// Set parses s.
func (v durationValue) Set(s string) error {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		*v.d = seconds(f)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 10s or a number of seconds: %w", err)
	}
	*v.d = d
	return nil
}

// parseKinds parses a comma-separated list of attack kinds; "all" stands
// for every kind.
func parseKinds(s string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "all":
			out = append(out, attackKinds()...)
		case slices.Contains(attackKinds(), k):
			out = append(out, k)
		default:
			return nil, fmt.Errorf("--kind: unknown attack %q (want %s or all)", k, strings.Join(attackKinds(), ", "))
		}
	}
	return out, nil
}

// parseAttackFlags parses the attack mode's flags; it returns the
// configuration and the --json path.
func parseAttackFlags(args []string, stderr io.Writer) (*attackConfig, string, error) {
	cfg := &attackConfig{duration: 10 * time.Second, probeEvery: 50 * time.Millisecond,
		timeout: 5 * time.Second, recoverWait: 30 * time.Second}
	fs := flag.NewFlagSet("attack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kinds, jsonPath string
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8000/bayeux", "server's Bayeux URL")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "server's PID, to read its RSS (VmRSS) and CPU use (required)")
	fs.StringVar(&kinds, "kind", "all", "attacks, comma-separated: "+strings.Join(attackKinds(), ", ")+", or all (each in turn)")
	fs.Var(durationValue{&cfg.duration}, "duration", "how long each attack lasts (10s, or a number of seconds)")
	fs.IntVar(&cfg.workers, "workers", 8, "attack workers, each with one request at a time, all from one address")
	fs.IntVar(&cfg.conns, "conns", 64, "slowbody, idlesockets: connections each worker holds open")
	fs.IntVar(&cfg.subs, "subs", 10, "utf8: WebSocket subscribers listening on /x")
	fs.Var(durationValue{&cfg.probeEvery}, "probe-interval", "time between the probe client's handshakes")
	fs.Var(durationValue{&cfg.timeout}, "timeout", "time limit of every request; a failed probe counts as this latency")
	fs.Var(durationValue{&cfg.recoverWait}, "recover-wait", "how long at most to wait after an attack for the server's RSS to come back")
	fs.StringVar(&cfg.probeSource, "probe-source", "", "local IP address the probe and the subscribers connect from (e.g. 127.0.0.2, so that per-address limits do not count them with the attacker); empty: the system's choice")
	metaFlags(fs, &cfg.meta, &jsonPath)
	if err := fs.Parse(args); err != nil {
		return nil, "", err
	}
	if fs.NArg() > 0 {
		return nil, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.serverPID <= 0 || cfg.workers < 1 || cfg.conns < 1 || cfg.subs < 1 || cfg.duration <= 0 ||
		cfg.probeEvery <= 0 || cfg.timeout <= 0 || cfg.recoverWait < 0 {
		return nil, "", errors.New("need --server-pid, --workers ≥ 1, --conns ≥ 1, --subs ≥ 1, positive --duration, --probe-interval and --timeout, --recover-wait ≥ 0")
	}
	if cfg.probeSource != "" && net.ParseIP(cfg.probeSource) == nil {
		return nil, "", fmt.Errorf("--probe-source: not an IP address: %q", cfg.probeSource)
	}
	var err error
	if cfg.kinds, err = parseKinds(kinds); err != nil {
		return nil, "", err
	}
	if cfg.meta.Label == "" {
		cfg.meta.Label = "attack"
	}
	return cfg, jsonPath, nil
}

// runAttackMode runs the attack mode: each kind in turn, each printed as
// it ends, then a table of them all.
func runAttackMode(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	cfg, jsonPath, err := parseAttackFlags(args, stderr)
	if err != nil {
		return 2, err
	}
	raiseFileLimit()
	var results []*AttackResult
	var failed error
	if r := profiled(func() *Result {
		for _, kind := range cfg.kinds {
			if ctx.Err() != nil {
				break
			}
			res := runAttack(ctx, cfg, kind)
			results = append(results, res)
			if err := emitAttack(res, jsonPath, stdout); err != nil && failed == nil {
				failed = err
			}
		}
		return nil
	}); r != nil && r.Fatal != "" {
		return 1, errors.New(r.Fatal)
	}
	if len(results) > 1 {
		printAttackTable(stdout, results)
	}
	if failed != nil {
		return 1, failed
	}
	if ctx.Err() != nil {
		return 1, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return 0, nil
}

// attackRun is one attack of one kind in progress.
type attackRun struct {
	cfg    *attackConfig
	kind   string
	t      *target  // the attacker's connections
	probeT *target  // the probe's and the subscribers'
	host   string   // the server's host:port, for raw connections
	path   string   // and the mount path
	bodies [][]byte // HTTP floods: the requests sent in turn
	out    *events  // attack outcomes: HTTP status and Bayeux error, close code...
	errs   *events  // the probe's and the subscribers' failures
}

// runAttack runs one kind of attack and measures it.
func runAttack(ctx context.Context, cfg *attackConfig, kind string) *AttackResult {
	res := &AttackResult{runMeta: cfg.meta, Scenario: "attack", Kind: kind, URL: cfg.url,
		Workers: cfg.workers, DurationS: cfg.duration.Seconds()}
	res.Label = cfg.meta.Label + "-" + kind
	fail := func(err error) *AttackResult {
		res.Fatal = err.Error()
		return res
	}
	a := &attackRun{cfg: cfg, kind: kind, out: newEvents(), errs: newEvents()}
	var err error
	if a.t, err = newTarget(cfg.url, 1024); err != nil {
		return fail(err)
	}
	defer a.t.http.CloseIdleConnections()
	if a.probeT, err = newProbeTarget(cfg.url, cfg.probeSource); err != nil {
		return fail(err)
	}
	defer a.probeT.http.CloseIdleConnections()
	u, _ := url.Parse(cfg.url) // newTarget parsed it
	a.host, a.path = u.Host, u.RequestURI()
	base, ok := procRSS(cfg.serverPID)
	if !ok {
		return fail(fmt.Errorf("cannot read /proc/%d/status (--server-pid)", cfg.serverPID))
	}
	worker, teardown, err := a.prepare(ctx, res)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", kind, err))
	}

	actx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var probes histogram
	var peak int64
	c0 := selfCPU()
	s0, sOK := procCPU(cfg.serverPID)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { res.ProbesFailed = a.probe(actx, &probes) })
	wg.Go(func() { peak = samplePeak(actx, cfg.serverPID, base) })
	for w := range cfg.workers {
		wg.Go(func() { worker(actx, w) })
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	res.ToolCPU = (selfCPU() - c0).Seconds() / elapsed
	if s1, ok := procCPU(cfg.serverPID); ok && sOK {
		res.ServerCPU = (s1 - s0).Seconds() / elapsed
	}
	teardown()

	after, seen, waited, recovered := waitRecovery(ctx, cfg.serverPID, base, cfg.recoverWait)
	res.RSSBaselineKiB, res.RSSPeakKiB, res.RSSAfterKiB = base>>10, max(peak, seen)>>10, after>>10
	res.RSSLimitKiB, res.RecoverWaitS, res.RSSRecovered = rssLimit(base)>>10, waited.Seconds(), recovered
	res.ProbeUS = Latency{P50: msf(probes.quantile(0.50)), P90: msf(probes.quantile(0.90)), P99: msf(probes.quantile(0.99)),
		Max: msf(time.Duration(probes.max)), Mean: msf(probes.mean()), N: probes.n}
	res.P99OK = probes.n > 0 && probes.quantile(0.99) < time.Second
	res.Outcomes, res.Samples = a.out.snapshot()
	for _, n := range res.Outcomes {
		res.Requests += n
	}
	res.RequestsPerS = float64(res.Requests) / elapsed
	res.Errors, res.ErrorSamples = a.errs.snapshot()
	res.OK = true
	return res
}

// prepare returns the worker of the run's kind and what to do once the
// workers are done, after setting up what the attack needs.
func (a *attackRun) prepare(ctx context.Context, res *AttackResult) (func(context.Context, int), func(), error) {
	nothing := func() {}
	switch a.kind {
	case "utf8":
		a.bodies = [][]byte{[]byte(`{"channel":"/x","data":"` + "\xff" + `"}`)}
		teardown, err := a.listen(ctx, res)
		return a.flood, teardown, err
	case "channel":
		a.bodies = [][]byte{channelPublish(bigBody), channelPublish(smallChannel)}
	case "nesting":
		a.bodies = [][]byte{bytes.Repeat([]byte("["), bigBody)}
	case "batch":
		hs := handshakeBody[1 : len(handshakeBody)-1] // the message without its array
		a.bodies = [][]byte{batchOf([]byte("{}"), (bigBody-1)/3), batchOf(hs, handshakeBatch)}
	case "handshakes":
		a.bodies = [][]byte{handshakeBody}
	case "subscribe":
		return a.subscribeFlood, nothing, nil
	case "slowbody":
		return func(ctx context.Context, _ int) { a.holdConns(ctx, a.slowBody) }, nothing, nil
	case "idlesockets":
		return func(ctx context.Context, _ int) { a.holdConns(ctx, a.idleSocket) }, nothing, nil
	default:
		return nil, nil, fmt.Errorf("unknown attack %q", a.kind)
	}
	return a.flood, nothing, nil
}

// channelPublish returns an anonymous publish of size bytes to a channel
// /a/a/a... that makes up nearly all of it.
func channelPublish(size int) []byte {
	const head, tail = `{"channel":"`, `","data":1}`
	n := (size - len(head) - len(tail)) / 2
	return []byte(head + strings.Repeat("/a", n) + tail)
}

// batchOf returns a JSON array of n copies of msg.
func batchOf(msg []byte, n int) []byte {
	b := make([]byte, 0, 1+n*(len(msg)+1))
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, msg...)
	}
	return append(b, ']')
}

// subscribeMany returns a subscribe of clientID to n channels /flood/w/i,
// i from first on.
func subscribeMany(clientID string, w, first, n int) []byte {
	b := fmt.Appendf(nil, `[{"channel":"/meta/subscribe","clientId":%q,"subscription":[`, clientID)
	for i := first; i < first+n; i++ {
		if i > first {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"/flood/%d/%d"`, w, i)
	}
	return append(b, "]}]"...)
}

// listen subscribes the utf8 attack's WebSocket clients to /x. The
// returned function closes them and reports what they received.
func (a *attackRun) listen(ctx context.Context, res *AttackResult) (func(), error) {
	sh := &shared{ev: a.errs}
	subs := make([]*subscriber, a.cfg.subs)
	for i := range subs {
		subs[i] = &subscriber{idx: i, channel: "/x", sh: sh, t: a.probeT, stats: newRecvStats(0), done: make(chan struct{})}
	}
	live := setupAll(ctx, subs, 8, sh.ev, self, func(s *subscriber) { go s.readWS() })
	if len(live) == 0 {
		return nil, errors.New("no WebSocket client could subscribe to /x")
	}
	return func() {
		sh.stopping.Store(true)
		closeAll(live, nil)
		res.Subscribers = len(live)
		res.DroppedSubs = sh.dropped.Load() + int64(len(subs)-len(live))
		for _, s := range live {
			select {
			case <-s.done: // its reader is over: its counts are final
				res.Deliveries += s.stats.msgs
			default:
			}
		}
	}, nil
}

// newProbeTarget returns a target whose connections come from source, an
// IP address of this machine (empty: the system's choice).
func newProbeTarget(rawURL, source string) (*target, error) {
	t, err := newTarget(rawURL, 1024)
	if err != nil || source == "" {
		return t, err
	}
	ip := net.ParseIP(source)
	if ip == nil {
		return nil, fmt.Errorf("--probe-source: not an IP address: %q", source)
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1, LocalAddr: &net.TCPAddr{IP: ip}}
	t.http.Transport.(*http.Transport).DialContext = d.DialContext
	t.dialer.NetDialContext = d.DialContext
	return t, nil
}

// probe handshakes like a normal long-polling client every probeEvery until
// ctx ends, and disconnects each session it makes. It records each
// handshake's latency in h (a failed one as the request time limit) and
// returns how many failed.
func (a *attackRun) probe(ctx context.Context, h *histogram) int64 {
	tick := time.NewTicker(a.cfg.probeEvery)
	defer tick.Stop()
	var failed int64
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return failed
		case <-tick.C:
		}
		// A probe under way when the attack ends still counts.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.timeout)
		start := time.Now()
		id, err := a.probeT.handshake(pctx)
		d := time.Since(start)
		if err != nil {
			failed++
			d = a.cfg.timeout
			a.errs.add("probe handshake failed", err.Error())
		} else {
			disc := fmt.Appendf(nil, `[{"channel":"/meta/disconnect","clientId":%q,"id":"d"}]`, id)
			if buf, err = a.probeT.post(pctx, disc, buf); err != nil {
				a.errs.add("probe disconnect failed", err.Error())
			}
		}
		h.record(d)
		cancel()
	}
}

// pause sleeps for d, and reports false when ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// flood posts the run's bodies in turn, worker w starting with the w-th,
// one at a time, until ctx ends.
func (a *attackRun) flood(ctx context.Context, w int) {
	var buf []byte
	for i := w; ctx.Err() == nil; i++ {
		buf = a.send(ctx, a.bodies[i%len(a.bodies)], buf)
	}
}

// subscribeFlood is one client subscribing to ever more channels,
// subscribeBatch per request, until ctx ends.
func (a *attackRun) subscribeFlood(ctx context.Context, w int) {
	var id string
	for id == "" && ctx.Err() == nil {
		hctx, cancel := context.WithTimeout(ctx, a.cfg.timeout)
		var err error
		if id, err = a.t.handshake(hctx); err != nil && ctx.Err() == nil {
			a.out.add("handshake failed", err.Error())
			pause(ctx, refusedPause)
		}
		cancel()
	}
	var buf []byte
	for i := 0; ctx.Err() == nil; i += subscribeBatch {
		buf = a.send(ctx, subscribeMany(id, w, i, subscribeBatch), buf)
	}
}

// send posts body within the request time limit and counts its outcome;
// it returns the reply's buffer for reuse. A request cut short by the end
// of the attack is not counted.
func (a *attackRun) send(ctx context.Context, body, buf []byte) []byte {
	rctx, cancel := context.WithTimeout(ctx, a.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, a.t.httpURL, bytes.NewReader(body))
	if err != nil {
		a.out.add("request error", err.Error())
		return buf
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.t.http.Do(req)
	if err == nil {
		buf, err = readInto(resp.Body, buf[:0])
		resp.Body.Close()
	}
	switch {
	case ctx.Err() != nil:
	case err != nil:
		a.out.add(errOutcome(err), err.Error())
	default:
		a.out.add(replyOutcome(resp.StatusCode, buf))
	}
	return buf
}

// holdConns runs cfg.conns loops until ctx ends, each holding a connection
// made by open until the server ends it, then making another (after a
// pause, so that refusals do not turn into a hot loop).
func (a *attackRun) holdConns(ctx context.Context, open func(context.Context, int) (string, string)) {
	var wg sync.WaitGroup
	for c := range a.cfg.conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				key, detail := open(ctx, c)
				if key != "" {
					a.out.add(key, detail)
				}
				if key != openAtEnd {
					pause(ctx, refusedPause)
				}
			}
		})
	}
	wg.Wait()
}

// dial opens a TCP connection to the server within the request time
// limit; on failure it returns the outcome to count ("" when the attack
// is over).
func (a *attackRun) dial(ctx context.Context) (net.Conn, string, string) {
	dctx, cancel := context.WithTimeout(ctx, a.cfg.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", a.host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ""
		}
		return nil, "dial error", err.Error()
	}
	return conn, "", ""
}

// slowBody sends a request's headers and then never its body (even c) or
// one byte of it a second (odd c), and reads the server's answer while it
// drips, until the end of the attack. A refusal (429 beyond
// --max-connections-per-ip) must come at once: an answer later than the
// request time limit counts apart, as "HTTP 429 after the time limit".
func (a *attackRun) slowBody(ctx context.Context, c int) (string, string) {
	conn, key, detail := a.dial(ctx)
	if conn == nil {
		return key, detail
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		a.path, a.host, slowBodyLen); err != nil {
		return connOutcome(ctx, err)
	}
	start := time.Now()
	if c%2 == 1 {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for sent := 0; sent < slowBodyLen; sent++ {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				if _, err := conn.Write([]byte("[")); err != nil {
					return // the server closed it: its answer, if any, is read below
				}
			}
		})
		defer func() { close(done); wg.Wait() }()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return connOutcome(ctx, err)
	}
	resp.Body.Close()
	key, detail = "HTTP "+strconv.Itoa(resp.StatusCode), resp.Status
	if d := time.Since(start); d > a.cfg.timeout {
		key, detail = key+" after the time limit", fmt.Sprintf("%s after %v", resp.Status, d.Round(time.Millisecond))
	}
	return key, detail
}

// idleSocket opens a WebSocket that never handshakes and waits for the
// server to close it.
func (a *attackRun) idleSocket(ctx context.Context, _ int) (string, string) {
	dctx, cancel := context.WithTimeout(ctx, a.cfg.timeout)
	conn, resp, err := a.t.dialer.DialContext(dctx, a.t.wsURL, nil)
	cancel()
	if err != nil {
		switch {
		case resp != nil:
			return "upgrade refused: HTTP " + strconv.Itoa(resp.StatusCode), err.Error()
		case ctx.Err() != nil:
			return "", ""
		}
		return "dial error", err.Error()
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.NetConn().SetReadDeadline(time.Now()) })
	defer stop()
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return "closed by the server: " + strconv.Itoa(ce.Code), ce.Text
			}
			return connOutcome(ctx, err)
		}
	}
}
