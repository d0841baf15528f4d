package bayeux

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bayou-pubsub/bayou/channels"
)

// In a cluster a session lives on the node that created it (its owner):
// its subscriptions, its queue and its held connect. A node that gets a
// request for a session it does not own forwards the request to the owner
// over the engine's node messages and relays the answer, so that clients
// need no sticky load balancing. A WebSocket on a non-owner node gets a
// remote socket on the owner, whose frames are pushed back to it.
//
// When an owner dies its sessions die with it. The engine's Send finds that
// out (an error wrapping ErrNodeGone) and SessionOwner stops naming the
// node; the request is then handled here, where its session is unknown, so
// that the client is told to handshake again rather than to retry. Requests
// and sockets already forwarded to a node that dies are found out by
// watchOwners, which pings each node they wait on every second.
//
// Node messages are JSON objects:
//
//	req       from a node to an owner: a batch of messages (Sock: from a
//	          socket whose id is ID, else an HTTP request whose id is ID)
//	resp      the owner's answer to an HTTP request: the reply array items
//	cancel    the HTTP request ID went away: stop holding its connect
//	push      frames for socket ID
//	close     the owner closes socket ID (code, text)
//	sockclose the socket ID on the sending node is gone
//	deliver   queue Items for session ID (Server.Deliver)
//	disconnect end session ID (Server.Disconnect)
//	ping      nothing: arriving is all it does (watchOwners)
//
// and those of Server.SessionsOf (see sessions_api.go).
type nodeMsg struct {
	T       string            `json:"t"`
	ID      string            `json:"id,omitempty"`
	From    string            `json:"from,omitempty"`
	Sock    bool              `json:"sock,omitempty"`
	Batches []string          `json:"batches,omitempty"`
	Header  http.Header       `json:"header,omitempty"`
	Remote  string            `json:"remote,omitempty"`
	Items   []json.RawMessage `json:"items,omitempty"`
	Code    int               `json:"code,omitempty"`
	Text    string            `json:"text,omitempty"`
}

// cluster is the server's side of a Cluster engine.
type cluster struct {
	Cluster
	self string

	pending sync.Map // request id -> *forward: forwarded HTTP requests awaiting answers
	served  sync.Map // from+"/"+id -> context.CancelFunc: forwarded HTTP requests being served
	remotes sync.Map // from+"/"+id -> *remoteSocket: sockets on other nodes
	locals  sync.Map // socket id -> *localSocket: this node's sockets forwarding to owners
	queries sync.Map // request id -> chan *nodeMsg: SessionsOf awaiting answers

	watching atomic.Bool // watchOwners is running
}

// forward is an HTTP request forwarded to a session's owner.
type forward struct {
	owner string
	// answer gets the owner's "resp", or nil when the owner is gone.
	answer chan *nodeMsg
}

// tell hands m to the request without blocking: it takes one answer.
func (f *forward) tell(m *nodeMsg) {
	select {
	case f.answer <- m:
	default:
	}
}

// localSocket is a socket of this node forwarding frames to owners.
type localSocket struct {
	ws *wsConn

	mu sync.Mutex
	// connect is the last frame with a /meta/connect forwarded, to owner:
	// the connect the owner may be holding.
	connect []byte
	owner   string
}

// forwarding records that frame is being forwarded to owner.
func (l *localSocket) forwarding(owner string, frame []byte) {
	if !bytes.Contains(frame, []byte(`"/meta/connect"`)) {
		return
	}
	l.mu.Lock()
	l.connect, l.owner = frame, owner
	l.mu.Unlock()
}

// takeConnect returns, and forgets, the last connect forwarded to owner.
func (l *localSocket) takeConnect(owner string) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owner != owner {
		return nil
	}
	f := l.connect
	l.connect, l.owner = nil, ""
	return f
}

// claimTTL is how long a session claim lasts without renewal.
func (s *Server) claimTTL() time.Duration { return 2*s.cfg.Timeout + 10*time.Second }

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *cluster) send(ctx context.Context, node string, m *nodeMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.Send(ctx, node, b)
}

// remoteOwner returns the live node, other than this one, that owns session
// id; "" when there is none or this node is not in a cluster.
func (s *Server) remoteOwner(ctx context.Context, id string) string {
	if s.cluster == nil {
		return ""
	}
	owner, err := s.cluster.SessionOwner(ctx, id)
	if err != nil || owner == s.cluster.self {
		return ""
	}
	return owner
}

