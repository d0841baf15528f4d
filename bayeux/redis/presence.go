package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/rueidis"
)

// Presence is kept in three kinds of keys:
//
//	<ns>:pres:<channel>   hash: clientId -> "<NodeID> <member JSON>"
//	<ns>:presnode:<node>  set:  "<clientId> <channel>", the node's entries
//	<ns>:presnodes        set:  the nodes that have entries
//
// A node writes and deletes its own entries. Readers skip the entries of
// nodes that are not alive, so a killed node's members disappear from
// queries as soon as its heartbeat expires (NodeTTL); PresenceSweep then
// deletes them, and the one node whose sweep took them announces that they
// left.

// sweepBatch bounds the entries one sweep script removes, so that a dead
// node with many members does not stall Redis in one long script.
const sweepBatch = 500

// sweepScript removes up to ARGV[3] entries of a dead node and returns them
// as a flat list channel, clientId, member, ... An alive node's entries are
// left alone. Being one script, it hands each entry to exactly one sweeper.
// KEYS[1] = the node's liveness key, KEYS[2] = its presnode set, KEYS[3] =
// presnodes; ARGV[1] = the node, ARGV[2] = the pres: prefix, ARGV[3] = the
// batch size.
const sweepScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {} end
local out = {}
local owner = ARGV[1] .. ' '
for _, it in ipairs(redis.call('SPOP', KEYS[2], tonumber(ARGV[3]))) do
  local sp = string.find(it, ' ', 1, true)
  if sp then
    local cid, ch = string.sub(it, 1, sp - 1), string.sub(it, sp + 1)
    local k = ARGV[2] .. ch
    local v = redis.call('HGET', k, cid)
    if v and string.sub(v, 1, #owner) == owner then
      redis.call('HDEL', k, cid)
      out[#out + 1] = ch
      out[#out + 1] = cid
      out[#out + 1] = string.sub(v, #owner + 1)
    end
  end
end
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[1]) end
return out`

// removeScript deletes an entry if this node owns it and returns its
// member. KEYS[1] = pres:<channel>, KEYS[2] = the node's presnode set;
// ARGV[1] = clientId, ARGV[2] = NodeID, ARGV[3] = "<clientId> <channel>".
const removeScript = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[3])
if not v then return false end
local owner = ARGV[2] .. ' '
if string.sub(v, 1, #owner) ~= owner then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
return string.sub(v, #owner + 1)`

// presence is the node's own copy of the entries it wrote, to write them
// again after Redis lost its data.
type presence struct {
	mu      sync.Mutex
	entries map[string]map[string][]byte // channel -> clientId -> member
	sweep   *rueidis.Lua
	remove  *rueidis.Lua
}

func (p *presence) init() {
	p.entries = make(map[string]map[string][]byte)
	p.sweep = rueidis.NewLuaScript(sweepScript)
	p.remove = rueidis.NewLuaScript(removeScript)
}

// presenceKeys returns the keys of the entry of clientID on channel.
func (e *Engine) presenceKeys(channel string) (hash, nodeSet string) {
	return e.keys.pres + channel, e.keys.presnode + e.cfg.NodeID
}

// PresenceAdd records that clientID, a session of this node, is present on
// channel, described by member (JSON), in one round trip. With
// PresenceRemove, PresenceMembers and PresenceSweep it makes the Engine a
// store for the presence extension (extensions/presence), shared by the
// nodes.
func (e *Engine) PresenceAdd(ctx context.Context, channel, clientID string, member []byte) error {
	if err := e.open(); err != nil {
		return err
	}
	if strings.ContainsRune(clientID, ' ') {
		return fmt.Errorf("redis: presence: client id %q has a space", clientID)
	}
	p := &e.presence
	p.mu.Lock()
	m := p.entries[channel]
	if m == nil {
		m = make(map[string][]byte)
		p.entries[channel] = m
	}
	m[clientID] = member
	p.mu.Unlock()
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	return e.writePresence(ctx, channel, clientID, member)
}

// writePresence writes one entry.
func (e *Engine) writePresence(ctx context.Context, channel, clientID string, member []byte) error {
	c := e.client
	hash, nodeSet := e.presenceKeys(channel)
	for _, r := range c.DoMulti(ctx,
		c.B().Hset().Key(hash).FieldValue().FieldValue(clientID, e.cfg.NodeID+" "+string(member)).Build(),
		c.B().Sadd().Key(nodeSet).Member(clientID+" "+channel).Build(),
		c.B().Sadd().Key(e.keys.presnodes).Member(e.cfg.NodeID).Build(),
	) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("redis: presence add: %w", err)
		}
	}
	return nil
}

// PresenceRemove forgets clientID on channel and returns the member it was
// recorded with, or nil when it was not present.
func (e *Engine) PresenceRemove(ctx context.Context, channel, clientID string) ([]byte, error) {
	if err := e.open(); err != nil {
		return nil, err
	}
	p := &e.presence
	p.mu.Lock()
	if m := p.entries[channel]; m != nil {
		delete(m, clientID)
		if len(m) == 0 {
			delete(p.entries, channel)
		}
	}
	p.mu.Unlock()
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	hash, nodeSet := e.presenceKeys(channel)
	v, err := p.remove.Exec(ctx, e.client, []string{hash, nodeSet},
		[]string{clientID, e.cfg.NodeID, clientID + " " + channel}).ToString()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis: presence remove: %w", err)
	}
	return []byte(v), nil
}

