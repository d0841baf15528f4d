package bayeux

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bayou-pubsub/bayou/channels"
)

// Server is a Bayeux server. It is an http.Handler that serves every
// transport on one mount path; mount it on any router at Config.Mount:
//
//	srv, err := bayeux.New(bayeux.Config{Mount: "/bayeux"})
//	http.Handle("/bayeux", srv)
//	http.Handle("/bayeux/", srv)
type Server struct {
	cfg      Config
	lim      limits
	throttle *throttle // nil without per-address limits
	log      *slog.Logger
	// sessionLog writes the rate-limited lines of sessions starting and ending.
	sessionLog sessionLog
	engine     Engine
	index      *channels.Index[*Session]
	sessions   *sessionTable
	upgrader   websocket.Upgrader
	origins    map[string]bool // nil: any origin

	ctx      context.Context // done when the server shuts down
	cancel   context.CancelFunc
	draining atomic.Bool // see Drain
	crew     *crew       // every goroutine of the server

	connsMu sync.Mutex
	conns   map[*socket]struct{} // open WebSockets, closed at shutdown

	observers observers // Events added by Observe

	matchPool sync.Pool  // *[]*Session scratch for fan-out
	exchanges sync.Pool  // *exchange of WebSocket frames (frameExchange)
	idle      *idleWatch // idle WebSockets waiting without a goroutine; nil: none
	filters   []DeliveryFilter
	local     locals    // in-process subscribers and /service handlers
	interest  *interest // local subscribers per pattern, for the engine

	stats counters // see Stats

	history    Historian     // the engine's history; nil without Config.History
	cluster    *cluster      // set when the engine spans nodes
	script     *clientScript // the browser bundle, if configured
	scriptHint sync.Once     // logs how to configure it, once
}

// New returns a Server configured by cfg and starts its engine and its
// session collector. Call Shutdown to stop them.
func New(cfg Config) (*Server, error) {
	sessionLogRate := cfg.SessionLogRate
	if cfg.Logger == nil {
		sessionLogRate = -1 // the session lines are for a logger of the caller's own
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:        cfg,
		lim:        newLimits(&cfg),
		throttle:   newThrottle(&cfg),
		log:        cfg.Logger,
		sessionLog: newSessionLog(cfg.Logger, sessionLogRate),
		engine:     cfg.Engine,
		index:      channels.NewIndex[*Session](),
		sessions:   newSessionTable(),
		ctx:        ctx,
		cancel:     cancel,
		crew:       newCrew(),
		conns:      make(map[*socket]struct{}),
		local:      locals{subs: channels.NewIndex[*localSub]()},
		interest:   newInterest(),
	}
	for _, e := range cfg.Extensions {
		if f, ok := e.(DeliveryFilter); ok {
			s.filters = append(s.filters, f)
		}
	}
	if len(cfg.AllowedOrigins) > 0 {
		s.origins = make(map[string]bool, len(cfg.AllowedOrigins))
		for _, o := range cfg.AllowedOrigins {
			s.origins[strings.TrimSuffix(o, "/")] = true
		}
	}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  128, // the smallest allowed: frameConn reads ahead, in pooled buffers
		WriteBufferSize: 256, // control frames only: data frames are written directly
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(r *http.Request) bool { return s.originAllowed(r.Header.Get("Origin")) },
	}
	if cfg.ClientScript != "" {
		cs, err := loadClientScript(cfg.ClientScript)
		if err != nil {
			cancel()
			return nil, err
		}
		s.script = cs
	}
	if me, ok := s.engine.(*memoryEngine); ok {
		me.hist.setBudget(cfg.HistoryMaxBytes)
	}
	if len(cfg.History) > 0 {
		err := checkHistoryRules(cfg.History, cfg.Grammar)
		h, ok := s.engine.(Historian)
		if err == nil && !ok {
			err = fmt.Errorf("bayeux: Config.History needs an engine that keeps history (a Historian); %T is not", s.engine)
		}
		if err != nil {
			cancel()
			return nil, err
		}
		s.history = h
	}
	if c, ok := s.engine.(Cluster); ok {
		s.cluster = &cluster{Cluster: c, self: c.NodeID()}
		c.HandleNodeMessages(s.onNodeMessage)
	}
	if err := s.engine.Start(ctx, s.deliver); err != nil {
		cancel()
		return nil, fmt.Errorf("bayeux: starting engine: %w", err)
	}
	s.crew.spawn(s.collect)
	s.crew.spawn(s.reclaim)
	if s.idle = newIdleWatch(s); s.idle != nil {
		s.crew.spawn(func() { s.idle.run(s.ctx) })
	}
	if cfg.Ping > 0 {
		s.crew.spawn(s.pinger)
	}
	if s.cluster != nil {
		s.crew.spawn(s.clusterLoop)
	}
	for _, e := range cfg.Extensions {
		if a, ok := e.(Attacher); ok {
			if err := a.Attach(s); err != nil {
				_ = s.Shutdown(context.Background())
				return nil, fmt.Errorf("bayeux: attaching %T: %w", e, err)
			}
		}
	}
	return s, nil
}