// ownerElsewhere returns the node that owns the session of msgs when it is
// another live node; "" when the batch is for this node. An error means the
// cluster could not say (its store is unreachable): the request must be
// retried later rather than answered "unknown client", which would make
// every client handshake again because of an outage.
func (s *Server) ownerElsewhere(ctx context.Context, msgs []Message) (string, error) {
	if s.cluster == nil {
		return "", nil
	}
	for i := range msgs {
		m := &msgs[i]
		if m.ClientID == "" || m.Channel == channels.MetaHandshake {
			continue
		}
		if s.sessions.get(m.ClientID) != nil {
			return "", nil
		}
		owner, err := s.cluster.SessionOwner(ctx, m.ClientID)
		if err != nil {
			return "", fmt.Errorf("looking up the owner of %s: %w", m.ClientID, err)
		}
		if owner == s.cluster.self {
			return "", nil
		}
		return owner, nil
	}
	return "", nil
}

// forwardHTTP sends an HTTP request's messages to the session's owner and
// writes its answer. If the client goes away the owner is told, so that the
// messages stay queued there. If the owner is gone, the request is
// answered here.
func (s *Server) forwardHTTP(w http.ResponseWriter, r *http.Request, owner string, raw []string, callback string) {
	c := s.cluster
	id := newRequestID()
	f := &forward{owner: owner, answer: make(chan *nodeMsg, 1)}
	c.pending.Store(id, f)
	defer c.pending.Delete(id)
	req := &nodeMsg{T: "req", ID: id, From: c.self, Batches: raw, Header: r.Header, Remote: logIP(s.requestIP(r))}
	if err := c.send(r.Context(), owner, req); err != nil {
		if errors.Is(err, ErrNodeGone) {
			s.respondAgain(w, r, raw, callback)
			return
		}
		s.log.Warn("cluster: forwarding a request", "owner", owner, "err", err)
		http.Error(w, "Session owner unreachable", http.StatusServiceUnavailable)
		return
	}
	limit := time.NewTimer(s.cfg.Timeout + 10*time.Second)
	defer limit.Stop()
	select {
	case m := <-f.answer:
		if m == nil {
			s.respondAgain(w, r, raw, callback) // the owner died holding it
			return
		}
		_ = s.writeReplies(w, frames(m.Items), callback)
	case <-r.Context().Done():
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.send(ctx, owner, &nodeMsg{T: "cancel", ID: id, From: c.self})
	case <-limit.C:
		http.Error(w, "Session owner did not answer", http.StatusGatewayTimeout)
	case <-s.ctx.Done():
		http.Error(w, "Server shutting down", http.StatusServiceUnavailable)
	}
}

// respondAgain handles a request whose session's owner is gone as a new
// one: the engine no longer names that owner, so the request is answered
// here, where its session is unknown.
func (s *Server) respondAgain(w http.ResponseWriter, r *http.Request, raw []string, callback string) {
	msgs, err := s.lim.parseValues(raw) // it parsed before
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.respond(w, r, raw, msgs, callback)
}

// onNodeMessage handles a message from another node. It runs on the
// engine's delivery goroutine, so anything slow happens elsewhere.
func (s *Server) onNodeMessage(b []byte) {
	c := s.cluster
	var m nodeMsg
	if err := json.Unmarshal(b, &m); err != nil {
		s.log.Warn("cluster: bad node message", "err", err)
		return
	}
	switch m.T {
	case "req":
		if m.Sock {
			s.remoteSocket(&m).enqueue(&m)
		} else {
			s.crew.spawn(func() { s.serveForwarded(&m) })
		}
	case "resp":
		if f, ok := c.pending.Load(m.ID); ok {
			f.(*forward).tell(&m)
		}
	case "cancel":
		if cancel, ok := c.served.Load(m.From + "/" + m.ID); ok {
			cancel.(context.CancelFunc)()
		}
	case "push":
		if l, ok := c.locals.Load(m.ID); ok {
			_ = l.(*localSocket).ws.write(frames(m.Items)...) // a failed write closes it
		}
	case "close":
		if l, ok := c.locals.Load(m.ID); ok {
			s.crew.spawn(func() { l.(*localSocket).ws.close(m.Code, m.Text) })
		}
	case "deliver":
		if sess := s.sessions.get(m.ID); sess != nil {
			for _, it := range m.Items {
				s.deliverTo(sess, it)
			}
		}
	case "disconnect":
		if sess := s.sessions.get(m.ID); sess != nil {
			s.crew.spawn(func() { s.end(sess, EndServer) })
		}
	case "sockclose":
		if rs, ok := c.remotes.Load(m.From + "/" + m.ID); ok {
			s.crew.spawn(func() { rs.(*remoteSocket).close(closeAbnormal, "") })
		}
	case "ping":
	default:
		if !s.onSessionsMessage(&m) {
			s.log.Warn("cluster: unknown node message", "type", m.T)
		}
	}
}

