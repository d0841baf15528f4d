package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// maxInFlight bounds the publishes sent before their replies are awaited.
const maxInFlight = 1000

// PublishResult is the outcome of a publish: the server's acknowledgement,
// or why there is none.
type PublishResult struct {
	// Reply is the server's acknowledgement; with Err an *Error, the
	// reply that carried it.
	Reply *Message
	// Err is nil when the server accepted the message.
	Err error
}

// Publish sends data on channel and waits for the server's
// acknowledgement, which it returns. data is marshalled to JSON (a
// json.RawMessage is sent as is). If the server refuses the message the
// error wraps an *Error (for example code 403 or 405). ctx bounds the whole
// wait.
//
// Publish and PublishAsync share one queue, and messages reach the server
// in the order of the calls (of calls made one after the other; concurrent
// calls take some order), whatever happens to the connection:
//
//   - Messages published while the client is not connected (before the
//     first connection, or while it recovers) wait in the queue and are
//     sent, in order, once it is.
//   - When the connection fails, the messages whose acknowledgement did not
//     arrive are sent again, with the same ids and in order, before any
//     later one. The server can then receive a message twice (delivery is
//     at least once, like faye's), but no message first reaches the server
//     after a later one, unless the server failed to answer it while it
//     answered later ones.
//   - A message whose ctx ends, or that the server refuses, is not sent
//     again; the messages after it go on. A failed publish may still have
//     reached the server (its acknowledgement was lost).
func (c *Client) Publish(ctx context.Context, channel string, data any) (*Message, error) {
	r := <-c.PublishAsync(ctx, channel, data)
	return r.Reply, r.Err
}

// PublishAsync is like Publish but does not wait: it queues the message
// before it returns, and returns a channel that receives the result once
// and is then closed. Messages go out in call order (see Publish), and
// many can be in flight at once: bound their number, for example with a
// semaphore, to keep memory in check.
func (c *Client) PublishAsync(ctx context.Context, channel string, data any) <-chan PublishResult {
	out := make(chan PublishResult, 1)
	m, err := c.publishMessage(channel, data)
	if err != nil {
		out <- PublishResult{Err: err}
		close(out)
		return out
	}
	p := &publish{m: m, channel: channel, ctx: ctx, out: out}
	// Watch ctx before queueing, so that no publish waits past its ctx.
	// Under p.mu, which fail takes, so that unwatch is set before it is
	// called.
	p.mu.Lock()
	p.unwatch = context.AfterFunc(ctx, func() { p.fail(ctx.Err()) })
	p.mu.Unlock()
	if !c.out.add(p) {
		p.fail(ErrClosed)
	}
	return out
}

func (c *Client) publishMessage(channel string, data any) (*Message, error) {
	if channel == "" {
		return nil, errors.New("client: publish: empty channel")
	}
	raw, err := encodeData(data)
	if err != nil {
		return nil, fmt.Errorf("client: publish %s: %w", channel, err)
	}
	return &Message{Channel: channel, Data: raw, ID: c.nextID()}, nil
}

// publish is one call of Publish or PublishAsync.
type publish struct {
	m       *Message // used by the sending goroutine only
	channel string
	ctx     context.Context
	out     chan PublishResult

	once sync.Once
	done atomic.Bool // the result is decided

	mu      sync.Mutex
	unwatch func() bool // stops the watch of ctx
	last    error       // the last failure of an attempt, retried
}

func (p *publish) finished() bool { return p.done.Load() }

// finish reports the result, once.
func (p *publish) finish(reply *Message, err error) {
	p.once.Do(func() {
		p.done.Store(true)
		p.mu.Lock()
		unwatch := p.unwatch
		p.mu.Unlock()
		if unwatch != nil {
			unwatch()
		}
		if err != nil {
			err = fmt.Errorf("client: publish %s: %w", p.channel, err)
		}
		p.out <- PublishResult{Reply: reply, Err: err}
		close(p.out)
	})
}

// fail ends the publish with err and the last failure, if any.
func (p *publish) fail(err error) {
	p.mu.Lock()
	last := p.last
	p.mu.Unlock()
	p.finish(nil, withCause(err, last))
}

// retry records the failure of an attempt that is to be made again.
func (p *publish) retry(err error) {
	p.mu.Lock()
	p.last = err
	p.mu.Unlock()
}

// outbox holds the publishes waiting to be sent, in call order. One
// goroutine, Client.sendPublishes, sends them.
type outbox struct {
	wake chan struct{}

	mu        sync.Mutex
	queue     []*publish // in call order; may hold finished ones, skipped
	compactAt int        // queue length at which finished publishes are dropped
	closed    bool
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1), compactAt: 64} }

