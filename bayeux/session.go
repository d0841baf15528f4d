package bayeux

import (
	"crypto/rand"
	"hash/maphash"
	"math/big"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Session is the server's state for one clientId: its subscriptions, the
// messages queued for it, and the connection (if any) that currently carries
// them to the client. A session is transport-neutral: a client may connect
// over long-polling, then a WebSocket, then another WebSocket, without a new
// handshake.
type Session struct {
	id  string
	srv *Server

	lastSeen atomic.Int64 // unix nanoseconds of the last handshake or connect
	identity atomic.Pointer[Identity]
	claimed  atomic.Int64 // unix nanoseconds of the last cluster claim

	publishes *rate.Limiter // Config.PublishRate; nil when not limited

	ip        netip.Addr    // the client's address at handshake (see ClientIP)
	started   time.Time     // when the handshake registered it
	transport atomic.Uint32 // 1 + the index in connectionTypes of the last connect's; 0 before

	mu     sync.Mutex
	closed bool
	queue  [][]byte // encoded messages waiting for a connection, oldest first
	spare  [][]byte // an emptied queue array kept for reuse
	queued int      // bytes in queue
	stream stream   // bound WebSocket or EventSource stream
	poll   *poll    // held long-poll /meta/connect
	held   *held    // held /meta/connect on the bound WebSocket
	subs   subSet   // the session's channels and patterns

	// recovering holds back live publications of the channels being
	// replayed (see subscribeReplay); nil when none is.
	recovering map[string]*recovery
	// replayed holds, for the channels the session subscribed to with a
	// replay, the position of the last message queued: an earlier one
	// still on its way from the engine is a duplicate.
	replayed map[string]Position
	// pendBytes counts what the session holds besides its queue: held-back
	// publications and unacknowledged messages. It counts against
	// Config.MaxQueueBytes.
	pendBytes int
	// ack is the state of the acknowledgement extension; nil when the
	// client did not enable it. Set at the handshake, before the session
	// is registered.
	ack *ackState

	attrMu sync.Mutex
	attrs  map[string]any // see Set; nil until the first
}

// stream is a connection that pushes messages to the client as they arrive
// (a WebSocket or an EventSource response).
type stream interface {
	// notify tells the stream that the session has queued messages. It must
	// not block.
	notify()
	// end closes the stream because its session ended.
	end(reason EndReason)
}

// EndReason says why a session ended.
type EndReason int

// The reasons a session ends.
const (
	EndDisconnect EndReason = iota // the client sent /meta/disconnect
	EndExpired                     // the client stopped connecting
	EndSlow                        // its queue passed Config.MaxQueueBytes
	EndServer                      // the server API disconnected it
)

func (r EndReason) String() string {
	switch r {
	case EndDisconnect:
		return "disconnect"
	case EndExpired:
		return "expired"
	case EndSlow:
		return "slow consumer"
	case EndServer:
		return "disconnected by the server"
	}
	return "unknown"
}

// ID returns the session's clientId.
func (s *Session) ID() string { return s.id }

// ClientIP returns the address of the client that made the handshake (see
// the package function ClientIP); the zero Addr for a session made
// without a request.
func (s *Session) ClientIP() netip.Addr { return s.ip }

// Transport returns the connection type of the session's last
// /meta/connect ("websocket", "long-polling", ...), "" before its first.
func (s *Session) Transport() string {
	if i := s.transport.Load(); i > 0 {
		return connectionTypes[i-1]
	}
	return ""
}

// setTransport records t, a supported connection type, as the session's
// transport.
func (s *Session) setTransport(t string) {
	for i, c := range connectionTypes {
		if c == t {
			if s.transport.Load() != uint32(i+1) {
				s.transport.Store(uint32(i + 1))
			}
			return
		}
	}
}

// Identity returns the identity an extension attached to the session, or
// nil for an anonymous session.
func (s *Session) Identity() *Identity {
	if s == nil {
		return nil
	}
	return s.identity.Load()
}

// SetIdentity attaches id to the session (nil makes it anonymous). The
// identity should not be modified afterwards.
func (s *Session) SetIdentity(id *Identity) { s.identity.Store(id) }

// Set attaches the value v to the session under key, replacing any
// previous one; a nil v removes it. Extensions use it to keep per-session
// state (a grant, the time of the last check) between the messages of a
// client. Attributes live in this node's memory, with the session: in a
// cluster they are seen by the node that owns the session (where all its
// messages are handled), and they are gone when the session ends. Set and
// Get are safe for concurrent use.
func (s *Session) Set(key string, v any) {
	s.attrMu.Lock()
	defer s.attrMu.Unlock()
	if v == nil {
		delete(s.attrs, key)
		return
	}
	if s.attrs == nil {
		s.attrs = make(map[string]any)
	}
	s.attrs[key] = v
}

// Get returns the value Set attached to the session under key, and whether
// there is one.
func (s *Session) Get(key string) (any, bool) {
	s.attrMu.Lock()
	defer s.attrMu.Unlock()
	v, ok := s.attrs[key]
	return v, ok
}

// Subscriptions returns the channels and patterns the session subscribes to.
func (s *Session) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subs.list)
}