// forwardedRequest rebuilds, for extensions, the HTTP request a forwarded
// batch arrived in on the other node; its remote address is the client
// address that node resolved.
func forwardedRequest(ctx context.Context, m *nodeMsg) *http.Request {
	r, _ := http.NewRequestWithContext(withClientIP(ctx, peerAddr(m.Remote)), http.MethodPost, "/", nil)
	r.Header = m.Header
	r.RemoteAddr = m.Remote
	return r
}

// frames converts node-message items to encoded messages.
func frames(items []json.RawMessage) [][]byte {
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

// rawItems converts encoded messages to node-message items.
func rawItems(items [][]byte) []json.RawMessage {
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

// serveForwarded answers an HTTP request forwarded by another node.
func (s *Server) serveForwarded(m *nodeMsg) {
	c := s.cluster
	key := m.From + "/" + m.ID
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	c.served.Store(key, cancel)
	defer c.served.Delete(key)
	msgs, err := s.lim.parseValues(m.Batches)
	if err != nil {
		return
	}
	a, ok := s.answer(ctx, forwardedRequest(ctx, m), msgs)
	if !ok {
		return // the client went away: the messages stay queued here
	}
	sendCtx, done := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer done()
	// The forwarded request's transport is not told: it counts as
	// long-polling.
	_ = a.send(&s.stats, trLongPolling, func(items [][]byte) error {
		return c.send(sendCtx, m.From, &nodeMsg{T: "resp", ID: m.ID, From: c.self, Items: rawItems(items)})
	})
}

// forwardFrame sends a WebSocket frame for a session owned by another node
// to that node. The socket becomes that node's remote socket. If the owner
// is gone, the frame is handled again, as a new one: the engine no longer
// names that owner, so it is answered here, where its session is unknown.
func (c *wsConn) forwardFrame(owner string, frame []byte) error {
	err := c.sendFrame(owner, frame)
	if !errors.Is(err, ErrNodeGone) {
		return err
	}
	c.remoteMu.Lock()
	delete(c.owners, owner) // so that watchOwners leaves the socket alone
	c.remoteMu.Unlock()
	c.handleFrame(frame, nil)
	return nil
}

// sendFrame sends a frame to a session's owner, as forwardFrame.
func (c *wsConn) sendFrame(owner string, frame []byte) error {
	s := c.srv
	cl := s.cluster
	c.remoteMu.Lock()
	if c.gone {
		c.remoteMu.Unlock()
		return errConnClosed
	}
	if c.remoteID == "" {
		c.remoteID = newRequestID()
		cl.locals.Store(c.remoteID, &localSocket{ws: c})
	}
	if c.owners == nil {
		c.owners = map[string]bool{}
	}
	c.owners[owner] = true
	id := c.remoteID
	c.remoteMu.Unlock()
	if l, ok := cl.locals.Load(id); ok {
		l.(*localSocket).forwarding(owner, frame)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	var header http.Header
	if c.req != nil {
		header = c.req.Header
	}
	return cl.send(ctx, owner, &nodeMsg{T: "req", ID: id, From: cl.self, Sock: true,
		Batches: []string{string(frame)}, Header: header, Remote: logIP(c.ip)})
}

// tellOwners tells the nodes this socket forwarded to that it is gone (or
// now serves a session of this node).
func (c *wsConn) tellOwners() {
	c.remoteMu.Lock()
	owners, id := c.owners, c.remoteID
	c.owners = nil
	c.remoteMu.Unlock()
	if len(owners) == 0 {
		return
	}
	cl := c.srv.cluster
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for node := range owners {
		_ = cl.send(ctx, node, &nodeMsg{T: "sockclose", ID: id, From: cl.self})
	}
}

// clusterLoop keeps this node's session claims alive and reports its
// counts every second.
func (s *Server) clusterLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	ttl := s.claimTTL()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.renewClaims(ttl)
		subs := map[string]int{}
		s.index.Patterns(func(p string, n int) bool { subs[p] = n; return true })
		if err := s.cluster.ReportCounts(s.ctx, s.Sessions(), subs); err != nil {
			s.log.Debug("cluster: reporting counts", "err", err)
		}
		if s.cluster.watching.CompareAndSwap(false, true) {
			s.crew.spawn(func() {
				defer s.cluster.watching.Store(false)
				s.watchOwners()
			})
		}
	}
}

// renewClaims extends the claims of this node's sessions that are a third
// of ttl old: in batches when the cluster can (a BatchClaimer), else one by
// one.
func (s *Server) renewClaims(ttl time.Duration) {
	now := time.Now().UnixNano()
	var due []*Session
	s.sessions.each(func(sess *Session) {
		if now-sess.claimed.Load() > int64(ttl/3) {
			due = append(due, sess)
		}
	})
	bc, batch := s.cluster.Cluster.(BatchClaimer)
	if !batch {
		for _, sess := range due {
			if err := s.cluster.ClaimSession(s.ctx, sess.id, ttl); err == nil {
				sess.claimed.Store(now)
			}
		}
		return
	}
	ids := make([]string, len(due))
	for i, sess := range due {
		ids[i] = sess.id
	}
	if err := bc.ClaimSessions(s.ctx, ids, ttl); err != nil {
		s.log.Debug("cluster: renewing session claims", "sessions", len(ids), "err", err)
		return
	}
	for _, sess := range due {
		sess.claimed.Store(now)
	}
}

// watchOwners pings the nodes that hold this node's forwarded requests
// and sockets: an owner that died is found out by Send (after its
// confirmation window). The requests and connects held there are then
// answered here, as those of unknown clients. It costs one node message
// per such node.
func (s *Server) watchOwners() {
	c := s.cluster
	owners := map[string]bool{}
	c.pending.Range(func(_, f any) bool {
		owners[f.(*forward).owner] = true
		return true
	})
	c.locals.Range(func(_, l any) bool {
		ws := l.(*localSocket).ws
		ws.remoteMu.Lock()
		for node := range ws.owners {
			owners[node] = true
		}
		ws.remoteMu.Unlock()
		return true
	})
	for node := range owners {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
		err := c.send(ctx, node, &nodeMsg{T: "ping", From: c.self})
		cancel()
		if errors.Is(err, ErrNodeGone) {
			s.ownerGone(node)
		}
	}
}

// ownerGone answers the requests forwarded to node, which is gone: the
// HTTP requests, and on each socket forwarding there the last connect
// forwarded (the one node may have held), handled again here. A socket
// whose connect is not known is closed: its client connects again.
func (s *Server) ownerGone(node string) {
	c := s.cluster
	c.pending.Range(func(_, f any) bool {
		if f.(*forward).owner == node {
			f.(*forward).tell(nil)
		}
		return true
	})
	c.locals.Range(func(_, v any) bool {
		l := v.(*localSocket)
		ws := l.ws
		ws.remoteMu.Lock()
		had := ws.owners[node]
		delete(ws.owners, node)
		ws.remoteMu.Unlock()
		if !had || ws.sess.Load() != nil {
			return true
		}
		if frame := l.takeConnect(node); frame != nil {
			s.crew.spawn(func() { ws.handleFrame(frame, nil) })
		} else {
			s.crew.spawn(func() { ws.close(closeGoingAway, "session owner gone") })
		}
		return true
	})
}

// Counts returns the number of sessions and of subscribers per pattern: of
// the whole cluster when the engine is a Cluster (as last reported by each
// node, at most about a second old), else of this node.
func (s *Server) Counts(ctx context.Context) (sessions int, subscribers map[string]int, err error) {
	if s.cluster != nil {
		return s.cluster.Counts(ctx)
	}
	subscribers = map[string]int{}
	s.index.Patterns(func(p string, n int) bool { subscribers[p] = n; return true })
	return s.Sessions(), subscribers, nil
}
