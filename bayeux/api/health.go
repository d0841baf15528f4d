package api

import (
	"context"
	"net/http"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// readyTimeout bounds the readiness check of /readyz (the engine's Ping).
const readyTimeout = 2 * time.Second

// The probes served without key, besides the older /health.
const (
	livenessPath  = "/healthz"
	readinessPath = "/readyz"
)

// probe is the answer of /healthz and /readyz.
type probe struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// Liveness returns the handler of a liveness probe: GET (or HEAD) answers
// 200 {"ok":true} as long as the process serves HTTP; other methods get
// 405. Mount it where the orchestrator looks (the API serves it at
// /healthz).
func Liveness() http.Handler {
	return probeHandler(func(context.Context) error { return nil })
}

// Readiness returns the handler of a readiness probe for srv: GET (or
// HEAD) answers 200 {"ok":true} when srv.Ready reports nil within a couple
// of seconds, else 503 {"ok":false,"reason":"..."} (draining, or the
// engine out of reach); other methods get 405. The API serves it at
// /readyz.
func Readiness(srv *bayeux.Server) http.Handler {
	if srv == nil {
		panic("api: nil *bayeux.Server")
	}
	return probeHandler(srv.Ready)
}

// probeHandler answers GET and HEAD with the outcome of check.
func probeHandler(check func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, result{Error: &errorBody{Code: codeMethodNotAllowed,
				Message: r.Method + " is not allowed on " + r.URL.Path + "; use GET, HEAD"}})
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := check(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, probe{Reason: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, probe{OK: true})
	})
}
