package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
)

// listener is one HTTP listener of the command.
type listener struct {
	name    string
	addr    string
	path    string // printed after the address
	handler http.Handler
	tls     *tls.Config // nil: plain HTTP
}

// listeners returns the command's listeners: Bayeux (with the probes),
// the HTTP API and pprof when configured. cert is the TLS certificate, nil
// without TLS.
func (o *options) listeners(srv *bayeux.Server, cert *certificate, presence api.Presence, log *slog.Logger) []listener {
	mux := http.NewServeMux()
	o.lifecycle.mountProbes(mux, srv)
	mux.Handle("/", srv) // the server answers its mount paths and 404s the rest
	bayeuxListener := listener{name: "Bayeux", addr: o.addr, path: o.mount, handler: mux}
	if cert != nil {
		bayeuxListener.tls = cert.config()
	}
	ls := []listener{bayeuxListener}
	prom := metricsHandler(srv)
	ls = append(ls, metricsListeners(o.metricsAddr, prom)...)
	if o.api.addr != "" {
		trusted, _ := o.limits.proxies()
		l := listener{name: "the HTTP API", addr: o.api.addr, path: "/", handler: withMetrics(prom, o.api.handler(srv, trusted, presence, log))}
		if o.tls.api {
			l.tls = cert.config()
		}
		ls = append(ls, l)
	}
	if o.pprofAddr != "" {
		ls = append(ls, listener{name: "pprof", addr: o.pprofAddr, path: "/debug/pprof/", handler: pprofHandler()})
	}
	return ls
}

// serve starts an http.Server per listener and returns them, and the
// channel their Serve errors arrive on. On an error no server is left
// running.
func serve(ls []listener, stdout io.Writer, log *slog.Logger) ([]*http.Server, <-chan error, error) {
	servers := make([]*http.Server, 0, len(ls))
	errc := make(chan error, len(ls))
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, hs := range servers {
				_ = hs.Close()
			}
			return nil, nil, fmt.Errorf("listen for %s: %w", l.name, err)
		}
		hs := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			TLSConfig: l.tls, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		servers = append(servers, hs)
		scheme := "http"
		if l.tls != nil {
			scheme = "https"
		}
		url := fmt.Sprintf("%s://%s%s", scheme, ln.Addr(), l.path)
		fmt.Fprintf(stdout, "bayou serving %s at %s\n", l.name, url)
		log.Info("serving", "what", l.name, "url", url)
		if l.tls != nil {
			go func() { errc <- hs.ServeTLS(ln, "", "") }()
		} else {
			go func() { errc <- hs.Serve(ln) }()
		}
	}
	return servers, errc, nil
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
