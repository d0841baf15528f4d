package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
)

const (
	// aliveCacheTTL is how long SessionOwner trusts what it learnt about
	// another node's heartbeat.
	aliveCacheTTL = time.Second
	// goneAfter is how long a node's channel must stay without a listener
	// before Send declares the node gone: longer than a live node takes to
	// re-open its pub/sub connection (subscribeLoop retries within 500ms),
	// short enough that the clients of a dead node hear of it at once.
	goneAfter = time.Second
	// goneCheckInterval is how often the channels of suspect nodes are
	// checked meanwhile.
	goneCheckInterval = 200 * time.Millisecond
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
	// suspects are the nodes whose channel had no listener on a Send,
	// awaiting watchSuspects' verdict; suspicion wakes it up.
	suspects  map[string]*suspect
	suspicion chan struct{}
}

// aliveEntry is what the engine learnt about another node's liveness.
type aliveEntry struct {
	alive bool
	at    time.Time // when it was learnt
	// gone: Send found the node dead (see confirmGone) at goneAt, when its
	// heartbeat held beat. It counts as dead, though its heartbeat has not
	// expired yet, until its heartbeat changes: a node that beats again is
	// alive after all, or back.
	gone   bool
	goneAt time.Time
	beat   string
}

// suspect is a node whose channel had no listener, being watched.
type suspect struct {
	since time.Time
	done  chan struct{} // closed once gone is decided
	gone  bool
}

