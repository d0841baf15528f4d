package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A scale run with --procs P spreads its clients over P worker processes
// (bayou-bench scale-worker), each below the open-file limit of one
// process: worker k has the clients i with i % P == k and its own source
// addresses. The parent publishes and drives the workers with one JSON
// command per line on their stdin; each answers one JSON line on its
// stdout (the first one, unasked, once its clients are subscribed).

// workerEnv is set in a worker's environment, so that a test binary
// standing for bayou-bench knows to act as a worker.
const workerEnv = "BAYOU_BENCH_WORKER"

// workerCmd is a command to a worker.
type workerCmd struct {
	Cmd         string `json:"cmd"` // round, reconnect, status, stop
	Round       int    `json:"round,omitempty"`
	NotExpected []int  `json:"not_expected,omitempty"` // clients whose publish failed
	Deadline    int64  `json:"deadline,omitempty"`     // unix ns
}

// workerReply is a worker's answer.
type workerReply struct {
	Live    []int             `json:"live,omitempty"`
	CPU     time.Duration     `json:"cpu,omitempty"`
	Round   *roundCounts      `json:"round,omitempty"`
	Status  *restartStatus    `json:"status,omitempty"`
	Errors  map[string]int64  `json:"errors,omitempty"`
	Samples map[string]string `json:"samples,omitempty"`
	Err     string            `json:"err,omitempty"`
}

// procSet is a clientSet over worker processes.
type procSet struct {
	workers []*worker
}

type worker struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	enc  *json.Encoder
	dec  *json.Decoder
	live []int
}

// newProcSet starts procs workers; their progress lines go to progress.
func newProcSet(ctx context.Context, cfg *scaleConfig, procs, sources int, progress io.Writer) (*procSet, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ps := &procSet{}
	for k := 0; k < procs; k++ {
		args := []string{"scale-worker", "--url", strings.Join(cfg.urls, ","), "--clients", strconv.Itoa(cfg.clients),
			"--shard", strconv.Itoa(k), "--shards", strconv.Itoa(procs), "--source-base", strconv.Itoa(k * sources),
			"--sources", strconv.Itoa(sources), "--concurrency", strconv.Itoa(max(1, cfg.concurrency/procs)),
			"--channel", cfg.channel, "--read-buffer", strconv.Itoa(cfg.readBuf)}
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Env = append(os.Environ(), workerEnv+"=1")
		cmd.Stderr = progress
		cmd.WaitDelay = 5 * time.Second
		in, err1 := cmd.StdinPipe()
		out, err2 := cmd.StdoutPipe()
		if err := errors.Join(err1, err2); err != nil {
			ps.kill()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			ps.kill()
			return nil, fmt.Errorf("start worker %d: %w", k, err)
		}
		ps.workers = append(ps.workers, &worker{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(out)})
	}
	return ps, nil
}

func (ps *procSet) kill() {
	for _, w := range ps.workers {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
	}
}

