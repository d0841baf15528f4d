package bayeux

import (
	"net/http"
	"strings"

	"github.com/gorilla/websocket"
)

// route is what a request on the mount asks for: the transport that serves
// it. One classifier (classify) decides it, for ServeHTTP and its log.
type route int

// The routes of the mount.
const (
	routeWebSocket route = iota
	routeClientScript
	routeExtensionScript
	routePreflight
	routeEventSource
	routeCallbackPolling
	routeLongPolling
	routeCrossOriginLongPolling
	routeUnsupported
)

var routeNames = [...]string{
	routeWebSocket:              "websocket",
	routeClientScript:           "client-script",
	routeExtensionScript:        "extension-script",
	routePreflight:              "cors-preflight",
	routeEventSource:            "eventsource",
	routeCallbackPolling:        "callback-polling",
	routeLongPolling:            "long-polling",
	routeCrossOriginLongPolling: "cross-origin-long-polling",
	routeUnsupported:            "unsupported",
}

func (rt route) String() string { return routeNames[rt] }

// classify returns the route of r, whose path is rest below the mount.
func classify(r *http.Request, rest string) route {
	switch {
	case websocket.IsWebSocketUpgrade(r):
		return routeWebSocket
	case strings.HasPrefix(rest, extensionsDir):
		return routeExtensionScript
	case strings.HasSuffix(rest, ".js") || strings.HasSuffix(rest, ".map"):
		return routeClientScript
	case r.Method == http.MethodOptions || r.Header.Get("Access-Control-Request-Method") != "":
		return routePreflight
	case r.Method == http.MethodGet && acceptsEventStream(r):
		return routeEventSource
	case r.Method == http.MethodGet:
		return routeCallbackPolling
	case r.Method == http.MethodPost && r.Header.Get("Origin") != "" && !sameOrigin(r):
		return routeCrossOriginLongPolling
	case r.Method == http.MethodPost:
		return routeLongPolling
	}
	return routeUnsupported
}

// sameOrigin reports whether the request's Origin names the host it was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if i := strings.Index(o, "://"); i >= 0 {
		o = o[i+3:]
	}
	return o == r.Host
}

// subpath reports whether path is served by the mount (the mount itself,
// anything below it, or the mount with an extension such as "/bayeux.js")
// and returns what follows the mount.
func (s *Server) subpath(path string) (string, bool) {
	m := s.cfg.Mount
	if m == "/" {
		return path, true
	}
	if !strings.HasPrefix(path, m) {
		return "", false
	}
	rest := path[len(m):]
	if rest == "" || rest[0] == '/' || (rest[0] == '.' && !strings.Contains(rest, "/")) {
		return rest, true
	}
	return "", false
}

func lastSegment(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
