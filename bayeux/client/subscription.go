package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/bayou-pubsub/bayou/channels"
)

// Handler receives the messages delivered to a subscription. Handlers of
// a client are called one at a time, in the order messages arrive, from a
// goroutine of the client: a slow handler delays the others, and messages
// wait in memory meanwhile (hand long work to another goroutine). A
// handler may call Publish and Subscribe, but not Client.Close. The
// message is shared with the other handlers matching it and must not be
// modified.
type Handler func(m *Message)

// Subscription is one handler subscribed to a channel or pattern. Several
// subscriptions to the same pattern share one subscription on the server.
type Subscription struct {
	c       *Client
	pattern string
	handler Handler
	entry   *subEntry // guarded by c.subMu

	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// Pattern returns the channel or pattern subscribed to.
func (s *Subscription) Pattern() string { return s.pattern }

// Done returns a channel closed when the subscription ends: after Cancel,
// when the client is closed or stopped, or when the server refuses to
// restore it after a new handshake.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns nil while the subscription is active, then why it ended:
// ErrUnsubscribed after Cancel, ErrClosed, or the server's refusal.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Subscription) finish(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
	})
}

// Cancel removes the handler. When it is the last one of its pattern the
// client unsubscribes on the server, which Cancel waits for (bounded by
// ctx). Messages already being dispatched may still reach the handler.
// Cancelling twice does nothing.
func (s *Subscription) Cancel(ctx context.Context) error {
	c := s.c
	c.subMu.Lock()
	e := s.entry
	i := slices.Index(e.handlers, s)
	if i < 0 {
		c.subMu.Unlock()
		return nil
	}
	e.handlers = slices.Delete(e.handlers, i, i+1)
	last := len(e.handlers) == 0 && e.state == subActive
	if last {
		e.state, e.gone = subClosing, make(chan struct{})
	}
	c.subMu.Unlock()
	s.finish(ErrUnsubscribed)
	if !last {
		return nil
	}
	if err := c.unsubscribe(ctx, e); err != nil {
		return fmt.Errorf("client: unsubscribe %s: %w", e.pattern, err)
	}
	return nil
}

type subState int

const (
	subPending subState = iota // the first subscribe is under way
	subActive                  // subscribed on the server
	subClosing                 // unsubscribe under way
	subEnded                   // refused, unsubscribed or closed
)

// subEntry is one subscription on the server, shared by the handlers of a
// pattern. Its fields are guarded by Client.subMu.
type subEntry struct {
	pattern  string
	state    subState
	epoch    uint64 // the session it is subscribed on (see Client.epoch)
	handlers []*Subscription
	replay   replayFrom    // asked for when no position of the channel is known
	ready    chan struct{} // closed when the first subscribe is decided
	err      error         // why it failed; set before ready is closed
	gone     chan struct{} // closed when the unsubscribe is over
}

// Subscribe subscribes handler to a channel ("/chat/room-1") or a pattern
// ("/chat/*" for one more segment, "/chat/**" for any number) and returns
// once the server has accepted the subscription; messages on matching
// channels then reach handler. Patterns are matched by the client too, so
// the handlers of overlapping patterns each get a message the server sent
// once. Only the first subscription to a pattern is sent to the server;
// later ones just add their handler. If the connection is down, Subscribe
// waits for it (bounded by ctx). A refusal by the server returns an error
// wrapping an *Error, such as code 403 for "/meta/foo". After a new
// handshake every subscription is restored automatically, and channels
// with history resume after the last message received (see the package
// documentation, "Delivery guarantees").
//
// The options ReplayAll and ReplayAfter first deliver messages published
// before the call. They need a channel name, not a pattern, and apply
// only to the subscription that creates the server subscription: Subscribe
// fails if the client already has one for the channel. Messages the client
// has delivered already (through a pattern that matches the channel) are
// not delivered again.
func (c *Client) Subscribe(ctx context.Context, pattern string, handler Handler, opts ...SubscribeOption) (*Subscription, error) {
	if handler == nil {
		return nil, errors.New("client: subscribe: nil handler")
	}
	var so subscribeOptions
	for _, opt := range opts {
		opt(&so)
	}
	if so.set && channels.IsWildcard(pattern) {
		return nil, fmt.Errorf("client: subscribe %s: replay needs a channel name, not a pattern", pattern)
	}
	s := &Subscription{c: c, pattern: pattern, handler: handler, done: make(chan struct{})}
	var e *subEntry
	for e == nil {
		c.subMu.Lock()
		e = c.subs[pattern]
		if e != nil && e.state == subClosing {
			gone := e.gone
			c.subMu.Unlock()
			select {
			case <-gone:
			case <-ctx.Done():
				return nil, fmt.Errorf("client: subscribe %s: %w", pattern, ctx.Err())
			}
			e = nil
			continue
		}
		if e != nil && so.set {
			c.subMu.Unlock()
			return nil, fmt.Errorf("client: subscribe %s: replay asked for a channel subscribed already", pattern)
		}
		if e == nil {
			e = &subEntry{pattern: pattern, replay: so.replay, ready: make(chan struct{})}
			if !c.goTracked(func() { c.subscribeLoop(e) }) {
				c.subMu.Unlock()
				return nil, fmt.Errorf("client: subscribe %s: %w", pattern, ErrClosed)
			}
			c.subs[pattern] = e
		}
		e.handlers = append(e.handlers, s)
		s.entry = e
		c.subMu.Unlock()
	}
	select {
	case <-e.ready:
		if e.err != nil {
			return nil, fmt.Errorf("client: subscribe %s: %w", pattern, e.err)
		}
		return s, nil
	case <-ctx.Done():
		// Leave; the subscribe goroutine unsubscribes if no handler is left.
		cctx, cancel := context.WithTimeout(c.ctx, c.opts.requestTimeout)
		defer cancel()
		if err := s.Cancel(cctx); err != nil {
			c.log.Debug("cancelling abandoned subscription", "pattern", pattern, "err", err)
		}
		return nil, fmt.Errorf("client: subscribe %s: %w", pattern, ctx.Err())
	}
}