// each runs fn for every worker at once and returns the errors.
func (ps *procSet) each(fn func(k int, w *worker) error) error {
	errs := make([]error, len(ps.workers))
	var wg sync.WaitGroup
	for k, w := range ps.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(k, w); err != nil {
				errs[k] = fmt.Errorf("worker %d: %w", k, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// call sends c (unless Cmd is empty) and reads the answer.
func (w *worker) call(c workerCmd) (*workerReply, error) {
	if c.Cmd != "" {
		if err := w.enc.Encode(c); err != nil {
			return nil, err
		}
	}
	var r workerReply
	if err := w.dec.Decode(&r); err != nil {
		return nil, err
	}
	if r.Err != "" {
		return nil, errors.New(r.Err)
	}
	return &r, nil
}

func (ps *procSet) ramp(context.Context) ([]int, time.Duration, error) {
	var mu sync.Mutex
	var live []int
	var cpu time.Duration
	err := ps.each(func(_ int, w *worker) error {
		r, err := w.call(workerCmd{}) // the worker reports once its clients are subscribed
		if err != nil {
			return err
		}
		w.live = r.Live
		mu.Lock()
		live = append(live, r.Live...)
		cpu += r.CPU
		mu.Unlock()
		return nil
	})
	return live, cpu, err
}

func (ps *procSet) round(_ context.Context, r int, expected func(int) bool, deadline time.Time) (roundCounts, error) {
	var mu sync.Mutex
	var rc roundCounts
	err := ps.each(func(_ int, w *worker) error {
		var not []int
		for _, i := range w.live {
			if !expected(i) {
				not = append(not, i)
			}
		}
		rep, err := w.call(workerCmd{Cmd: "round", Round: r, NotExpected: not, Deadline: deadline.UnixNano()})
		if err != nil {
			return err
		}
		if rep.Round == nil {
			return errors.New("no round in the answer")
		}
		mu.Lock()
		rc.add(rep.Round)
		mu.Unlock()
		return nil
	})
	return rc, err
}

func (ps *procSet) reconnect(context.Context) error {
	return ps.each(func(_ int, w *worker) error {
		_, err := w.call(workerCmd{Cmd: "reconnect"})
		return err
	})
}

func (ps *procSet) status(context.Context) (restartStatus, error) {
	var mu sync.Mutex
	var rs restartStatus
	err := ps.each(func(_ int, w *worker) error {
		rep, err := w.call(workerCmd{Cmd: "status"})
		if err != nil {
			return err
		}
		if rep.Status == nil {
			return errors.New("no status in the answer")
		}
		mu.Lock()
		rs.add(*rep.Status)
		mu.Unlock()
		return nil
	})
	return rs, err
}

func (ps *procSet) close(context.Context) (map[string]int64, map[string]string) {
	ev := newEvents()
	var mu sync.Mutex
	err := ps.each(func(_ int, w *worker) error {
		rep, err := w.call(workerCmd{Cmd: "stop"})
		w.in.Close()
		werr := w.cmd.Wait()
		if err != nil {
			return errors.Join(err, werr)
		}
		mu.Lock()
		for k, n := range rep.Errors {
			ev.addN(k, rep.Samples[k], n)
		}
		mu.Unlock()
		return werr
	})
	if err != nil {
		ev.add("worker failed", err.Error())
	}
	return ev.snapshot()
}

// runScaleWorker is the scale-worker mode: one shard of a scale run's
// clients, driven through stdin and stdout.
func runScaleWorker(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cfg := &scaleConfig{}
	fs := flag.NewFlagSet("scale-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var urls string
	var shard, shards, srcBase, sources int
	fs.StringVar(&urls, "url", "", "Bayeux URLs, comma-separated")
	fs.IntVar(&cfg.clients, "clients", 0, "clients of the whole run")
	fs.IntVar(&shard, "shard", 0, "this worker's number, from 0")
	fs.IntVar(&shards, "shards", 1, "workers")
	fs.IntVar(&srcBase, "source-base", 0, "first source address: 127.0.0.(base+1)")
	fs.IntVar(&sources, "sources", 1, "source addresses")
	fs.IntVar(&cfg.concurrency, "concurrency", 16, "clients set up concurrently")
	fs.StringVar(&cfg.channel, "channel", "/users", "channel prefix")
	fs.IntVar(&cfg.readBuf, "read-buffer", 1024, "WebSocket read buffer per client, bytes")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	cfg.urls = splitList(urls)
	if len(cfg.urls) == 0 || shards < 1 || shard < 0 || shard >= shards || sources < 1 || srcBase+sources > 250 || cfg.concurrency < 1 {
		return 2, errors.New("scale-worker: bad flags")
	}
	_, _, restore := raiseFileLimitTo(uint64(cfg.clients/shards + 3*cfg.concurrency + 64))
	defer restore()
	st := &scaleState{ev: newEvents(), resubSem: make(chan struct{}, cfg.concurrency)}
	set, err := newLocalSet(cfg, st, shard, shards, srcBase, sources)
	if err != nil {
		return 1, err
	}
	enc, dec := json.NewEncoder(stdout), json.NewDecoder(stdin)
	live, cpu, _ := set.ramp(ctx)
	if err := enc.Encode(workerReply{Live: live, CPU: cpu}); err != nil {
		return 1, err
	}
	for {
		var c workerCmd
		if err := dec.Decode(&c); err != nil {
			set.close(ctx)
			if errors.Is(err, io.EOF) {
				return 0, nil
			}
			return 1, err
		}
		var rep workerReply
		switch c.Cmd {
		case "round":
			not := make(map[int]bool, len(c.NotExpected))
			for _, i := range c.NotExpected {
				not[i] = true
			}
			if c.Round < 1 || c.Round > scaleRounds {
				rep.Err = fmt.Sprintf("round %d out of range", c.Round)
				break
			}
			rc, _ := set.round(ctx, c.Round, func(i int) bool { return !not[i] }, time.Unix(0, c.Deadline))
			rep.Round = &rc
		case "reconnect":
			_ = set.reconnect(ctx)
		case "status":
			s, _ := set.status(ctx)
			rep.Status = &s
		case "stop":
			rep.Errors, rep.Samples = set.close(ctx)
			return 0, enc.Encode(rep)
		default:
			rep.Err = fmt.Sprintf("unknown command %q", c.Cmd)
		}
		if err := enc.Encode(rep); err != nil {
			set.close(ctx)
			return 1, err
		}
	}
}