func (n *nodes) init() {
	n.wake = make(chan struct{}, 1)
	n.kick = make(chan struct{}, 1)
	n.alive = make(map[string]aliveEntry)
	n.suspects = make(map[string]*suspect)
	n.suspicion = make(chan struct{}, 1)
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

// Send publishes msg on node's channel: one PUBLISH. Messages sent by one
// goroutine arrive in order. It fails within OpTimeout when Redis is
// unreachable.
//
// When nobody listens on the channel, the node is dead, or its pub/sub
// connection is being re-opened. Send then waits (within ctx) for the node
// to listen again, and sends once more; if its channel stays without a
// listener for goneAfter (a second), the node is gone: Send fails with an
// error wrapping both ErrNoNode and bayeux.ErrNodeGone, and SessionOwner
// stops naming it at once. A later Send to a gone node that still does not
// listen fails at once. An error wrapping ErrNoNode alone means the wait
// was cut short (by ctx, or Redis failing).
func (e *Engine) Send(ctx context.Context, node string, msg []byte) error {
	if err := e.running(); err != nil {
		return err
	}
	if !validNodeID(node) {
		return fmt.Errorf("redis: send to %q: %w", node, ErrNoNode)
	}
	// string(msg) copies: the caller may reuse msg once Send returns,
	// even when a timeout left the command queued.
	payload := string(msg)
	publish := func() (int64, error) {
		ctx, cancel := e.opContext(ctx)
		defer cancel()
		return e.client.Do(ctx, e.client.B().Publish().Channel(e.keys.node+node).Message(payload).Build()).AsInt64()
	}
	n, err := publish()
	if err == nil && n == 0 {
		var gone bool
		if gone, err = e.confirmGone(ctx, node); gone {
			return fmt.Errorf("redis: send to %s: %w: %w", node, ErrNoNode, bayeux.ErrNodeGone)
		}
		if err != nil {
			return fmt.Errorf("redis: send to %s: %w (%w)", node, ErrNoNode, err)
		}
		n, err = publish() // it listens again
	}
	if err != nil {
		return fmt.Errorf("redis: send to %s: %w", node, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: send to %s: %w", node, ErrNoNode)
	}
	return nil
}

// confirmGone is called when node's channel has just been found without a
// listener. It waits for watchSuspects' verdict: true when the channel
// stayed so for goneAfter, and the node is recorded as gone; false when it
// listens again. For a node already known gone it returns true at once.
func (e *Engine) confirmGone(ctx context.Context, node string) (bool, error) {
	n := &e.nodes
	n.aliveMu.Lock()
	if n.alive[node].gone {
		n.aliveMu.Unlock()
		return true, nil
	}
	s := n.suspects[node]
	if s == nil {
		s = &suspect{since: time.Now(), done: make(chan struct{})}
		n.suspects[node] = s
	}
	n.aliveMu.Unlock()
	select {
	case n.suspicion <- struct{}{}:
	default:
	}
	select {
	case <-s.done:
		return s.gone, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-e.ctx.Done():
		return false, bayeux.ErrEngineClosed
	}
}

// watchSuspects decides on the suspect nodes of confirmGone: every
// goneCheckInterval while there are any, it asks Redis how many listen on
// their channels and reads their heartbeats, in one round trip.
func (e *Engine) watchSuspects() {
	defer e.wg.Done()
	n := &e.nodes
	for {
		n.aliveMu.Lock()
		idle := len(n.suspects) == 0
		n.aliveMu.Unlock()
		if idle {
			select {
			case <-e.ctx.Done():
				return
			case <-n.suspicion:
			}
		}
		if !e.sleep(goneCheckInterval) {
			return
		}
		e.checkSuspects()
	}
}

// checkSuspects gives its verdict on each suspect node: not gone as soon as
// it listens again, gone once it has not listened for goneAfter. When Redis
// cannot tell, suspects older than goneAfter are let off (their Sends fail
// as undecided), so that no Send waits on an unreachable Redis.
func (e *Engine) checkSuspects() {
	n := &e.nodes
	n.aliveMu.Lock()
	names := make([]string, 0, len(n.suspects))
	channels := make([]string, 0, len(n.suspects))
	for node := range n.suspects {
		names = append(names, node)
		channels = append(channels, e.keys.node+node)
	}
	n.aliveMu.Unlock()
	if len(names) == 0 {
		return
	}
	c := e.client
	cmds := make(rueidis.Commands, 0, 1+len(names))
	cmds = append(cmds, c.B().PubsubNumsub().Channel(channels...).Build())
	for _, node := range names {
		cmds = append(cmds, c.B().Get().Key(e.keys.alive+node).Build())
	}
	ctx, cancel := e.opContext(e.ctx)
	defer cancel()
	res := c.DoMulti(ctx, cmds...)
	listeners, err := res[0].AsIntMap()
	if err != nil {
		e.log.Debug("redis check of suspect nodes failed", "err", err)
	}
	now := time.Now()
	n.aliveMu.Lock()
	defer n.aliveMu.Unlock()
	for i, node := range names {
		s := n.suspects[node]
		beat, berr := res[1+i].ToString()
		if rueidis.IsRedisNil(berr) {
			beat, berr = "", nil // the heartbeat expired
		}
		switch {
		case err == nil && listeners[channels[i]] > 0:
		case now.Sub(s.since) < goneAfter:
			continue
		case err == nil && berr == nil:
			s.gone = true
			n.alive[node] = aliveEntry{at: now, gone: true, goneAt: now, beat: beat}
			e.log.Info("redis node gone: its channel had no listener for a second", "peer", node)
		}
		delete(n.suspects, node)
		close(s.done)
	}
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
// It starts watchSuspects, which the engine's WaitGroup counts too.
func (e *Engine) heartbeatLoop() {
	defer e.wg.Done()
	e.wg.Add(1) // safe while Close waits: this goroutine keeps the count above 0
	go e.watchSuspects()
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

// beat writes the node's heartbeat and ZSET entry in one round trip, and
// counts the nodes that beat within NodeTTL (for EngineStats). The
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
		c.B().Zcount().Key(e.keys.nodes).Min(strconv.FormatInt(now.Add(-e.cfg.NodeTTL).UnixMilli(), 10)).Max("+inf").Build(),
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
	if live, err := res[len(res)-1].AsInt64(); err == nil {
		e.counters.nodes.Store(live)
	}
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
	if err := e.rewritePresence(cctx); err != nil {
		return err
	}
	e.log.Info("redis state re-recorded", "sessions", claimed, "took", time.Since(began).Round(time.Microsecond))
	return nil
}

// isAlive reports whether node is alive: its heartbeat is current and, if
// Send found the node gone, has changed since. The answer is cached for
// aliveCacheTTL, except that a node found gone is dead at once.
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
	beat, err := e.client.Do(ctx, e.client.B().Get().Key(e.keys.alive+node).Build()).ToString()
	missing := rueidis.IsRedisNil(err)
	if err != nil && !missing {
		return false, fmt.Errorf("redis: checking node %s: %w", node, err)
	}
	n.aliveMu.Lock()
	defer n.aliveMu.Unlock()
	ent = n.alive[node] // found gone meanwhile, perhaps
	switch {
	case missing, ent.gone && beat == ent.beat:
		ent.alive = false
	default:
		ent = aliveEntry{alive: true}
	}
	ent.at = time.Now()
	n.alive[node] = ent
	return ent.alive, nil
}

// pruneAlive forgets stale entries of the liveness cache, and the nodes
// found gone once their heartbeat has expired (NodeTTL after their last
// beat, which came before they were found gone).
func (e *Engine) pruneAlive() {
	n := &e.nodes
	n.aliveMu.Lock()
	defer n.aliveMu.Unlock()
	for node, ent := range n.alive {
		if ent.gone && time.Since(ent.goneAt) >= e.cfg.NodeTTL || !ent.gone && time.Since(ent.at) >= aliveCacheTTL {
			delete(n.alive, node)
		}
	}
}

// LiveNodes returns the ids of the live nodes (those whose heartbeat is
// current), this one included: two round trips, ZRANGE of the nodes ZSET,
// then EXISTS of each heartbeat, pipelined. It makes the Engine a
// bayeux.NodeLister.
func (e *Engine) LiveNodes(ctx context.Context) ([]string, error) {
	if err := e.open(); err != nil {
		return nil, err
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	c := e.client
	ids, err := c.Do(ctx, c.B().Zrange().Key(e.keys.nodes).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: listing nodes: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make(rueidis.Commands, 0, len(ids))
	for _, id := range ids {
		cmds = append(cmds, c.B().Exists().Key(e.keys.alive+id).Build())
	}
	live := ids[:0]
	for i, r := range c.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			return nil, fmt.Errorf("redis: listing nodes: %s: %w", ids[i], err)
		}
		if n > 0 {
			live = append(live, ids[i])
		}
	}
	return live, nil
}
