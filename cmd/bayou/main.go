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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
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
	srv, err := bayeux.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv) // the server answers its mount paths and 404s the rest
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	url := fmt.Sprintf("http://%s%s", ln.Addr(), opts.mount)
	fmt.Fprintf(stdout, "bayou serving Bayeux at %s\n", url)
	log.Info("serving", "url", url, "timeout", opts.timeout, "ping", opts.ping, "auth", opts.auth.mode, "aclRules", opts.aclRules())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(drain); err != nil {
		log.Warn("bayeux shutdown", "err", err)
	}
	if err := hs.Shutdown(drain); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
