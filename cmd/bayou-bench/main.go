// Command bayou-bench is a Bayeux load generator and the comparison
// harness's helpers. It drives any Bayeux server (Bayou, faye, CometD) by
// URL.
//
//	bayou-bench fanout   --url http://127.0.0.1:8000/bayeux --subs 1000 [--lp 0.2] [--rate 0]
//	bayou-bench personal --url ... --subs 2000
//	bayou-bench idle     --url ... --clients 10000 --server-pid PID
//	bayou-bench scale    --url ... --clients 100000 --api-url http://127.0.0.1:8001/ --server-pid PID
//	bayou-bench soak     --url ... --api-url ... --pprof-url ... --clients 10000 --duration 10m
//	bayou-bench yardstick --addr 127.0.0.1:0      # raw broadcast server: the machine's limit
//	bayou-bench serve    --addr 127.0.0.1:0 --pprof 127.0.0.1:6060   # Bayou in-process, with pprof
//	bayou-bench report   results.jsonl             # comparison table and targets
//	bayou-bench attack   --url ... --server-pid PID --kind all   # hostile input: probe latency, server RSS
//
// Load runs print a text summary and one JSON line (also appended to
// --json FILE). Each published message carries {"s":seq,"t":sendNanos,
// "p":publisher,"m":measured}; subscribers count what arrives per publisher
// and report published, expected, received, lost, duplicated, out of order,
// delivered/s, latency percentiles and CPU use. Run any mode with -h for
// its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bayou-bench:", err)
	}
	os.Exit(code)
}

