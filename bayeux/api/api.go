package api

import (
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// DefaultMaxBodyBytes is the request body limit used when
// Config.MaxBodyBytes is zero or negative: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Config configures the HTTP API. The zero value is a working configuration
// that answers only requests from the loopback addresses.
type Config struct {
	// Keys are the API keys. When there is at least one, every request
	// except the probes (GET /health, /healthz, /readyz) and the status
	// page's files (GET /status, /status.js, /status.css) must present one
	// of them (several keys let a key be rotated without downtime), as
	// "Authorization: Bearer <key>" or "X-API-Key: <key>"; otherwise it is
	// answered 401. Keys are compared in constant time. Surrounding spaces
	// are ignored, and so are empty keys.
	Keys []string

	// AllowNets lists the networks requests may come from; other sources
	// are answered 403. When it is empty, the default depends on Keys:
	// with keys, any source that presents a key is allowed; without keys,
	// only the loopback addresses (127.0.0.0/8 and ::1/128) are. When both
	// are set, a request needs a key and an allowed source.
	AllowNets []netip.Prefix

	// TrustedProxies lists the reverse proxies in front of the API. When a
	// request comes from one of them, its source is taken from
	// X-Forwarded-For: the rightmost address that is not itself a trusted
	// proxy. X-Forwarded-For is ignored for every other peer, so it cannot
	// be forged by calling the API directly. Default: none, the source is
	// always the peer address of the connection.
	TrustedProxies []netip.Prefix

	// MaxBodyBytes caps the size of a request body; a larger body is
	// answered 413. Default DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64

	// Presence answers GET /presence; nil answers it 404. Pass the
	// presence extension (extensions/presence) the server runs.
	Presence Presence
	// Version is the server's version, shown by the status page (GET
	// /status) and given in GET /status.json; empty leaves it out.
	Version string
	// Logger receives the API's logs: server errors, refused requests (at
	// Info) and every call (at Debug). Default slog.Default().
	Logger *slog.Logger
}

// handler serves the API for one Server.
type handler struct {
	srv     *bayeux.Server
	access  *access
	maxBody int64
	log     *slog.Logger
	router  *mux.Router

	presenceOf Presence // nil without presence

	pages   map[string]staticFile // the status page's files, by path
	version string                // Config.Version
	started time.Time             // when New was called, for the uptime
	status  statusCache           // the last answer of /status.json
}

// New returns the HTTP API of srv, configured by cfg. The handler expects
// paths relative to its own root (/publish, /clients, ...): serve it on a
// listener of its own, or under a prefix with http.StripPrefix, never on
// the Bayeux mount. It panics if srv is nil.
func New(srv *bayeux.Server, cfg Config) http.Handler {
	if srv == nil {
		panic("api: nil *bayeux.Server")
	}
	h := &handler{
		srv:     srv,
		access:  newAccess(cfg),
		maxBody: cfg.MaxBodyBytes,
		log:     cfg.Logger,
		router:  mux.NewRouter(),

		presenceOf: cfg.Presence,

		pages:   statusPage(),
		version: cfg.Version,
		started: time.Now(),
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.route(healthPath, methods{http.MethodGet: h.health})
	h.route("/publish", methods{http.MethodPost: h.publish})
	h.route("/clients", methods{http.MethodGet: h.clients})
	h.route("/clients/{clientId}", methods{http.MethodGet: h.client, http.MethodDelete: h.disconnect})
	h.route("/clients/{clientId}/deliver", methods{http.MethodPost: h.deliver})
	h.route("/channels", methods{http.MethodGet: h.channels})
	h.route("/history", methods{http.MethodGet: h.history, http.MethodDelete: h.removeHistory})
	h.route("/presence", methods{http.MethodGet: h.presence})
	h.route(statusDataPath, methods{http.MethodGet: h.statusJSON})
	for path, f := range h.pages {
		h.router.Handle(path, f)
	}
	h.router.Handle(livenessPath, Liveness())
	h.router.Handle(readinessPath, Readiness(srv))
	h.router.NotFoundHandler = h.wrap(func(http.ResponseWriter, *http.Request) error {
		return errNotFound("no such route")
	})
	return h
}

// healthPath is the oldest of the probes, the routes served without
// authorization.
const healthPath = "/health"

// ServeHTTP authorizes the request (the probes and the status page's
// files, which hold no data, excepted), then routes it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p != healthPath && p != livenessPath && p != readinessPath && !h.isPageFile(p) {
		if err := h.access.authorize(r); err != nil {
			h.log.Info("api: request refused", "method", r.Method, "path", r.URL.Path,
				"ip", h.access.sourceText(r), "reason", err.message)
			h.writeError(w, r, err)
			return
		}
	}
	h.router.ServeHTTP(w, r)
}

// isPageFile reports whether path is one of the status page's files.
func (h *handler) isPageFile(path string) bool {
	_, ok := h.pages[path]
	return ok
}

// handlerFunc is an API handler: it writes its answer, or returns an error
// that wrap turns into a JSON error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// methods maps HTTP methods to the handlers of one path.
type methods map[string]handlerFunc

// route registers the handlers of path. Other methods are answered 405 with
// an Allow header; HEAD is served by the GET handler.
func (h *handler) route(path string, m methods) {
	allowed := make([]string, 0, len(m)+1)
	for method := range m {
		allowed = append(allowed, method)
	}
	if _, ok := m[http.MethodGet]; ok {
		allowed = append(allowed, http.MethodHead)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	h.router.Handle(path, h.wrap(func(w http.ResponseWriter, r *http.Request) error {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		fn, ok := m[method]
		if !ok {
			w.Header().Set("Allow", allow)
			return &apiError{status: http.StatusMethodNotAllowed, code: codeMethodNotAllowed,
				message: r.Method + " is not allowed on " + path + "; use " + allow}
		}
		return fn(w, r)
	}))
}

// wrap adapts fn to an http.Handler: it limits the body, logs the call and
// writes the error fn returns.
func (h *handler) wrap(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
		err := fn(w, r)
		if err != nil {
			h.writeError(w, r, err)
		}
		h.log.Debug("api: call", "method", r.Method, "path", r.URL.Path, "ip", h.access.sourceText(r), "err", err)
	})
}
