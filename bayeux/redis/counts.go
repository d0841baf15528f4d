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

// counts keeps the node's last count report, to re-record it after Redis
// lost its data.
type counts struct {
	mu sync.Mutex
	// last is the field/value list of the last report, nil before any.
	last []string
}

// ReportCounts replaces this node's count report, the hash
// <ns>:counts:<NodeID> ("_sessions" and one field per pattern), atomically
// (MULTI: DEL, HSET, PEXPIRE NodeTTL, EXEC) in one round trip. The server
// calls it about every second; a node that stops reporting drops out of
// Counts after NodeTTL at most (at once when it closes).
func (e *Engine) ReportCounts(ctx context.Context, sessions int, subscribers map[string]int) error {
	if err := e.open(); err != nil {
		return err
	}
	fields := make([]string, 0, 2+2*len(subscribers))
	fields = append(fields, sessionsField, strconv.Itoa(sessions))
	for pattern, n := range subscribers {
		fields = append(fields, pattern, strconv.Itoa(n))
	}
	e.counts.mu.Lock()
	e.counts.last = fields
	e.counts.mu.Unlock()
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	return e.writeCounts(ctx, fields)
}

// rewriteCounts writes the last report again (after a store reset).
func (e *Engine) rewriteCounts(ctx context.Context) error {
	e.counts.mu.Lock()
	fields := e.counts.last
	e.counts.mu.Unlock()
	if fields == nil {
		return nil
	}
	return e.writeCounts(ctx, fields)
}

// writeCounts replaces the node's report with fields (never modified).
func (e *Engine) writeCounts(ctx context.Context, fields []string) error {
	c := e.client
	key := e.keys.counts + e.cfg.NodeID
	hset := c.B().Hset().Key(key).FieldValue()
	for i := 0; i+1 < len(fields); i += 2 {
		hset = hset.FieldValue(fields[i], fields[i+1])
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
