package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/rueidis"
)

// sessionsField is the field of a count report that holds the number of
// sessions; the other fields are patterns, which all begin with "/".
const sessionsField = "_sessions"

// counts keeps the node's last count report as written, so that the next
// report writes only what changed, and so that the whole report can be
// written again after Redis lost its data.
type counts struct {
	mu sync.Mutex
	// written is the report last written (sessionsField and patterns);
	// nil before the first and after a failure: then the next report is
	// written whole.
	written map[string]int
}

// ReportCounts records this node's count report, the hash
// <ns>:counts:<NodeID> ("_sessions" and one field per pattern), and
// extends its life to NodeTTL. The server calls it about every second; a
// node that stops reporting drops out of Counts after NodeTTL at most (at
// once when it closes). The first report is written whole (MULTI: DEL,
// HSET, PEXPIRE, EXEC); later ones write only the fields that changed
// (HSET, HDEL) and the PEXPIRE, in one round trip, so that a node with
// many channels does not rewrite them all every second.
func (e *Engine) ReportCounts(ctx context.Context, sessions int, subscribers map[string]int) error {
	if err := e.open(); err != nil {
		return err
	}
	report := make(map[string]int, 1+len(subscribers))
	for pattern, n := range subscribers {
		report[pattern] = n
	}
	report[sessionsField] = sessions
	e.counts.mu.Lock()
	prev := e.counts.written
	e.counts.written = nil // until this write succeeds
	e.counts.mu.Unlock()
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	var err error
	if prev == nil {
		err = e.writeCounts(ctx, report)
	} else {
		err = e.updateCounts(ctx, prev, report)
	}
	if err != nil {
		return err
	}
	e.counts.mu.Lock()
	e.counts.written = report
	e.counts.mu.Unlock()
	return nil
}

// rewriteCounts writes the last report again, whole (after a store reset).
func (e *Engine) rewriteCounts(ctx context.Context) error {
	e.counts.mu.Lock()
	report := e.counts.written
	e.counts.mu.Unlock()
	if report == nil {
		return nil // the next report is written whole anyway
	}
	return e.writeCounts(ctx, report)
}

// writeCounts replaces the node's report with report, atomically.
func (e *Engine) writeCounts(ctx context.Context, report map[string]int) error {
	c := e.client
	key := e.keys.counts + e.cfg.NodeID
	hset := c.B().Hset().Key(key).FieldValue()
	for field, n := range report {
		hset = hset.FieldValue(field, strconv.Itoa(n))
	}
	res := c.DoMulti(ctx,
		c.B().Multi().Build(),
		c.B().Del().Key(key).Build(),
		hset.Build(),
		c.B().Pexpire().Key(key).Milliseconds(e.cfg.NodeTTL.Milliseconds()).Build(),
		c.B().Exec().Build(),
	)
	for _, r := range res {
		if err := r.Error(); err != nil {
			return fmt.Errorf("redis: report counts: %w", err)
		}
	}
	return nil
}

// updateCounts writes what changed from prev (as written) to report, and
// extends the report's life.
func (e *Engine) updateCounts(ctx context.Context, prev, report map[string]int) error {
	c := e.client
	key := e.keys.counts + e.cfg.NodeID
	var changed []string // field, value, ...
	for field, n := range report {
		if old, ok := prev[field]; !ok || old != n {
			changed = append(changed, field, strconv.Itoa(n))
		}
	}
	var gone []string
	for field := range prev {
		if _, ok := report[field]; !ok {
			gone = append(gone, field)
		}
	}
	// The first PEXPIRE tells whether the hash is still there (0: it
	// expired, or Redis lost it; then the report is written whole); the
	// last one gives whatever HSET made a lifetime.
	pexpire := c.B().Pexpire().Key(key).Milliseconds(e.cfg.NodeTTL.Milliseconds()).Build()
	cmds := make(rueidis.Commands, 0, 4)
	cmds = append(cmds, pexpire)
	if len(changed) > 0 {
		hset := c.B().Hset().Key(key).FieldValue()
		for i := 0; i+1 < len(changed); i += 2 {
			hset = hset.FieldValue(changed[i], changed[i+1])
		}
		cmds = append(cmds, hset.Build())
	}
	if len(gone) > 0 {
		cmds = append(cmds, c.B().Hdel().Key(key).Field(gone...).Build())
	}
	if len(cmds) > 1 {
		cmds = append(cmds, c.B().Pexpire().Key(key).Milliseconds(e.cfg.NodeTTL.Milliseconds()).Build())
	}
	res := c.DoMulti(ctx, cmds...)
	for _, r := range res {
		if err := r.Error(); err != nil {
			return fmt.Errorf("redis: report counts: %w", err)
		}
	}
	if n, _ := res[0].AsInt64(); n == 0 {
		return e.writeCounts(ctx, report)
	}
	return nil
}

// Counts returns the sums of the latest reports of the live nodes (those
// whose heartbeat is current). It costs two round trips: ZRANGE of the
// nodes ZSET, then EXISTS and HGETALL per node, pipelined. Nodes found
// dead are removed from the ZSET on the way.
func (e *Engine) Counts(ctx context.Context) (sessions int, subscribers map[string]int, err error) {
	if err := e.open(); err != nil {
		return 0, nil, err
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	c := e.client
	ids, err := c.Do(ctx, c.B().Zrange().Key(e.keys.nodes).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return 0, nil, fmt.Errorf("redis: counts: listing nodes: %w", err)
	}
	subscribers = make(map[string]int)
	if len(ids) == 0 {
		return 0, subscribers, nil
	}
	cmds := make(rueidis.Commands, 0, 2*len(ids))
	for _, id := range ids {
		cmds = append(cmds,
			c.B().Exists().Key(e.keys.alive+id).Build(),
			c.B().Hgetall().Key(e.keys.counts+id).Build())
	}
	res := c.DoMulti(ctx, cmds...)
	var dead []string
	for i, id := range ids {
		alive, err := res[2*i].AsInt64()
		if err != nil {
			return 0, nil, fmt.Errorf("redis: counts: node %s: %w", id, err)
		}
		if alive == 0 {
			dead = append(dead, id)
			continue
		}
		report, err := res[2*i+1].AsStrMap()
		if err != nil {
			return 0, nil, fmt.Errorf("redis: counts: report of %s: %w", id, err)
		}
		for field, v := range report {
			n, err := strconv.Atoi(v)
			if err != nil {
				continue // not ours: skip rather than fail the sum
			}
			if field == sessionsField {
				sessions += n
			} else {
				subscribers[field] += n
			}
		}
	}
	if len(dead) > 0 {
		if err := c.Do(ctx, c.B().Zrem().Key(e.keys.nodes).Member(dead...).Build()).Error(); err != nil {
			e.log.Debug("redis: pruning dead nodes failed", "nodes", dead, "err", err)
		}
	}
	return sessions, subscribers, nil
}
