package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
)

// lifecycleOptions are the settings of the probes and of the drain at
// shutdown.
type lifecycleOptions struct {
	healthPath   string
	drainTimeout float64
	preDrain     float64
}

func (l *lifecycleOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&l.healthPath, "health-path", "/", "path under which the Bayeux listener serves the probes healthz (alive) and readyz (ready: engine reachable, not draining), outside --mount; empty serves none (the API listener always has them)")
	fs.Float64Var(&l.drainTimeout, "drain-timeout", 10, "seconds the shutdown may take to answer held connects, close sockets and finish requests before connections are cut")
	fs.Float64Var(&l.preDrain, "pre-drain", 0, "seconds between SIGTERM (or SIGINT) and the drain, during which readyz fails (so that load balancers stop sending new clients) while clients are still served")
}

func (l *lifecycleOptions) validate(mount string) error {
	if l.drainTimeout <= 0 {
		return fmt.Errorf("--drain-timeout must be positive, got %v", l.drainTimeout)
	}
	if l.preDrain < 0 {
		return fmt.Errorf("--pre-drain must not be negative, got %v", l.preDrain)
	}
	if l.healthPath == "" {
		return nil
	}
	if !strings.HasPrefix(l.healthPath, "/") || strings.Trim(l.healthPath, pathChars) != "" {
		return fmt.Errorf("--health-path must start with / and hold only letters, digits and - . _ ~ /, got %q", l.healthPath)
	}
	m := strings.TrimRight(mount, "/")
	for _, p := range l.probePaths() {
		if p == m || strings.HasPrefix(p, m+"/") || p == m+".js" {
			return fmt.Errorf("--health-path %q puts %s inside --mount %s: choose a path outside it", l.healthPath, p, mount)
		}
	}
	return nil
}

// pathChars are the characters a --health-path may hold: no pattern
// syntax of http.ServeMux, nothing to escape.
const pathChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/"

// probePaths returns the paths of the liveness and readiness probes.
func (l *lifecycleOptions) probePaths() []string {
	return []string{path.Join(l.healthPath, "healthz"), path.Join(l.healthPath, "readyz")}
}

// mountProbes adds the probes to the Bayeux listener's mux, unless
// disabled.
func (l *lifecycleOptions) mountProbes(mux *http.ServeMux, srv *bayeux.Server) {
	if l.healthPath == "" {
		return
	}
	paths := l.probePaths()
	mux.Handle(paths[0], api.Liveness())
	mux.Handle(paths[1], api.Readiness(srv))
}

// drain takes the server down gently once the process is told to stop:
// readiness fails at once, clients are served on for --pre-drain, then
// held connects are answered (with advice to handshake again, elsewhere),
// sockets closed and the listeners shut, within --drain-timeout.
func (l *lifecycleOptions) drain(srv *bayeux.Server, servers []*http.Server, log *slog.Logger) error {
	srv.Drain()
	if l.preDrain > 0 {
		log.Info("draining: readiness fails, clients still served", "preDrain", seconds(l.preDrain))
		time.Sleep(seconds(l.preDrain))
	}
	log.Info("shutting down", "drainTimeout", seconds(l.drainTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), seconds(l.drainTimeout))
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("bayeux shutdown", "err", err)
	}
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			for _, other := range servers {
				_ = other.Close()
			}
			return fmt.Errorf("http shutdown: %w", err)
		}
	}
	return nil
}