const usage = `usage: bayou-bench MODE [flags]
modes:
  fanout      S subscribers on one channel, P publishers, for D seconds after a warm-up
  personal    S subscribers each on its own channel, publishes spread at random
  idle        ramp to N subscribed idle WebSocket clients; handshakes/s and server RSS per client
  scale       N WebSocket clients each on its own channel, one publish to each (API batch or WS); RSS per
              client, time until all have it; with a cluster: Redis commands per op, a node's restart
  soak        C clients (WebSocket and long-polling) with churn and publishes for a duration; RSS,
              goroutines, sessions and channels sampled, a flatness verdict, lost for steady clients
  yardstick   a minimal raw broadcast server (the machine's ceiling) for the same load
  serve       Bayou in-process with net/http/pprof on another port (for CPU profiles)
  report      read JSON result lines and print the comparison table with targets
  attack      hostile-input attacks from one address; a probe's handshake latency and the server's RSS
Run bayou-bench MODE -h for the flags of a mode.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2, nil
	}
	mode, args := args[0], args[1:]
	switch mode {
	case "fanout", "personal":
		return runLoadMode(ctx, mode, args, stdout, stderr)
	case "idle":
		return runIdleMode(ctx, args, stdout, stderr)
	case "scale":
		return runScaleMode(ctx, args, stdout, stderr)
	case "scale-worker": // started by scale --procs
		return runScaleWorker(ctx, args, os.Stdin, stdout, stderr)
	case "soak":
		return runSoakMode(ctx, args, stdout, stderr)
	case "yardstick":
		fs := flag.NewFlagSet("yardstick", flag.ContinueOnError)
		fs.SetOutput(stderr)
		addr := fs.String("addr", "127.0.0.1:0", "listen address (port 0: any free port)")
		mount := fs.String("mount", "/bayeux", "path printed in the URL (every path is served)")
		timeout := fs.Float64("timeout", 25, "seconds a WebSocket /meta/connect is held")
		if err := fs.Parse(args); err != nil {
			return 2, err
		}
		if err := serveYardstick(ctx, *addr, *mount, seconds(*timeout), stdout); err != nil {
			return 1, err
		}
		return 0, nil
	case "serve":
		return runServe(ctx, args, stdout, stderr)
	case "report":
		return runReport(args, stdout, stderr)
	case "attack":
		return runAttackMode(ctx, args, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0, nil
	}
	fmt.Fprint(stderr, usage)
	return 2, fmt.Errorf("unknown mode %q", mode)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// metaFlags registers the labels a comparison run attaches to results.
func metaFlags(fs *flag.FlagSet, m *runMeta, jsonPath *string) {
	fs.StringVar(&m.Server, "server", "", "name of the server under test, for the report (faye, bayou, yardstick)")
	fs.IntVar(&m.Round, "round", 0, "round number, for the report")
	fs.StringVar(&m.Label, "label", "", "scenario label for the report (defaults to the mode)")
	fs.StringVar(jsonPath, "json", "", "also append the JSON result line to this file")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write the tool's own CPU profile to this file")
}

var cpuProfile string

// profiled runs fn under the CPU profiler when --cpuprofile is set.
func profiled(fn func() *Result) *Result {
	if cpuProfile == "" {
		return fn()
	}
	f, err := os.Create(cpuProfile)
	if err != nil {
		return &Result{Fatal: err.Error()}
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return &Result{Fatal: err.Error()}
	}
	defer pprof.StopCPUProfile()
	return fn()
}

func emit(r *Result, jsonPath string, stdout io.Writer) (int, error) {
	err := emitLine(stdout, jsonPath, r.Fatal, func(w io.Writer) { printText(w, r) }, func(w io.Writer) { printJSON(w, r) })
	return exitStatus(err)
}

// emitLine prints a result as text and as its JSON line (line) on stdout,
// and appends the JSON line to the file at jsonPath when set. It returns
// fatal (the run's own failure, when not "") as an error, or the file's.
func emitLine(stdout io.Writer, jsonPath, fatal string, text, line func(io.Writer)) error {
	text(stdout)
	line(stdout)
	if jsonPath != "" {
		if err := appendLine(jsonPath, line); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if fatal != "" {
		return errors.New(fatal)
	}
	return nil
}

// exitStatus is the status of a mode that ended with err.
func exitStatus(err error) (int, error) {
	if err != nil {
		return 1, err
	}
	return 0, nil
}

func runLoadMode(ctx context.Context, mode string, args []string, stdout, stderr io.Writer) (int, error) {
	cfg := &loadConfig{scenario: mode, personal: mode == "personal"}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var warmup, duration, drain, stall float64
	var via, jsonPath string
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8000/bayeux", "server's Bayeux URL (http://...; WebSockets use ws:// on the same path)")
	fs.StringVar(&cfg.pubURL, "pub-url", "", "Bayeux URL for the publishers when it differs from --url (another node of a cluster)")
	fs.IntVar(&cfg.subs, "subs", 1000, "subscribers")
	fs.Float64Var(&cfg.lpFrac, "lp", 0, "fraction of subscribers on long-polling instead of WebSocket (0..1)")
	fs.IntVar(&cfg.publishers, "pubs", 4, "publishers")
	fs.Float64Var(&cfg.rate, "rate", 0, "publishes per second, all publishers together; 0: as fast as the window and --max-lag allow")
	fs.IntVar(&cfg.window, "window", 16, "unacknowledged publishes allowed per WebSocket publisher")
	fs.StringVar(&via, "pub", "ws", "how publishers publish: ws (WebSocket, with a clientId) or http (anonymous POST, one at a time)")
	fs.Float64Var(&warmup, "warmup", 3, "seconds of publishing before measuring")
	fs.Float64Var(&duration, "duration", 10, "seconds measured")
	fs.Float64Var(&drain, "drain", 10, "seconds at most to wait for owed deliveries after the measured window")
	fs.IntVar(&cfg.payload, "payload", 40, "padding bytes added to each message's data (the rest is about 60 bytes)")
	fs.StringVar(&cfg.channel, "channel", "", "channel (fanout) or channel prefix (personal); default /bench/fan or /bench/u")
	fs.IntVar(&cfg.maxLag, "max-lag", 64, "flow control: publishers pause while subscribers are on average more than this many messages behind; 0: off")
	fs.Float64Var(&stall, "stall-timeout", 2, "seconds a publisher waits on flow control before going on anyway (counted as a stall)")
	fs.IntVar(&cfg.concurrency, "concurrency", 32, "subscribers set up concurrently")
	fs.IntVar(&cfg.readBuf, "read-buffer", 16<<10, "WebSocket read buffer per client, bytes")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "server's PID, to report its CPU use")
	metaFlags(fs, &cfg.meta, &jsonPath)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch via {
	case "ws":
	case "http":
		cfg.pubHTTP = true
	default:
		return 2, fmt.Errorf("--pub: want ws or http, got %q", via)
	}
	if cfg.subs < 1 || cfg.publishers < 1 || cfg.window < 1 || cfg.lpFrac < 0 || cfg.lpFrac > 1 || duration <= 0 {
		return 2, errors.New("need --subs ≥ 1, --pubs ≥ 1, --window ≥ 1, 0 ≤ --lp ≤ 1, --duration > 0")
	}
	if cfg.channel == "" {
		cfg.channel = "/bench/fan"
		if cfg.personal {
			cfg.channel = "/bench/u"
		}
	}
	if cfg.meta.Label == "" {
		cfg.meta.Label = mode
	}
	cfg.warmup, cfg.duration, cfg.drain, cfg.stallTimeout = seconds(warmup), seconds(duration), seconds(drain), seconds(stall)
	raiseFileLimit()
	return emit(profiled(func() *Result { return runLoad(ctx, cfg) }), jsonPath, stdout)
}

func runIdleMode(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	cfg := &idleConfig{}
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var settle, hold float64
	var jsonPath string
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8000/bayeux", "server's Bayeux URL")
	fs.IntVar(&cfg.clients, "clients", 10000, "idle WebSocket clients, each subscribed to its own channel")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "clients set up concurrently")
	fs.Float64Var(&settle, "settle", 5, "seconds to wait after the ramp before reading the server's RSS")
	fs.Float64Var(&hold, "hold", 0, "seconds to keep the clients connected after measuring")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "server's PID, to read its RSS (VmRSS) before and after")
	fs.IntVar(&cfg.readBuf, "read-buffer", 1024, "WebSocket read buffer per client, bytes")
	metaFlags(fs, &cfg.meta, &jsonPath)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if cfg.clients < 1 {
		return 2, errors.New("need --clients ≥ 1")
	}
	if cfg.meta.Label == "" {
		cfg.meta.Label = "idle"
	}
	cfg.settle, cfg.hold = seconds(settle), seconds(hold)
	raiseFileLimit()
	return emit(profiled(func() *Result { return runIdle(ctx, cfg) }), jsonPath, stdout)
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// client is a socket.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
