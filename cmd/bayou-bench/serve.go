package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// runServe runs Bayou in-process, configured like cmd/bayou's defaults,
// with net/http/pprof on a separate listener, so that CPU profiles can be
// taken under load without changing cmd/bayou.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "Bayeux listen address")
	pprofAddr := fs.String("pprof", "127.0.0.1:0", "net/http/pprof listen address")
	mount := fs.String("mount", "/bayeux", "mount path")
	timeout := fs.Float64("timeout", 25, "seconds a /meta/connect is held")
	ping := fs.Float64("ping", 25, "seconds between WebSocket pings; 0 disables them")
	maxQueue := fs.Int("max-queue-bytes", 4<<20, "bytes queued per session before it is dropped")
	logLevel := fs.String("log-level", "warn", "log level")
	mutexFrac := fs.Int("mutex-profile-fraction", 0, "runtime.SetMutexProfileFraction (0: off)")
	blockRate := fs.Int("block-profile-rate", 0, "runtime.SetBlockProfileRate in ns (0: off)")
	memRate := fs.Int("mem-profile-rate", 0, "runtime.MemProfileRate: bytes between heap samples (1: every allocation, for exact sizes; 0: the default)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return 2, err
	}
	runtime.SetMutexProfileFraction(*mutexFrac)
	runtime.SetBlockProfileRate(*blockRate)
	if *memRate > 0 {
		runtime.MemProfileRate = *memRate
	}
	cfg := bayeux.Config{
		Mount:         *mount,
		Timeout:       seconds(*timeout),
		Ping:          seconds(*ping),
		MaxQueueBytes: *maxQueue,
		Logger:        slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if *ping == 0 {
		cfg.Ping = -1
	}
	srv, err := bayeux.New(cfg)
	if err != nil {
		return 1, err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return 1, err
	}
	pln, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		return 1, err
	}
	pm := http.NewServeMux()
	pm.HandleFunc("/debug/pprof/", pprof.Index)
	pm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
	pm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = http.Serve(pln, pm) }()

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stdout, "bayou serving Bayeux at http://%s%s\n", ln.Addr(), *mount)
	fmt.Fprintf(stdout, "pprof at http://%s/debug/pprof/\n", pln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		return 1, err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = hs.Shutdown(sctx)
	pln.Close()
	return 0, nil
}
