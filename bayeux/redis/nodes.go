package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

const (
	// aliveCacheTTL is how long SessionOwner trusts what it learnt about
	// another node's heartbeat.
	aliveCacheTTL = time.Second
	// maxInboxBytes bounds the node messages waiting for the handler;
	// beyond it new messages are dropped (and logged).
	maxInboxBytes = 64 << 20
	// dedupRetention is how long the duplicate filter remembers an origin
	// that stopped publishing.
	dedupRetention = time.Minute
)

// nodes holds the node's liveness (heartbeat), its view of the other
// nodes' liveness, and the queue of node messages for the handler.
type nodes struct {
	// channel is this node's pub/sub channel for node messages.
	channel string
	handler atomic.Pointer[func([]byte)]

	inboxMu    sync.Mutex
	inbox      [][]byte
	inboxBytes int
	overflow   bool          // dropping, logged once per episode
	wake       chan struct{} // signalled when inbox turns non-empty

	// kick asks the heartbeat loop for an early beat.
	kick chan struct{}
	// tick counts heartbeats; it dates the dedup windows.
	tick atomic.Uint64

	beatMu  sync.Mutex // serialises beat
	beaten  bool       // a heartbeat succeeded once
	healthy bool       // the last heartbeat succeeded
	resync  bool       // a store reset was seen and not yet repaired

	aliveMu sync.Mutex
	alive   map[string]aliveEntry
}

type aliveEntry struct {
	alive bool
	at    time.Time
}

func (n *nodes) init() {
	n.wake = make(chan struct{}, 1)
	n.kick = make(chan struct{}, 1)
	n.alive = make(map[string]aliveEntry)
}

func (n *nodes) kickHeartbeat() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// HandleNodeMessages sets the function called with each message sent to
// this node (see Send), one at a time, in arrival order, on a goroutine of
// the engine's own: a slow handler delays later node messages but not
// publications. Messages that arrive while no handler is set are dropped.
func (e *Engine) HandleNodeMessages(h func(msg []byte)) {
	if h == nil {
		e.nodes.handler.Store(nil)
		return
	}
	e.nodes.handler.Store(&h)
}

// Send publishes msg on node's channel: one PUBLISH. It fails with ErrNoNode
// when no node listens there (the node is dead, or its pub/sub connection
// is down), and within OpTimeout when Redis is unreachable. Messages sent
// by one goroutine arrive in order.
func (e *Engine) Send(ctx context.Context, node string, msg []byte) error {
	if err := e.running(); err != nil {
		return err
	}
	if !validNodeID(node) {
		return fmt.Errorf("redis: send to %q: %w", node, ErrNoNode)
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	// string(msg) copies: the caller may reuse msg once Send returns,
	// even when a timeout left the command queued.
	n, err := e.client.Do(ctx, e.client.B().Publish().Channel(e.keys.node+node).Message(string(msg)).Build()).AsInt64()
	if err != nil {
		return fmt.Errorf("redis: send to %s: %w", node, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: send to %s: %w", node, ErrNoNode)
	}
	return nil
}

// enqueueNodeMessage queues a node message for the handler; it runs on the
// pub/sub reading goroutine and never blocks.
func (e *Engine) enqueueNodeMessage(payload string) {
	n := &e.nodes
	n.inboxMu.Lock()
	if n.inboxBytes+len(payload) > maxInboxBytes {
		first := !n.overflow
		n.overflow = true
		n.inboxMu.Unlock()
		if first {
			e.log.Error("node message queue full; dropping node messages", "queuedBytes", maxInboxBytes)
		}
		return
	}
	n.overflow = false
	n.inbox = append(n.inbox, []byte(payload))
	n.inboxBytes += len(payload)
	wasEmpty := len(n.inbox) == 1
	n.inboxMu.Unlock()
	if wasEmpty {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
}

// dispatchNodeMessages calls the handler with each queued node message, in
// order, until the engine closes.
func (e *Engine) dispatchNodeMessages() {
	defer e.wg.Done()
	n := &e.nodes
	// The queue and the batch being handled swap backing arrays, so
	// enqueueing never touches the batch.
	var batch, spare [][]byte
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-n.wake:
		}
		for {
			n.inboxMu.Lock()
			batch, n.inbox = n.inbox, spare
			n.inboxBytes = 0
			n.inboxMu.Unlock()
			if len(batch) == 0 {
				spare = batch
				break
			}
			h := n.handler.Load()
			for _, msg := range batch {
				if e.ctx.Err() != nil {
					return
				}
				if h != nil {
					(*h)(msg)
				}
			}
			clear(batch)
			spare = batch[:0]
		}
	}
}

// heartbeatLoop refreshes the node's liveness every HeartbeatInterval (or
// at once when kicked, after a reconnect), and does the periodic clean-up.
func (e *Engine) heartbeatLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.HeartbeatInterval)
	defer t.Stop()
	keep := uint64(dedupRetention/e.cfg.HeartbeatInterval) + 1
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		case <-e.nodes.kick:
		}
		_ = e.beat() // logs its own state changes
		if now := e.nodes.tick.Add(1); now > keep {
			e.pub.dedupMu.Lock()
			e.pub.dedup.prune(now - keep)
			e.pub.dedupMu.Unlock()
		}
		e.pruneAlive()
		e.pruneClaims()
	}
}