// subscribeLoop makes the first server subscription of e, retrying on
// transport failures and on a new session, until the server answers.
func (c *Client) subscribeLoop(e *subEntry) {
	for attempt := 1; ; attempt++ {
		c.subMu.Lock()
		abandoned := len(e.handlers) == 0
		c.subMu.Unlock()
		if abandoned {
			c.endEntry(e, ErrUnsubscribed)
			return
		}
		sess, err := c.waitConnected(c.ctx)
		if err != nil {
			c.endEntry(e, err)
			return
		}
		m, asked := c.subscribeMessage(e, sess.id)
		p, err := c.start(sess.tr, m, false, c.opts.requestTimeout)
		if err == nil {
			var reply *Message
			reply, err = c.await(c.ctx, p, c.opts.requestTimeout)
			if err == nil && !reply.Successful {
				rerr := replyError(reply)
				if c.replayRefused(e, asked, rerr) {
					continue // at once, without replay
				}
				if !rerr.unknownClient() && c.epoch.Load() == sess.epoch {
					c.endEntry(e, rerr)
					return
				}
				err = rerr
			}
			if err == nil {
				c.replayed(e, asked, reply)
			}
		}
		if err == nil && c.confirm(e, sess.epoch) {
			return
		}
		if c.ctx.Err() != nil {
			c.endEntry(e, ErrClosed)
			return
		}
		if err != nil {
			c.log.Debug("subscribe failed; retrying", "pattern", e.pattern, "attempt", attempt, "err", err)
			if !c.retryPause(c.ctx, attempt) {
				c.endEntry(e, ErrClosed)
				return
			}
		}
	}
}

// confirm records e as subscribed on the session of epoch. It returns
// false when the client has handshaken since (the subscription died with
// the old session), so the subscribe must be made again.
func (c *Client) confirm(e *subEntry, epoch uint64) bool {
	c.subMu.Lock()
	if c.epoch.Load() != epoch {
		c.subMu.Unlock()
		return false
	}
	e.state, e.epoch = subActive, epoch
	close(e.ready)
	abandoned := len(e.handlers) == 0
	if abandoned {
		e.state, e.gone = subClosing, make(chan struct{})
	}
	c.subMu.Unlock()
	if abandoned {
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.requestTimeout)
		defer cancel()
		if err := c.unsubscribe(ctx, e); err != nil {
			c.log.Debug("unsubscribing abandoned subscription", "pattern", e.pattern, "err", err)
		}
	}
	return true
}

// unsubscribe removes e, in state subClosing, from the server and from the
// client.
func (c *Client) unsubscribe(ctx context.Context, e *subEntry) error {
	defer func() {
		c.subMu.Lock()
		if c.subs[e.pattern] == e {
			delete(c.subs, e.pattern)
			c.forgetPositionsLocked(e.pattern)
		}
		e.state = subEnded
		close(e.gone)
		c.subMu.Unlock()
	}()
	if sess, ok := c.current(); ok && sess.epoch != e.epoch {
		return nil // subscribed on an older session, which the server forgot
	}
	m := &Message{Channel: channels.MetaUnsubscribe, Subscription: e.pattern, ID: c.nextID()}
	_, err := c.request(ctx, m)
	return err
}

// endEntry ends e and its subscriptions with err.
func (c *Client) endEntry(e *subEntry, err error) {
	c.subMu.Lock()
	handlers := c.endEntryLocked(e, err)
	c.forgetPositionsLocked(e.pattern)
	c.subMu.Unlock()
	for _, s := range handlers {
		s.finish(err)
	}
}

