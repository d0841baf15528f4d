package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// releaseScript deletes a session claim only if it is still the caller's.
// KEYS[1] = the claim key, ARGV[1] = the caller's NodeID.
const releaseScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

// sessions is the node's own record of the sessions it claims, kept so
// that it can re-record them after Redis lost its data.
type sessions struct {
	mu sync.Mutex
	// claims maps a claimed session id to the claim's expiry.
	claims  map[string]time.Time
	release *rueidis.Lua
}

func (s *sessions) init() {
	s.claims = make(map[string]time.Time)
	s.release = rueidis.NewLuaScript(releaseScript)
}

// open returns bayeux.ErrEngineClosed once the engine is closed; the
// session calls work before Start too.
func (e *Engine) open() error {
	if e.state.Load() == stateClosed {
		return bayeux.ErrEngineClosed
	}
	return nil
}

// ClaimSession records that this node owns session id for ttl (at least a
// millisecond): SET <ns>:sess:<id> NodeID PX ttl. The owner calls it again
// to extend the claim. The claim is also kept in memory until it expires
// or is released, and re-recorded when Redis lost its data.
func (e *Engine) ClaimSession(ctx context.Context, id string, ttl time.Duration) error {
	if err := e.open(); err != nil {
		return err
	}
	if id == "" {
		return errors.New("redis: claim: empty session id")
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("redis: claim %s: ttl %v below 1ms", id, ttl)
	}
	s := &e.sessions
	deadline := time.Now().Add(ttl)
	s.mu.Lock()
	_, extending := s.claims[id]
	s.claims[id] = deadline
	s.mu.Unlock()
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	c := e.client
	if err := c.Do(ctx, c.B().Set().Key(e.keys.sess+id).Value(e.cfg.NodeID).Px(ttl).Build()).Error(); err != nil {
		if !extending {
			// A new claim that failed is no claim; an extension
			// that failed is kept, to be re-recorded.
			s.mu.Lock()
			if s.claims[id] == deadline {
				delete(s.claims, id)
			}
			s.mu.Unlock()
		}
		return fmt.Errorf("redis: claim %s: %w", id, err)
	}
	return nil
}

// ClaimSessions extends this node's claims on the sessions ids (claimed by
// ClaimSession, and not released since: the others are left alone) for
// ttl, a thousand per round trip, where ClaimSession takes one each. It makes the Engine a bayeux.BatchClaimer.
func (e *Engine) ClaimSessions(ctx context.Context, ids []string, ttl time.Duration) error {
	if err := e.open(); err != nil {
		return err
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("redis: claims: ttl %v below 1ms", ttl)
	}
	s := &e.sessions
	deadline := time.Now().Add(ttl)
	held := make([]string, 0, len(ids))
	s.mu.Lock()
	for _, id := range ids {
		if _, ok := s.claims[id]; ok { // released meanwhile: leave it
			s.claims[id] = deadline
			held = append(held, id)
		}
	}
	s.mu.Unlock()
	ids = held
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	c := e.client
	cmds := make(rueidis.Commands, 0, min(len(ids), claimChunk))
	for len(ids) > 0 {
		n := min(len(ids), claimChunk)
		cmds = cmds[:0]
		for _, id := range ids[:n] {
			cmds = append(cmds, c.B().Set().Key(e.keys.sess+id).Value(e.cfg.NodeID).Px(ttl).Build())
		}
		for _, r := range c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("redis: claims: %w", err)
			}
		}
		ids = ids[n:]
	}
	return nil
}

// claimChunk is the most claims ClaimSessions sends in one round trip.
const claimChunk = 1000

// ReleaseSession forgets this node's claim on session id, deleting the key
// only if this node still holds it (one Lua script call).
func (e *Engine) ReleaseSession(ctx context.Context, id string) error {
	if err := e.open(); err != nil {
		return err
	}
	s := &e.sessions
	s.mu.Lock()
	delete(s.claims, id)
	s.mu.Unlock()
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	if err := s.release.Exec(ctx, e.client, []string{e.keys.sess + id}, []string{e.cfg.NodeID}).Error(); err != nil {
		return fmt.Errorf("redis: release %s: %w", id, err)
	}
	return nil
}

// SessionOwner returns the node that claims session id if that node is
// alive, else "". Alive means its heartbeat is current (checked through a
// one-second cache) and Send has not found it gone since its last beat: a
// dead node's claims and heartbeat outlive it, but its channel loses its
// listener with its connections, so the first Send to it after its death
// tells, within about a second (see Send). It costs one GET, plus another
// when the cache misses.
func (e *Engine) SessionOwner(ctx context.Context, id string) (string, error) {
	if err := e.open(); err != nil {
		return "", err
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	owner, err := e.client.Do(ctx, e.client.B().Get().Key(e.keys.sess+id).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis: owner of %s: %w", id, err)
	}
	alive, err := e.isAlive(ctx, owner)
	if err != nil {
		return "", err
	}
	if !alive {
		return "", nil
	}
	return owner, nil
}

// reclaimAll re-records every current claim with its remaining ttl (SET NX,
// so that a claim renewed meanwhile is left alone), in one pipeline, and
// returns how many it sent.
func (e *Engine) reclaimAll(ctx context.Context) (int, error) {
	s := &e.sessions
	now := time.Now()
	s.mu.Lock()
	ids := make([]string, 0, len(s.claims))
	cmds := make(rueidis.Commands, 0, len(s.claims))
	for id, deadline := range s.claims {
		if left := deadline.Sub(now); left >= time.Millisecond {
			ids = append(ids, id)
			cmds = append(cmds, e.client.B().Set().Key(e.keys.sess+id).Value(e.cfg.NodeID).Nx().Px(left).Build())
		}
	}
	s.mu.Unlock()
	if len(cmds) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout*time.Duration(1+len(cmds)/10000))
	defer cancel()
	for _, r := range e.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return 0, fmt.Errorf("redis: re-claiming %d sessions: %w", len(cmds), err)
		}
	}
	// Undo the claims released while they were being re-recorded.
	var gone []string
	s.mu.Lock()
	for _, id := range ids {
		if _, ok := s.claims[id]; !ok {
			gone = append(gone, id)
		}
	}
	s.mu.Unlock()
	if err := e.releaseIDs(ctx, gone); err != nil {
		return 0, err
	}
	return len(cmds), nil
}

// releaseAll releases every claim of this node (on Close).
func (e *Engine) releaseAll(ctx context.Context) error {
	s := &e.sessions
	s.mu.Lock()
	ids := make([]string, 0, len(s.claims))
	for id := range s.claims {
		ids = append(ids, id)
	}
	clear(s.claims)
	s.mu.Unlock()
	return e.releaseIDs(ctx, ids)
}

// releaseIDs runs the release script for ids, pipelined.
func (e *Engine) releaseIDs(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	s := &e.sessions
	execs := make([]rueidis.LuaExec, len(ids))
	for i, id := range ids {
		execs[i] = rueidis.LuaExec{Keys: []string{e.keys.sess + id}, Args: []string{e.cfg.NodeID}}
	}
	for _, r := range s.release.ExecMulti(ctx, e.client, execs...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("redis: releasing %d sessions: %w", len(ids), err)
		}
	}
	return nil
}

// pruneClaims forgets the claims that expired without being extended.
func (e *Engine) pruneClaims() {
	s := &e.sessions
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, deadline := range s.claims {
		if !deadline.After(now) {
			delete(s.claims, id)
		}
	}
}
