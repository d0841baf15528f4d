package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// Defaults applied by New to the zero fields of a Config.
const (
	// DefaultNamespace prefixes keys and channels when Config.Namespace
	// is empty.
	DefaultNamespace = "bayou"
	// DefaultOpTimeout bounds each Redis operation when Config.OpTimeout
	// is zero.
	DefaultOpTimeout = time.Second
	// DefaultHeartbeatInterval is the period of the liveness heartbeat
	// when Config.HeartbeatInterval is zero.
	DefaultHeartbeatInterval = 2 * time.Second
	// DefaultNodeTTL is the lifetime of a heartbeat and of a count report
	// when Config.NodeTTL is zero.
	DefaultNodeTTL = 10 * time.Second
	// DefaultHistoryMetaTTL is how long a channel's offset and epoch
	// outlive its latest publication when Config.HistoryMetaTTL is zero.
	DefaultHistoryMetaTTL = 24 * time.Hour
)

// nodeIDLen is the length of a generated NodeID, in characters of
// [0-9a-z].
const nodeIDLen = 12

// Errors returned by the Engine, besides bayeux.ErrEngineClosed. They are
// wrapped with the failing operation; test them with errors.Is.
var (
	// ErrUnavailable means the operation needs the pub/sub connection to
	// Redis, which is down; it is being re-established.
	ErrUnavailable = errors.New("redis: pub/sub connection unavailable")
	// ErrNoNode means Send found no node listening on the target's
	// channel: the node is dead (or its pub/sub connection is down).
	ErrNoNode = errors.New("redis: no such node listening")
	// ErrInvalidChannel means Publish got a channel name that cannot be
	// published to (see channels.Expand).
	ErrInvalidChannel = errors.New("redis: invalid channel name")
)

// Config configures an Engine. Only URL is required.
type Config struct {
	// URL locates the Redis server, in the form rueidis.ParseURL reads:
	// "redis://[user:password@]host:port/db", "rediss://…" for TLS or
	// "unix:///path/to/socket".
	URL string
	// Namespace prefixes every key and pub/sub channel the engine uses, so
	// that several clusters can share one Redis. Default "bayou".
	Namespace string
	// NodeID identifies this node in the cluster; at most 64 characters of
	// [0-9A-Za-z_.-]. Default: 12 random characters of [0-9a-z]. Two live
	// nodes must not share an ID.
	NodeID string
	// Logger receives the engine's state changes. Default slog.Default().
	Logger *slog.Logger
	// OpTimeout bounds each Redis operation the engine performs, so that
	// calls fail quickly while Redis is unreachable, and is the dial
	// timeout unless the URL sets dial_timeout. Default 1s.
	OpTimeout time.Duration
	// HeartbeatInterval is how often the node refreshes its liveness key
	// (and checks whether Redis lost its data). Default 2s.
	HeartbeatInterval time.Duration
	// NodeTTL is how long a node is considered alive after its last
	// heartbeat, and the lifetime of its count report. Default 10s; it must
	// exceed HeartbeatInterval.
	NodeTTL time.Duration
	// MaxFlushDelay lets the Redis client wait up to this long after each
	// write to gather more commands into one system call; 20–100µs saves
	// CPU under heavy load at a small latency cost. Default 0.
	MaxFlushDelay time.Duration
	// HistoryMetaTTL is how long the offset and epoch of a channel with
	// history outlive its latest publication (the publications themselves
	// are kept for their rule's TTL). Within it, a client that asks to
	// replay from the channel's current position is told that it missed
	// nothing, however long ago the publications expired; past it, the
	// next publication starts a new epoch at offset 1, and a replay from
	// before is reported lost. It is also how long a stream lives when
	// its rule has no TTL. Default 24h.
	HistoryMetaTTL time.Duration
}