func (c *Client) endEntryLocked(e *subEntry, err error) []*Subscription {
	if c.subs[e.pattern] == e {
		delete(c.subs, e.pattern)
	}
	switch e.state {
	case subPending:
		e.err = err
		close(e.ready)
	case subClosing:
		return nil // unsubscribe ends it
	}
	e.state = subEnded
	handlers := e.handlers
	e.handlers = nil
	return handlers
}

// endSubscriptions ends every subscription with err.
func (c *Client) endSubscriptions(err error) {
	var handlers []*Subscription
	c.subMu.Lock()
	for _, e := range c.subs {
		handlers = append(handlers, c.endEntryLocked(e, err)...)
	}
	c.subMu.Unlock()
	for _, s := range handlers {
		s.finish(err)
	}
}

// restoreSubscriptions subscribes again, on the current session, to every
// pattern subscribed on an earlier one; channels resume after their last
// known position. The requests are sent together (one HTTP request on
// long-polling) before their replies are awaited. A pattern the server now
// refuses is dropped and its subscriptions end; one that fails otherwise
// is retried after the next connect. A channel whose replay the server
// refuses is subscribed again at once without replay.
func (c *Client) restoreSubscriptions() {
	c.mu.Lock()
	sess := session{id: c.clientID, epoch: c.epoch.Load(), tr: c.tr}
	c.mu.Unlock()
	var stale []*subEntry
	c.subMu.Lock()
	for _, e := range c.subs {
		if e.state == subActive && e.epoch != sess.epoch {
			stale = append(stale, e)
		}
	}
	c.subMu.Unlock()
	if len(stale) == 0 {
		return
	}
	total, restored := len(stale), 0
	for round := 0; round < 2 && len(stale) > 0; round++ {
		var n int
		n, stale = c.restore(sess, stale)
		restored += n
	}
	c.log.Debug("subscriptions restored", "restored", restored, "of", total)
}

// restore subscribes entries on sess and returns how many it restored,
// and the entries whose replay the server refused.
func (c *Client) restore(sess session, entries []*subEntry) (int, []*subEntry) {
	type call struct {
		e     *subEntry
		p     *pending
		asked replayFrom
	}
	calls := make([]call, 0, len(entries))
	for _, e := range entries {
		m, asked := c.subscribeMessage(e, sess.id)
		p, err := c.start(sess.tr, m, false, c.opts.requestTimeout)
		if err != nil {
			c.log.Warn("restoring subscription failed", "pattern", e.pattern, "err", err)
			continue
		}
		calls = append(calls, call{e, p, asked})
	}
	restored := 0
	var again []*subEntry
	for _, call := range calls {
		reply, err := c.await(c.ctx, call.p, c.opts.requestTimeout)
		switch {
		case err != nil:
			c.log.Debug("restoring subscription failed; will retry", "pattern", call.e.pattern, "err", err)
		case reply.Successful:
			c.subMu.Lock()
			if call.e.state == subActive && c.epoch.Load() == sess.epoch {
				call.e.epoch = sess.epoch
				restored++
				// Under subMu, so that an unsubscribe cannot forget the
				// channel's position before it is recorded.
				c.replayed(call.e, call.asked, reply)
			}
			c.subMu.Unlock()
		default:
			rerr := replyError(reply)
			if rerr.unknownClient() {
				continue
			}
			if c.replayRefused(call.e, call.asked, rerr) {
				again = append(again, call.e)
				continue
			}
			c.log.Warn("server refused to restore subscription", "pattern", call.e.pattern, "err", rerr)
			c.endEntry(call.e, fmt.Errorf("client: restoring subscription %s: %w", call.e.pattern, rerr))
		}
	}
	return restored, again
}

// dispatch calls the handlers of every subscription matching the
// channel of m.
func (c *Client) dispatch(m *Message) {
	var handlers []*Subscription
	c.subMu.Lock()
	for pattern, e := range c.subs {
		if channels.Match(pattern, m.Channel) {
			handlers = append(handlers, e.handlers...)
		}
	}
	c.subMu.Unlock()
	for _, s := range handlers {
		select {
		case <-s.done:
		default:
			s.handler(m)
		}
	}
}

// dispatcher runs queued functions (deliveries and state reports) one at a
// time, in order, on its own goroutine. The queue is unbounded, so the
// goroutines that read from the network never block on handlers (a
// handler may then wait for a reply without deadlocking the client).
type dispatcher struct {
	mu    sync.Mutex
	queue []func()
	wake  chan struct{}
}

func newDispatcher() *dispatcher { return &dispatcher{wake: make(chan struct{}, 1)} }

func (d *dispatcher) push(f func()) {
	d.mu.Lock()
	d.queue = append(d.queue, f)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run executes queued functions until ctx ends; what is left is dropped.
func (d *dispatcher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		for {
			d.mu.Lock()
			batch := d.queue
			d.queue = nil
			d.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i, f := range batch {
				if ctx.Err() != nil {
					return
				}
				f()
				batch[i] = nil
			}
		}
	}
}