// keptRequest returns what a long-lived connection keeps of its upgrade
// request for the extensions: the request when there are extensions, else
// nil, which saves about a kilobyte per idle connection.
func (s *Server) keptRequest(r *http.Request) *http.Request {
	if len(s.cfg.Extensions) > 0 {
		return r
	}
	return nil
}

// originAllowed applies Config.AllowedOrigins. A request without an Origin
// (not from a browser) is always allowed; "null" (sandboxed frames, file:
// pages: any site can make one) only when listed.
func (s *Server) originAllowed(origin string) bool {
	if s.origins == nil {
		return origin != "null"
	}
	return origin == "" || s.origins[origin]
}

// ServeHTTP dispatches a request on the mount path to its transport.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := s.subpath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost && r.ContentLength != 0 {
		unreadBody(w) // only POST bodies are read
	}
	if s.ctx.Err() != nil {
		unreadBody(w)
		http.Error(w, "Server shutting down", http.StatusServiceUnavailable)
		return
	}
	rt := classify(r, rest)
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("request", "transport", rt.String(), "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "ip", logIP(s.requestIP(r)), "remote", r.RemoteAddr)
	}
	done, ok := s.admit(w, r)
	if !ok {
		return
	}
	if rt == routeWebSocket {
		s.serveWebSocket(w, r, done) // done is called when the socket closes
		return
	}
	defer done()
	switch rt {
	case routeClientScript:
		s.serveClientScript(w, r)
	case routeExtensionScript:
		s.serveExtensionScript(w, r, rest)
	case routePreflight:
		s.servePreflight(w, r)
	case routeEventSource:
		s.stats.open[trEventSource].Add(1)
		defer s.stats.open[trEventSource].Add(-1)
		s.serveEventSource(w, r, lastSegment(rest))
	case routeCallbackPolling:
		s.stats.open[trCallbackPolling].Add(1)
		defer s.stats.open[trCallbackPolling].Add(-1)
		s.serveJSONP(w, r)
	case routeLongPolling, routeCrossOriginLongPolling:
		s.stats.open[trLongPolling].Add(1)
		defer s.stats.open[trLongPolling].Add(-1)
		s.servePost(w, r)
	default:
		badRequest(w, "Bad request")
	}
}

// admit counts the request against its client address's connections
// (Config.MaxConnectionsPerIP), answering 429 when there are too many. The
// returned function uncounts it.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (done func(), ok bool) {
	t := s.throttle
	if t == nil || t.maxConns <= 0 {
		return func() {}, true
	}
	addr := limitAddr(s.requestIP(r))
	if !t.open(addr) {
		s.log.Debug("too many connections from one address", "addr", addr, "limit", t.maxConns)
		unreadBody(w)
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("Too many connections from your address (limit %d)", t.maxConns), http.StatusTooManyRequests)
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { t.closed(addr) }) }, true
}

// unreadBody marks the response to a request whose body will not be read:
// the connection closes after it. Otherwise net/http would wait, with no
// time limit, to read and discard the rest of the body before answering.
func unreadBody(w http.ResponseWriter) { w.Header().Set("Connection", "close") }