// Subscribed reports whether the session subscribes to pattern (a channel
// or a wildcard pattern, compared by name).
func (s *Session) Subscribed(pattern string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs.has(pattern)
}

// addSubscription records pattern as a subscription of the session. It
// reports false when the session has it already or has ended, and returns
// errTooManySubs when the session has max subscriptions.
func (s *Session) addSubscription(pattern string, max int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed || s.subs.has(pattern):
		return false, nil
	case s.subs.len() >= max:
		return false, errTooManySubs
	}
	s.subs.add(pattern)
	return true, nil
}

// removeSubscription forgets a subscription and reports whether it existed.
func (s *Session) removeSubscription(pattern string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.subs.remove(pattern) {
		return false
	}
	delete(s.replayed, pattern)
	return true
}

// ended reports whether the session has ended.
func (s *Session) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Session) touch() { s.lastSeen.Store(time.Now().UnixNano()) }

// newClientID returns a clientId: 160 random bits written in base 36 and
// padded to 31 characters, the same shape as faye's, safe in a URL path.
func newClientID() string {
	var b [20]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	s := new(big.Int).SetBytes(b[:]).Text(36)
	for len(s) < 31 {
		s = "0" + s
	}
	return s
}

// sessionTable maps clientIds to sessions, sharded to keep lock contention
// low under many concurrent handshakes.
type sessionTable struct {
	seed   maphash.Seed
	shards [32]struct {
		mu sync.RWMutex
		m  map[string]*Session
	}
	count   atomic.Int64
	created atomic.Int64 // sessions ever added
}

func newSessionTable() *sessionTable {
	t := &sessionTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*Session)
	}
	return t
}

func (t *sessionTable) shard(id string) int {
	return int(maphash.String(t.seed, id) % uint64(len(t.shards)))
}

func (t *sessionTable) get(id string) *Session {
	sh := &t.shards[t.shard(id)]
	sh.mu.RLock()
	s := sh.m[id]
	sh.mu.RUnlock()
	return s
}

// add stores s unless its id is taken, and reports whether it did.
func (t *sessionTable) add(s *Session) bool {
	sh := &t.shards[t.shard(s.id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, dup := sh.m[s.id]; dup {
		return false
	}
	sh.m[s.id] = s
	t.count.Add(1)
	t.created.Add(1)
	return true
}

// remove deletes s and reports whether it was present.
func (t *sessionTable) remove(s *Session) bool {
	sh := &t.shards[t.shard(s.id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[s.id] != s {
		return false
	}
	delete(sh.m, s.id)
	t.count.Add(-1)
	return true
}

// each calls fn for every session, one shard snapshot at a time, without
// holding a lock while fn runs.
func (t *sessionTable) each(fn func(*Session)) {
	var buf []*Session
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		buf = buf[:0]
		for _, s := range sh.m {
			buf = append(buf, s)
		}
		sh.mu.RUnlock()
		for _, s := range buf {
			fn(s)
		}
	}
}
