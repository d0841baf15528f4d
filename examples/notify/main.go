// Command notify is the example of the extension authors' guide
// (docs/extensions.md): a Bayou server with an extension of its own that
// authenticates clients by a token at handshake, keeps each user to their
// own channels, answers a /service channel, and sends notifications to
// one user's clients wherever they are connected, on one node or many.
//
//	go run ./examples/notify                  # serves http://127.0.0.1:8000/bayeux
//	go run ./examples/notify -redis redis://127.0.0.1:6379/0 -addr 127.0.0.1:8001
//
// See README.md for the clients.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/redis"
)

// The demo's tokens and key. Give your own (-tokens, -api-key) for
// anything but a demo.
const (
	demoTokens = "ana-token=ana,bob-token=bob,cy-token=cy"
	demoKey    = "notify-demo-key"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "notify:", err)
		os.Exit(2)
	}
}

// options are the command's flags.
type options struct {
	addr, redisURL, namespace, key string
	tokens                         map[string]string
	maxSends                       int64
	timeout                        time.Duration
}

// parseOptions reads the flags in args.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("notify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8000", "address to listen on")
	tokens := fs.String("tokens", demoTokens, "the accepted tokens, as token=user,token=user")
	fs.StringVar(&o.key, "api-key", demoKey, "the key of POST /notify (Authorization: Bearer <key>)")
	fs.Int64Var(&o.maxSends, "max-sends", 100, "notifications one session may send through /service/notify")
	fs.DurationVar(&o.timeout, "timeout", 25*time.Second, "how long a /meta/connect is held")
	fs.StringVar(&o.redisURL, "redis", "", "Redis URL (redis://host:port/db): run as a node of a cluster")
	fs.StringVar(&o.namespace, "redis-namespace", "notify", "prefix of the cluster's Redis keys")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.tokens = map[string]string{}
	for _, pair := range strings.Split(*tokens, ",") {
		tok, user, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return o, fmt.Errorf("-tokens: %q is not token=user", pair)
		}
		o.tokens[tok] = user
	}
	if o.key == "" {
		return o, errors.New("-api-key: an empty key")
	}
	return o, nil
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := newServer(ctx, o, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv.handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "serving Bayeux at http://%s/bayeux\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	drain, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(drain)
	if err := hs.Shutdown(drain); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// server is the example's Bayeux server and the HTTP handler that serves
// it with POST /notify.
type server struct {
	*bayeux.Server
	handler http.Handler
}

// guide:begin server
// newServer assembles the example: the extension, the service, and the
// engine (Redis for a cluster, memory for one node).
func newServer(ctx context.Context, o options, log *slog.Logger) (*server, error) {
	auth, err := newTokenAuth(o.tokens)
	if err != nil {
		return nil, fmt.Errorf("-tokens: %w", err)
	}
	cfg := bayeux.Config{
		Timeout:    o.timeout,
		Extensions: []bayeux.Extension{auth},
		Events: bayeux.Events{Disconnect: func(s *bayeux.Session, why bayeux.EndReason) {
			log.Info("session ended", "user", userOf(s), "clientId", s.ID(), "why", why)
		}},
		Logger: log,
	}
	if o.redisURL != "" {
		engine, err := redis.New(ctx, redis.Config{URL: o.redisURL, Namespace: o.namespace, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("-redis: %w", err)
		}
		cfg.Engine = engine // the server closes it at Shutdown
	}
	srv, err := bayeux.New(cfg)
	if err != nil {
		if cfg.Engine != nil {
			_ = cfg.Engine.Close()
		}
		return nil, err
	}
	nt := &notifier{srv: srv, maxSends: o.maxSends, key: o.key, log: log}
	if err := srv.HandleService("/service/notify", nt.serve); err != nil {
		_ = srv.Shutdown(context.Background())
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/bayeux", srv)
	mux.Handle("/bayeux/", srv)
	mux.Handle("/notify", nt)
	return &server{Server: srv, handler: mux}, nil
}

// guide:end server
