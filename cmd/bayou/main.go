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
//	bayou --tls-cert cert.pem --tls-key key.pem  # HTTPS and WSS; SIGHUP reloads them
//	bayou version                        # module version and VCS revision
//
// SIGTERM and SIGINT drain the server (see --pre-drain, --drain-timeout);
// SIGHUP reloads the token file, the config file's ACL and the TLS
// certificate. Run bayou --help for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, hup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bayou:", err)
		os.Exit(2)
	}
}

// run serves until ctx is done, then drains (see lifecycleOptions.drain).
// Each value received from hup reloads what can be reloaded (see
// reloader); nil never does.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hup <-chan os.Signal) error {
	if len(args) > 0 && args[0] == "version" {
		args = append([]string{"--version"}, args[1:]...) // bayou version [flags]
	}
	opts, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	if opts.showVersion {
		fmt.Fprintln(stdout, versionText())
		return nil
	}
	log := opts.log.logger(stderr)
	cfg := opts.config(log)
	exts, chain, err := serverExtensions(opts, log)
	if err != nil {
		return err
	}
	cfg.Extensions = exts
	pres, err := opts.presence.extension(log)
	if err != nil {
		return err
	}
	var presenceAPI api.Presence // nil without presence (not a nil *presence.Presence)
	if pres != nil {
		cfg.Extensions = append(cfg.Extensions, pres)
		presenceAPI = pres
	}
	var cert *certificate
	if opts.tls.cert != "" {
		if cert, err = loadCertificate(opts.tls.cert, opts.tls.key); err != nil {
			return err
		}
	}
	engine, err := opts.redis.engine(ctx, log)
	if err != nil {
		return err
	}
	if engine != nil {
		cfg.Engine = engine
	}
	srv, err := bayeux.New(cfg)
	if err != nil {
		return err
	}
	servers, errc, err := serve(opts.listeners(srv, cert, presenceAPI, log), stdout, log)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	log.Info("settings", "version", versionText(), "timeout", opts.timeout, "ping", opts.ping, "auth", opts.auth.mode,
		"aclRules", opts.aclRules(), "history", opts.history.rules.String(), "ack", !opts.history.noAck, "tls", cert != nil)

	rl := &reloader{opts: opts, log: log, chain: chain, cert: cert}
	for {
		select {
		case err := <-errc:
			_ = srv.Shutdown(context.Background())
			for _, hs := range servers {
				_ = hs.Close()
			}
			return fmt.Errorf("serve: %w", err)
		case <-hup:
			if err := rl.reload(); err != nil {
				log.Error("reload failed; what did not load is unchanged", "err", err)
			} else {
				log.Info("reloaded", "extensions", chain != nil, "certificate", cert != nil, "aclRules", opts.aclRules())
			}
		case <-ctx.Done():
			return opts.lifecycle.drain(srv, servers, log)
		}
	}
}