// withDefaults returns cfg with its zero fields set, or an error when a
// field is invalid.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.URL == "" {
		return cfg, errors.New("redis: Config.URL is required")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.NodeID == "" {
		cfg.NodeID = randomID()
	} else if !validNodeID(cfg.NodeID) {
		return cfg, fmt.Errorf("redis: invalid Config.NodeID %q: want 1-64 characters of [0-9A-Za-z_.-]", cfg.NodeID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.NodeTTL <= 0 {
		cfg.NodeTTL = DefaultNodeTTL
	}
	if cfg.NodeTTL <= cfg.HeartbeatInterval {
		return cfg, fmt.Errorf("redis: Config.NodeTTL (%v) must exceed HeartbeatInterval (%v)", cfg.NodeTTL, cfg.HeartbeatInterval)
	}
	if cfg.MaxFlushDelay < 0 {
		return cfg, fmt.Errorf("redis: negative Config.MaxFlushDelay %v", cfg.MaxFlushDelay)
	}
	if cfg.HistoryMetaTTL < 0 {
		return cfg, fmt.Errorf("redis: negative Config.HistoryMetaTTL %v", cfg.HistoryMetaTTL)
	}
	if cfg.HistoryMetaTTL == 0 {
		cfg.HistoryMetaTTL = DefaultHistoryMetaTTL
	}
	return cfg, nil
}

// validNodeID reports whether id can name a node: it becomes part of keys
// and channel names and travels in every publication header.
func validNodeID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// randomID returns nodeIDLen random characters of [0-9a-z].
func randomID() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, nodeIDLen)
	for i := range b {
		b[i] = alphabet[randUint64()%uint64(len(alphabet))]
	}
	return string(b)
}

// randUint64 returns a random number from crypto/rand.
func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (see crypto/rand.Read)
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// keys holds the prefixes of every Redis key and channel of a namespace.
type keys struct {
	ch     string // + pattern: pub/sub channel of a Bayeux pattern
	node   string // + NodeID: pub/sub channel of a node's messages
	alive  string // + NodeID: liveness key (string, PX NodeTTL)
	sess   string // + session id: owner NodeID (string, PX claim ttl)
	counts string // + NodeID: count report (hash, PX NodeTTL)
	nodes  string // ZSET of recently seen NodeIDs (PX nodesTTL)
	hist   string // + channel: history stream (PX the rule's TTL)
	hmeta  string // + channel: history offset and epoch (hash, PX HistoryMetaTTL)

	pres      string // + channel: presence entries (hash; see presence.go)
	presnode  string // + NodeID: a node's presence entries (set)
	presnodes string // the nodes with presence entries (set)
}

func newKeys(ns string) keys {
	return keys{
		ch:     ns + ":ch:",
		node:   ns + ":node:",
		alive:  ns + ":alive:",
		sess:   ns + ":sess:",
		counts: ns + ":counts:",
		nodes:  ns + ":nodes",
		hist:   ns + ":hist:",
		hmeta:  ns + ":hmeta:",

		pres:      ns + ":pres:",
		presnode:  ns + ":presnode:",
		presnodes: ns + ":presnodes",
	}
}

// Engine states.
const (
	stateNew int32 = iota
	stateRunning
	stateClosed
)

// Engine is a bayeux.Cluster and a bayeux.Historian on one Redis server
// (standalone or behind Sentinel): it carries publications between the
// nodes that listen to matching patterns, keeps the history of the
// channels that have one, records which node owns each session, carries
// messages between nodes and sums their counts. See the package
// documentation for the design.
//
// An Engine is safe for concurrent use. Create it with New, hand it to the
// server (bayeux.Config.Engine), which calls Start; Close releases it.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	client rueidis.Client
	keys   keys

	state atomic.Int32
	// ctx is done when the engine closes; every background goroutine
	// watches it.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startMu   sync.Mutex // serialises Start and Close
	stopAfter func() bool
	closeOnce sync.Once
	closeErr  error

	pub      publisher
	sub      subscriber
	nodes    nodes
	sessions sessions
	counts   counts
	hist     historian
	presence presence
	counters engineCounters // see EngineStats
}

var (
	_ bayeux.Cluster    = (*Engine)(nil)
	_ bayeux.Historian  = (*Engine)(nil)
	_ bayeux.NodeLister = (*Engine)(nil)
)