// nodesTTL is the lifetime of the nodes ZSET, refreshed by every heartbeat,
// and how long a member that stopped beating stays in it at most.
func (e *Engine) nodesTTL() time.Duration { return 6 * e.cfg.NodeTTL }

// beat writes the node's heartbeat and ZSET entry in one round trip. The
// heartbeat is written with SET … GET: finding no previous value after an
// earlier success means Redis lost its data (a restart without
// persistence, a flush, or an outage longer than NodeTTL), so the node
// re-records its session claims and count report.
func (e *Engine) beat() error {
	n := &e.nodes
	n.beatMu.Lock()
	defer n.beatMu.Unlock()
	ctx, cancel := e.opContext(e.ctx)
	defer cancel()
	id, now := e.cfg.NodeID, time.Now()
	c := e.client
	res := c.DoMulti(ctx,
		c.B().Set().Key(e.keys.alive+id).Value(strconv.FormatInt(now.UnixMilli(), 10)).Get().Px(e.cfg.NodeTTL).Build(),
		c.B().Zadd().Key(e.keys.nodes).ScoreMember().ScoreMember(float64(now.UnixMilli()), id).Build(),
		c.B().Zremrangebyscore().Key(e.keys.nodes).Min("-inf").Max(strconv.FormatInt(now.Add(-e.nodesTTL()).UnixMilli(), 10)).Build(),
		c.B().Pexpire().Key(e.keys.nodes).Milliseconds(e.nodesTTL().Milliseconds()).Build(),
	)
	missing := false
	var err error
	for i, r := range res {
		if rerr := r.Error(); rerr != nil {
			if i == 0 && rueidis.IsRedisNil(rerr) {
				missing = true
				continue
			}
			err = rerr
			break
		}
	}
	if err != nil {
		if n.healthy || !n.beaten {
			e.log.Warn("redis heartbeat failed", "err", err)
		}
		n.healthy = false
		return fmt.Errorf("redis: heartbeat: %w", err)
	}
	if !n.healthy && n.beaten {
		e.log.Info("redis heartbeat restored")
	}
	n.healthy = true
	if missing && n.beaten {
		e.log.Warn("redis lost this node's heartbeat (restart, flush or long outage); re-recording claims and counts")
		n.resync = true
	}
	n.beaten = true
	if n.resync {
		if err := e.resync(e.ctx); err != nil {
			e.log.Warn("redis re-recording failed; will retry", "err", err)
			return err
		}
		n.resync = false
	}
	return nil
}

// resync re-records the session claims and the last count report after a
// store reset.
func (e *Engine) resync(ctx context.Context) error {
	began := time.Now()
	claimed, err := e.reclaimAll(ctx) // bounds its own time
	if err != nil {
		return err
	}
	cctx, cancel := e.opContext(ctx)
	defer cancel()
	if err := e.rewriteCounts(cctx); err != nil {
		return err
	}
	e.log.Info("redis state re-recorded", "sessions", claimed, "took", time.Since(began).Round(time.Microsecond))
	return nil
}

// isAlive reports whether node's heartbeat is current, from a cache of
// aliveCacheTTL.
func (e *Engine) isAlive(ctx context.Context, node string) (bool, error) {
	if node == e.cfg.NodeID {
		return e.state.Load() != stateClosed, nil
	}
	n := &e.nodes
	n.aliveMu.Lock()
	ent, ok := n.alive[node]
	n.aliveMu.Unlock()
	if ok && time.Since(ent.at) < aliveCacheTTL {
		return ent.alive, nil
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	v, err := e.client.Do(ctx, e.client.B().Exists().Key(e.keys.alive+node).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("redis: checking node %s: %w", node, err)
	}
	n.aliveMu.Lock()
	n.alive[node] = aliveEntry{alive: v == 1, at: time.Now()}
	n.aliveMu.Unlock()
	return v == 1, nil
}

// pruneAlive forgets stale entries of the liveness cache.
func (e *Engine) pruneAlive() {
	n := &e.nodes
	n.aliveMu.Lock()
	defer n.aliveMu.Unlock()
	for node, ent := range n.alive {
		if time.Since(ent.at) >= aliveCacheTTL {
			delete(n.alive, node)
		}
	}
}