// add queues p; it returns false once the outbox is closed.
func (o *outbox) add(p *publish) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	if len(o.queue) >= o.compactAt {
		// Publishes whose ctx ended while the client was disconnected
		// would otherwise pile up.
		o.queue = slices.DeleteFunc(o.queue, (*publish).finished)
		o.compactAt = max(64, 2*len(o.queue))
	}
	o.queue = append(o.queue, p)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return true
}

// take removes up to n unfinished publishes from the head of the queue.
func (o *outbox) take(n int) []*publish {
	o.mu.Lock()
	defer o.mu.Unlock()
	var batch []*publish
	i := 0
	for ; i < len(o.queue) && len(batch) < n; i++ {
		if p := o.queue[i]; !p.finished() {
			batch = append(batch, p)
		}
	}
	clear(o.queue[:i])
	o.queue = o.queue[i:]
	if len(o.queue) == 0 {
		o.queue = nil
	}
	return batch
}

// putBack returns publishes to the head of the queue, before those queued
// since they were taken.
func (o *outbox) putBack(ps []*publish) {
	o.mu.Lock()
	o.queue = append(slices.Clip(ps), o.queue...)
	o.mu.Unlock()
}

// drain removes every publish from the queue; with closing, the outbox
// takes no more.
func (o *outbox) drain(closing bool) []*publish {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = o.closed || closing
	q := o.queue
	o.queue = nil
	return q
}

// sendPublishes is the goroutine that sends the publishes, in call order,
// a batch at a time: once the client is connected, it sends every publish
// waiting (up to maxInFlight), waits for their replies in order, puts those
// to be sent again back at the head of the queue, and starts again.
func (c *Client) sendPublishes() {
	defer c.wg.Done()
	fails := 0 // consecutive batches with failures, for the backoff
	for {
		select {
		case <-c.out.wake:
		case <-c.ctx.Done():
			c.closeOutbox()
			return
		}
		for {
			sess, err := c.waitConnected(c.ctx)
			if c.ctx.Err() != nil || errors.Is(err, ErrClosed) {
				c.closeOutbox()
				return
			}
			if err != nil { // the server advised the client to stop
				for _, p := range c.out.drain(false) {
					p.fail(err)
				}
				break
			}
			batch := c.out.take(maxInFlight)
			if len(batch) == 0 {
				break
			}
			again := c.sendBatch(sess, batch)
			if len(again) == 0 {
				fails = 0
				continue
			}
			c.out.putBack(again)
			fails++
			if !c.retryPause(c.ctx, fails) {
				c.closeOutbox()
				return
			}
		}
	}
}

// closeOutbox fails every publish still queued with ErrClosed.
func (c *Client) closeOutbox() {
	for _, p := range c.out.drain(true) {
		p.fail(ErrClosed)
	}
}

// sendBatch sends batch on sess, in order, and waits for the replies. It
// returns, in order, the publishes to send again: those that failed for
// want of a connection or of a session the server knows.
func (c *Client) sendBatch(sess session, batch []*publish) []*publish {
	type call struct {
		p    *publish
		pend *pending // nil when the attempt could not start
	}
	calls := make([]call, 0, len(batch))
	for _, p := range batch {
		if p.finished() {
			continue
		}
		p.m.ClientID = sess.id
		pend, err := c.start(sess.tr, p.m, false, c.opts.requestTimeout)
		switch {
		case err == nil:
			calls = append(calls, call{p, pend})
		case isTransportError(err):
			p.retry(err)
			calls = append(calls, call{p, nil})
		default:
			p.fail(err)
		}
	}
	var again []*publish
	for _, call := range calls {
		p := call.p
		if call.pend == nil {
			again = append(again, p)
			continue
		}
		reply, err := c.await(p.ctx, call.pend, c.opts.requestTimeout)
		if err == nil && !reply.Successful {
			rerr := replyError(reply)
			if rerr.unknownClient() {
				// The session ended under us; the connect loop is
				// handshaking again.
				p.retry(rerr)
				again = append(again, p)
			} else {
				p.finish(reply, rerr)
			}
			continue
		}
		switch {
		case err == nil:
			p.finish(reply, nil)
		case isTransportError(err):
			c.log.Debug("publish failed; sending it again", "channel", p.channel, "id", p.m.ID, "err", err)
			p.retry(err)
			again = append(again, p)
		case c.ctx.Err() != nil:
			p.fail(ErrClosed)
		default:
			p.fail(err) // its ctx ended
		}
	}
	return again
}