// New connects to Redis and returns an engine, not yet started. ctx bounds
// the initial connection check.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: parsing Config.URL: %w", err)
	}
	opt.DisableCache = true // no client-side caching: nothing is read twice
	if opt.Dialer.Timeout == 0 {
		// An unreachable Redis fails calls within OpTimeout; the
		// URL's dial_timeout parameter overrides it.
		opt.Dialer.Timeout = cfg.OpTimeout
	}
	opt.MaxFlushDelay = cfg.MaxFlushDelay
	if opt.ClientName == "" {
		opt.ClientName = cfg.Namespace + ":" + cfg.NodeID
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis: connecting to %v: %w", opt.InitAddress, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
	err = client.Do(pctx, client.B().Ping().Build()).Error()
	cancel()
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: ping %v: %w", opt.InitAddress, err)
	}
	e := &Engine{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "redis", "node", cfg.NodeID),
		keys: newKeys(cfg.Namespace),
	}
	e.client = countingClient{Client: client, c: &e.counters}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.pub.init()
	e.sub.init()
	e.nodes.init()
	e.nodes.channel = e.keys.node + cfg.NodeID
	e.sessions.init()
	e.hist.init()
	e.presence.init()
	return e, nil
}

// NodeID returns this node's identifier.
func (e *Engine) NodeID() string { return e.cfg.NodeID }

// Start opens the pub/sub connection (this node's message channel and any
// pattern subscribed so far), writes the first heartbeat and starts
// delivering publications to deliver. It returns once the node is
// reachable, or an error (and the engine is closed) when Redis could not be
// reached within a few OpTimeouts. When ctx is done the engine closes.
func (e *Engine) Start(ctx context.Context, deliver func(*bayeux.Publication)) error {
	if deliver == nil {
		return errors.New("redis: Start needs a deliver function")
	}
	e.startMu.Lock()
	if !e.state.CompareAndSwap(stateNew, stateRunning) {
		e.startMu.Unlock()
		if e.state.Load() == stateClosed {
			return bayeux.ErrEngineClosed
		}
		return errors.New("redis: engine already started")
	}
	e.pub.deliver = deliver
	e.wg.Add(4)
	go e.subscribeLoop()
	go e.heartbeatLoop()
	go e.dispatchNodeMessages()
	go e.historyLoop()
	e.stopAfter = context.AfterFunc(ctx, func() { _ = e.Close() })
	e.startMu.Unlock()

	wait := time.NewTimer(5 * e.cfg.OpTimeout)
	defer wait.Stop()
	var err error
	select {
	case <-e.sub.ready:
		if err = e.beat(); err != nil {
			err = fmt.Errorf("redis: first heartbeat: %w", err)
		}
	case <-wait.C:
		err = fmt.Errorf("redis: start: %w", ErrUnavailable)
	case <-ctx.Done():
		err = fmt.Errorf("redis: start: %w", ctx.Err())
	case <-e.ctx.Done():
		err = bayeux.ErrEngineClosed
	}
	if err != nil {
		return errors.Join(err, e.Close())
	}
	e.log.Info("redis engine started", "namespace", e.cfg.Namespace)
	return nil
}

// running returns nil when the engine is started and not closed, else
// bayeux.ErrEngineClosed.
func (e *Engine) running() error {
	if e.state.Load() != stateRunning {
		return bayeux.ErrEngineClosed
	}
	return nil
}

// opContext bounds ctx by OpTimeout.
func (e *Engine) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.cfg.OpTimeout)
}

// Close stops the engine's goroutines and deletes what the node stored in
// Redis: its session claims, heartbeat, count report and node entry, so that
// other nodes see it gone at once. It is safe to call more than once; later
// calls return the first call's result.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.startMu.Lock()
		prev := e.state.Swap(stateClosed)
		stop := e.stopAfter
		e.startMu.Unlock()
		if stop != nil {
			stop()
		}
		e.cancel()
		e.wg.Wait()
		if prev == stateRunning {
			e.closeErr = e.cleanup()
		}
		e.client.Close()
		e.log.Info("redis engine closed")
	})
	return e.closeErr
}

// cleanup deletes this node's keys and the sessions it still claims.
func (e *Engine) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.OpTimeout)
	defer cancel()
	id := e.cfg.NodeID
	var errs []error
	if err := e.releaseAll(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, r := range e.client.DoMulti(ctx,
		e.client.B().Del().Key(e.keys.alive+id, e.keys.counts+id).Build(),
		e.client.B().Zrem().Key(e.keys.nodes).Member(id).Build(),
	) {
		if err := r.Error(); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// sleep waits for d or until the engine closes; it reports whether the
// engine is still open.
func (e *Engine) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-e.ctx.Done():
		return false
	}
}
