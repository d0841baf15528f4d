package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Backoff between attempts to re-open the pub/sub connection.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 500 * time.Millisecond
)

// subscribeChunk is the largest number of channels put in one SUBSCRIBE
// when re-subscribing after a reconnect; the chunks go in one pipeline.
const subscribeChunk = 1000

// subscriber holds the node's single pub/sub connection and the set of
// patterns it must listen to.
type subscriber struct {
	mu sync.Mutex
	// wanted is the set of patterns Subscribe added and Unsubscribe has
	// not removed: what every new connection subscribes to.
	wanted map[string]struct{}
	// conn is the live pub/sub connection, nil while it is down.
	conn rueidis.DedicatedClient

	// stripes serialise Subscribe, Unsubscribe and the post-reconnect
	// clean-up of one pattern, so that their commands reach Redis in the
	// order their effects were recorded in wanted; distinct patterns
	// proceed in parallel.
	stripes [64]sync.Mutex
	seed    maphash.Seed

	// ready is closed when the first connection is up.
	ready     chan struct{}
	readyOnce sync.Once
}

func (s *subscriber) init() {
	s.wanted = make(map[string]struct{})
	s.seed = maphash.MakeSeed()
	s.ready = make(chan struct{})
}

func (s *subscriber) stripe(pattern string) *sync.Mutex {
	return &s.stripes[maphash.String(s.seed, pattern)%uint64(len(s.stripes))]
}

// Subscribe makes this node listen to pattern (a channel name or a
// wildcard pattern): it SUBSCRIBEs the node's pub/sub connection to the
// pattern's Redis channel and returns once Redis has confirmed it, so that
// a message published after Subscribe returns reaches this node. While the
// pub/sub connection is down it fails at once with ErrUnavailable. After an
// error the pattern is not subscribed (and not re-subscribed later).
func (e *Engine) Subscribe(ctx context.Context, pattern string) error {
	if err := e.running(); err != nil {
		return err
	}
	if pattern == "" {
		return errors.New("redis: subscribe: empty pattern")
	}
	s := &e.sub
	l := s.stripe(pattern)
	l.Lock()
	defer l.Unlock()
	s.mu.Lock()
	c := s.conn
	_, had := s.wanted[pattern]
	if c != nil {
		s.wanted[pattern] = struct{}{}
	}
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("redis: subscribe %q: %w", pattern, ErrUnavailable)
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	err := c.Do(ctx, c.B().Subscribe().Channel(e.keys.ch+pattern).Build()).Error()
	if err == nil {
		return nil
	}
	if !had {
		// Forget it, and undo the SUBSCRIBE in case it went through
		// late; a new connection's clean-up takes care of the rest.
		s.mu.Lock()
		delete(s.wanted, pattern)
		cur := s.conn
		s.mu.Unlock()
		e.forgetTrackers(pattern)
		if cur != nil {
			// Queued behind the SUBSCRIBE on the same connection,
			// so no need to wait for the reply: fail fast.
			e.unsubscribeOn(cur, pattern, 10*time.Millisecond)
		}
	}
	return fmt.Errorf("redis: subscribe %q: %w", pattern, err)
}

