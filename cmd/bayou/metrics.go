package main

import (
	"net/http"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/metrics"
)

// metricsPath is where the Prometheus metrics are served, on the
// --metrics-addr listener and on the API listener.
const metricsPath = "/metrics"

// withMetrics serves the metrics handler m at /metrics and every other
// path, untouched, with next (the HTTP API). /metrics needs no API key,
// like /health: it gives counts, no data.
func withMetrics(m, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == metricsPath {
			m.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// metricsListeners returns the listener of --metrics-addr (none when it is
// empty), serving m at /metrics.
func metricsListeners(addr string, m http.Handler) []listener {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle(metricsPath, m)
	return []listener{{name: "metrics", addr: addr, path: metricsPath, handler: mux}}
}

// metricsHandler returns the handler of srv's Prometheus metrics, with the
// Go runtime and process metrics.
func metricsHandler(srv *bayeux.Server) http.Handler { return metrics.Handler(srv) }