// end destroys a session: its subscriptions are removed, its queue is
// dropped, its held connect is answered and its stream is closed. It is safe
// to call more than once.
func (s *Server) end(sess *Session, why EndReason) {
	if !s.sessions.remove(sess) {
		return
	}
	if why >= 0 && int(why) < numEndReasons {
		s.stats.ended[why].Add(1)
	}
	subs, _ := sess.shut(why, func(id string) []byte {
		r := s.slowReply(id)
		return s.encodeAlone(s.ctx, nil, &r)
	})
	for _, pattern := range subs {
		s.unindex(sess, pattern)
	}
	if s.cluster != nil {
		s.crew.spawn(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := s.cluster.ReleaseSession(ctx, sess.id); err != nil {
				s.log.Debug("cluster: releasing a session", "clientId", sess.id, "err", err)
			}
		})
	}
	s.sessionLog.ended(sess, why)
	s.emitDisconnect(sess, why)
}

// slowReply answers the connect (with id) of a session ended for being too
// slow: unsuccessful, with advice to handshake again.
func (s *Server) slowReply(id string) Reply {
	return Reply{ID: id, Channel: channels.MetaConnect, Error: errSlowConsumer, Advice: s.handshakeAdvice()}
}

// unindex removes one subscription of sess from the index.
func (s *Server) unindex(sess *Session, pattern string) {
	if removed, _ := s.index.Remove(pattern, sess); removed {
		s.release(pattern)
		s.emitUnsubscribe(sess, pattern)
	}
}

// collect ends sessions whose client has stopped connecting for twice the
// timeout, like faye.
func (s *Server) collect() {
	every := min(max(s.cfg.Timeout/2, 100*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if s.throttle != nil {
				s.throttle.sweep(now)
			}
			limit := now.Add(-2 * s.cfg.Timeout).UnixNano()
			expired := 0
			s.sessions.each(func(sess *Session) {
				if sess.lastSeen.Load() >= limit {
					return
				}
				if !sess.waiting() {
					s.end(sess, EndExpired)
					expired++
				}
			})
			if expired >= massExpiry {
				// After a reconnect storm or a handshake flood, give the
				// memory back now: the runtime would keep it for minutes.
				debug.FreeOSMemory()
			}
		}
	}
}

// massExpiry is the number of sessions expired at once after which the
// collector returns memory to the operating system.
const massExpiry = 10000

// pinger pings the WebSockets of this node that were silent for Ping, so
// that proxies keep idle connections open and dead peers are noticed (no
// pong moves their read deadline). One goroutine does it for all sockets, a few
// workers wide, rather than a timer per socket.
func (s *Server) pinger() {
	t := time.NewTicker(s.cfg.Ping)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		// Sockets that received a frame lately are alive and not idle: Bayeux
		// clients send a connect every timeout.
		quiet := time.Now().Add(-s.cfg.Ping).UnixNano()
		s.connsMu.Lock()
		conns := make([]*wsConn, 0, len(s.conns))
		for c := range s.conns {
			if ws, ok := c.sink.(*wsConn); ok && ws.lastRead.Load() < quiet {
				conns = append(conns, ws)
			}
		}
		s.connsMu.Unlock()
		work := make(chan *wsConn)
		var wg sync.WaitGroup
		for range min(8, len(conns)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range work {
					c.sendPing()
				}
			}()
		}
		for _, c := range conns {
			work <- c
		}
		close(work)
		wg.Wait()
	}
}

// Shutdown drains the server: held connects are answered (unsuccessful,
// with advice to handshake again: see Drain), WebSockets
// (this node's, and on a cluster those of other nodes whose sessions live
// here) are closed with 1001 (going away), EventSource streams end, every
// goroutine of the server returns, and the engine is closed. New requests
// get 503. Call it before http.Server.Shutdown, which otherwise waits for
// held long-polls to time out. It returns ctx's error if ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.cancel() // wakes held long-polls and EventSource streams, ends the loops
	s.crew.stop()
	s.connsMu.Lock()
	conns := make([]*socket, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.connsMu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
	if s.cluster != nil {
		s.cluster.remotes.Range(func(_, rs any) bool {
			rs.(*remoteSocket).shutdown()
			return true
		})
	}
	if err := s.crew.wait(ctx); err != nil {
		return err
	}
	if err := s.engine.Close(); err != nil {
		return fmt.Errorf("bayeux: closing engine: %w", err)
	}
	return nil
}