// Unsubscribe makes this node stop listening to pattern. The pattern is
// forgotten even when it returns an error (the connection then is down or
// slow, and is not re-subscribed to it), and so are the offsets delivered
// on the history channels no other wanted pattern matches: should the node
// listen again, it starts from the next publication.
func (e *Engine) Unsubscribe(ctx context.Context, pattern string) error {
	s := &e.sub
	l := s.stripe(pattern)
	l.Lock()
	defer l.Unlock()
	s.mu.Lock()
	delete(s.wanted, pattern)
	c := s.conn
	s.mu.Unlock()
	e.forgetTrackers(pattern)
	if c == nil || e.running() != nil {
		return nil
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	if err := c.Do(ctx, c.B().Unsubscribe().Channel(e.keys.ch+pattern).Build()).Error(); err != nil {
		return fmt.Errorf("redis: unsubscribe %q: %w", pattern, err)
	}
	return nil
}

// unsubscribeOn sends a best-effort UNSUBSCRIBE for pattern on c, waiting
// at most wait for the reply (the command is sent in any case once queued).
// The caller holds the pattern's stripe, so that no later command for the
// pattern is queued before this one.
func (e *Engine) unsubscribeOn(c rueidis.DedicatedClient, pattern string, wait time.Duration) {
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	if err := c.Do(ctx, c.B().Unsubscribe().Channel(e.keys.ch+pattern).Build()).Error(); err != nil {
		e.log.Debug("redis unsubscribe failed", "pattern", pattern, "err", err)
	}
}

// subscribeLoop keeps the pub/sub connection open: it opens it, subscribes
// it to the node's channel and every wanted pattern, waits for it to fail,
// and starts over with a growing backoff, until the engine closes.
func (e *Engine) subscribeLoop() {
	defer e.wg.Done()
	s := &e.sub
	backoff := minBackoff
	var downSince time.Time // when the connection was lost; zero while up
	failures := 0
	for e.ctx.Err() == nil {
		began := time.Now()
		conn, done, n, err := e.connectPubSub()
		if err != nil {
			if e.ctx.Err() != nil {
				return
			}
			if failures++; failures == 1 {
				e.log.Warn("redis pub/sub connection failed; retrying", "err", err)
			} else {
				e.log.Debug("redis pub/sub connection failed", "err", err, "attempt", failures)
			}
			// Full jitter, so that many nodes do not reconnect in step.
			if !e.sleep(backoff/2 + rand.N(backoff/2+1)) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if !downSince.IsZero() {
			e.counters.reconnects.Add(1)
			e.log.Info("redis pub/sub connection restored", "patterns", n,
				"down", time.Since(downSince).Round(time.Millisecond),
				"resubscribe", time.Since(began).Round(time.Microsecond))
		}
		backoff, failures, downSince = minBackoff, 0, time.Time{}
		s.readyOnce.Do(func() { close(s.ready) })
		e.nodes.kickHeartbeat()
		e.catchUp() // what history channels missed while it was down

		select {
		case err := <-done:
			downSince = time.Now()
			e.log.Warn("redis pub/sub connection lost; reconnecting", "err", err)
		case <-e.ctx.Done():
		}
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		conn.Close()
	}
}

// connectPubSub opens a pub/sub connection, subscribes it (confirmed) to
// the node's channel and every wanted pattern in one pipeline, and
// publishes it as the current connection. It returns the connection, a
// channel that yields an error when it fails, and the number of channels.
func (e *Engine) connectPubSub() (rueidis.DedicatedClient, <-chan error, int, error) {
	s := &e.sub
	dc, _ := e.client.Dedicate() // released by dc.Close
	done := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: e.onMessage})

	s.mu.Lock()
	patterns := make([]string, 0, len(s.wanted))
	for p := range s.wanted {
		patterns = append(patterns, p)
	}
	s.mu.Unlock()

	names := make([]string, 0, len(patterns)+1)
	names = append(names, e.nodes.channel)
	for _, p := range patterns {
		names = append(names, e.keys.ch+p)
	}
	cmds := make([]rueidis.Completed, 0, len(names)/subscribeChunk+1)
	for len(names) > 0 {
		n := min(len(names), subscribeChunk)
		cmds = append(cmds, dc.B().Subscribe().Channel(names[:n]...).Build())
		names = names[n:]
	}
	timeout := e.cfg.OpTimeout * time.Duration(1+len(patterns)/10000)
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	for _, r := range dc.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			dc.Close()
			return nil, nil, 0, fmt.Errorf("redis: subscribing %d channels: %w", len(patterns)+1, err)
		}
	}

	s.mu.Lock()
	s.conn = dc
	var extra []string // unsubscribed while we were subscribing
	for _, p := range patterns {
		if _, ok := s.wanted[p]; !ok {
			extra = append(extra, p)
		}
	}
	s.mu.Unlock()
	for _, p := range extra {
		e.dropExtra(dc, p)
	}
	return dc, done, len(patterns), nil
}

// dropExtra unsubscribes c from pattern unless it is wanted again.
func (e *Engine) dropExtra(c rueidis.DedicatedClient, pattern string) {
	s := &e.sub
	l := s.stripe(pattern)
	l.Lock()
	defer l.Unlock()
	s.mu.Lock()
	_, want := s.wanted[pattern]
	cur := s.conn
	s.mu.Unlock()
	if !want && cur == c {
		e.unsubscribeOn(c, pattern, e.cfg.OpTimeout)
	}
}

// onMessage receives every message of the pub/sub connection, on the
// connection's reading goroutine.
func (e *Engine) onMessage(m rueidis.PubSubMessage) {
	switch {
	case m.Channel == e.nodes.channel:
		e.enqueueNodeMessage(m.Message)
	case strings.HasPrefix(m.Channel, e.keys.ch):
		e.onPublication(m.Message)
	}
}
