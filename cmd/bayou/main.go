// Command bayou runs a Bayeux pub/sub server that faye and CometD clients
// connect to unchanged: WebSocket, long-polling, callback-polling (JSONP),
// cross-origin long-polling and EventSource, all on one mount path.
//
//	go run ./cmd/bayou                  # serves http://127.0.0.1:8000/bayeux
//	bayou --addr :8000 --timeout 30     # every flag also reads BAYOU_* variables
//	bayou --config bayou.json           # settings (and ACL rules) from a JSON file
//	bayou --auth token --token-secret s3cret --protect '/private/**'
//	bayou --auth jwt --jwt-secret s3cret  # a JWT in ext; its "channels" claim lists the allowed channels
//	bayou --auth callback --callback-url http://127.0.0.1:9000/auth
//	bayou --history '/chat/**=100:10m'   # keep 100 messages per chat channel for replay
//
// Run bayou --help for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
	"github.com/bayou-pubsub/bayou/bayeux/redis"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bayou:", err)
		os.Exit(2)
	}
}

// run serves until ctx is done, then drains: held connects are answered and
// WebSockets closed with 1001 before the listener stops.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := opts.logger(stderr)
	if err != nil {
		return err
	}
	cfg := opts.config(log)
	if cfg.Extensions, err = opts.extensions(log); err != nil {
		return err
	}
	if opts.redisURL != "" {
		engine, err := redis.New(ctx, redis.Config{URL: opts.redisURL, Namespace: opts.redisNamespace, Logger: log})
		if err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		cfg.Engine = engine
		log.Info("cluster engine on Redis", "url", opts.redisURL, "node", engine.NodeID())
	}
	srv, err := bayeux.New(cfg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv) // the server answers its mount paths and 404s the rest
	listeners := []listener{{name: "Bayeux", addr: opts.addr, path: opts.mount, handler: mux}}
	prom := metricsHandler(srv)
	listeners = append(listeners, metricsListeners(opts.metricsAddr, prom)...)
	if opts.apiAddr != "" {
		var keys []string
		if opts.apiKey != "" {
			keys = []string{opts.apiKey}
		}
		listeners = append(listeners, listener{name: "the HTTP API", addr: opts.apiAddr, path: "/", handler: withMetrics(prom, api.New(srv, api.Config{Keys: keys, Logger: log}))})
	}
	if opts.pprofAddr != "" {
		listeners = append(listeners, listener{name: "pprof", addr: opts.pprofAddr, path: "/debug/pprof/", handler: pprofHandler()})
	}
	servers := make([]*http.Server, 0, len(listeners))
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			for _, hs := range servers {
				_ = hs.Close()
			}
			return fmt.Errorf("listen for %s: %w", l.name, err)
		}
		hs := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		servers = append(servers, hs)
		url := fmt.Sprintf("http://%s%s", ln.Addr(), l.path)
		fmt.Fprintf(stdout, "bayou serving %s at %s\n", l.name, url)
		log.Info("serving", "what", l.name, "url", url)
		go func() { errc <- hs.Serve(ln) }()
	}
	log.Info("settings", "timeout", opts.timeout, "ping", opts.ping, "auth", opts.auth.mode, "aclRules", opts.aclRules(),
		"history", opts.history.rules.String(), "ack", !opts.history.noAck)

	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		for _, hs := range servers {
			_ = hs.Close()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(drain); err != nil {
		log.Warn("bayeux shutdown", "err", err)
	}
	for _, hs := range servers {
		if err := hs.Shutdown(drain); err != nil {
			return fmt.Errorf("http shutdown: %w", err)
		}
	}
	return nil
}

// listener is one HTTP listener of the command.
type listener struct {
	name    string
	addr    string
	path    string // printed after the address
	handler http.Handler
}

// pprofHandler serves the runtime profiles (go tool pprof URL/debug/pprof/profile).
func pprofHandler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return m
}