// PresenceMembers returns the members present on channel, by clientId,
// on every live node (one HGETALL; whether a node is alive is cached for
// about a second).
func (e *Engine) PresenceMembers(ctx context.Context, channel string) (map[string][]byte, error) {
	if err := e.open(); err != nil {
		return nil, err
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	all, err := e.client.Do(ctx, e.client.B().Hgetall().Key(e.keys.pres+channel).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("redis: presence of %s: %w", channel, err)
	}
	alive := make(map[string]bool)
	out := make(map[string][]byte, len(all))
	for cid, v := range all {
		node, member, ok := strings.Cut(v, " ")
		if !ok {
			continue
		}
		live, seen := alive[node]
		if !seen {
			if live, err = e.isAlive(ctx, node); err != nil {
				return nil, err
			}
			alive[node] = live
		}
		if live {
			out[cid] = []byte(member)
		}
	}
	return out, nil
}

// PresenceSweep removes the entries of the nodes that are no longer alive
// and calls gone for each, once in the whole cluster: of the nodes that
// sweep at the same time, one takes each entry.
func (e *Engine) PresenceSweep(ctx context.Context, gone func(channel, clientID string, member []byte)) error {
	if err := e.open(); err != nil {
		return err
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	nodes, err := e.client.Do(ctx, e.client.B().Smembers().Key(e.keys.presnodes).Build()).AsStrSlice()
	if err != nil {
		return fmt.Errorf("redis: presence sweep: %w", err)
	}
	for _, node := range nodes {
		if node == e.cfg.NodeID {
			continue
		}
		if live, err := e.isAlive(ctx, node); err != nil || live {
			continue
		}
		if err := e.sweepNode(ctx, node, gone); err != nil {
			return err
		}
	}
	return nil
}

// sweepNode removes the entries of a dead node, a batch at a time.
func (e *Engine) sweepNode(ctx context.Context, node string, gone func(channel, clientID string, member []byte)) error {
	keys := []string{e.keys.alive + node, e.keys.presnode + node, e.keys.presnodes}
	args := []string{node, e.keys.pres, strconv.Itoa(sweepBatch)}
	for range 1 << 20 { // bounded: each round removes a batch or ends
		out, err := e.presence.sweep.Exec(ctx, e.client, keys, args).AsStrSlice()
		if err != nil {
			return fmt.Errorf("redis: presence sweep of %s: %w", node, err)
		}
		for i := 0; i+2 < len(out); i += 3 {
			gone(out[i], out[i+1], []byte(out[i+2]))
		}
		if len(out) == 0 {
			n, err := e.client.Do(ctx, e.client.B().Scard().Key(e.keys.presnode+node).Build()).AsInt64()
			if err != nil || n == 0 {
				return err
			}
		}
	}
	return errors.New("redis: presence sweep did not end")
}

// rewritePresence writes the node's entries again after a store reset,
// pipelined a thousand commands at a time.
func (e *Engine) rewritePresence(ctx context.Context) error {
	c := e.client
	var cmds rueidis.Commands
	e.presence.mu.Lock()
	for ch, m := range e.presence.entries {
		hash, nodeSet := e.presenceKeys(ch)
		for cid, member := range m {
			cmds = append(cmds,
				c.B().Hset().Key(hash).FieldValue().FieldValue(cid, e.cfg.NodeID+" "+string(member)).Build(),
				c.B().Sadd().Key(nodeSet).Member(cid+" "+ch).Build())
		}
	}
	e.presence.mu.Unlock()
	if len(cmds) == 0 {
		return nil
	}
	cmds = append(cmds, c.B().Sadd().Key(e.keys.presnodes).Member(e.cfg.NodeID).Build())
	for len(cmds) > 0 {
		n := min(len(cmds), 1000)
		for _, r := range c.DoMulti(ctx, cmds[:n]...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("redis: re-recording presence: %w", err)
			}
		}
		cmds = cmds[n:]
	}
	return nil
}
