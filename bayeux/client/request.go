package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// pending is one attempt at a request, waiting for its reply.
type pending struct {
	id  string
	via transport
	ch  chan result // receives exactly one result
}

type result struct {
	msg *Message
	err error
}

// start runs the outgoing extensions on a copy of m, registers the wait for
// its reply and queues it on t. alone and timeout are passed to t (see
// outgoing).
func (c *Client) start(t transport, m *Message, alone bool, timeout time.Duration) (*pending, error) {
	if t == nil {
		return nil, &transportError{errTransportClosed}
	}
	out := m.clone()
	for _, e := range c.opts.extensions {
		if e.Outgoing != nil {
			e.Outgoing(out)
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding %s message: %w", m.Channel, err)
	}
	p := &pending{id: out.ID, via: t, ch: make(chan result, 1)}
	c.pendMu.Lock()
	c.pending[p.id] = p
	c.pendMu.Unlock()
	t.send(outgoing{p: p, data: data, alone: alone, timeout: timeout})
	return p, nil
}

// await waits for the reply to p. A reply that does not come within
// timeout, or that its transport cannot deliver, is a *transportError.
func (c *Client) await(ctx context.Context, p *pending, timeout time.Duration) (*Message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-p.ch:
		if r.err != nil {
			return nil, &transportError{r.err}
		}
		return r.msg, nil
	case <-t.C:
		c.forget(p)
		return nil, &transportError{fmt.Errorf("%w within %v", errNoReply, timeout)}
	case <-ctx.Done():
		c.forget(p)
		return nil, ctx.Err()
	case <-c.ctx.Done():
		c.forget(p)
		return nil, ErrClosed
	}
}

// forget stops waiting for the reply to p.
func (c *Client) forget(p *pending) {
	c.pendMu.Lock()
	if c.pending[p.id] == p {
		delete(c.pending, p.id)
	}
	c.pendMu.Unlock()
}

// fail ends the attempt p with err, unless it has been answered or
// abandoned already; it reports whether it did.
func (c *Client) fail(p *pending, err error) bool {
	c.pendMu.Lock()
	if c.pending[p.id] != p {
		c.pendMu.Unlock()
		return false
	}
	delete(c.pending, p.id)
	c.pendMu.Unlock()
	p.ch <- result{err: err}
	return true
}

// down fails every attempt made on transport t, which has failed.
func (c *Client) down(t transport, err error) {
	var failed []*pending
	c.pendMu.Lock()
	for id, p := range c.pending {
		if p.via == t {
			delete(c.pending, id)
			failed = append(failed, p)
		}
	}
	c.pendMu.Unlock()
	for _, p := range failed {
		p.ch <- result{err: err}
	}
}

// receive handles the messages of a response or a frame: deliveries go to
// the handlers, replies to the requests waiting for them.
func (c *Client) receive(msgs []*Message) {
	for _, m := range msgs {
		for _, e := range c.opts.extensions {
			if e.Incoming != nil {
				e.Incoming(m)
			}
		}
		if m.Data != nil && !isMeta(m.Channel) {
			// A delivery. Advice and successful flags in it come from
			// whoever published it, not from the server: ignore them.
			if !c.pos.admit(m, func() { c.disp.push(func() { c.dispatch(m) }) }) {
				c.log.Debug("dropping a message delivered already", "channel", m.Channel, "replayId", m.Ext["replayId"])
			}
			continue
		}
		if m.Advice != nil {
			c.mergeAdvice(m.Advice)
		}
		c.pendMu.Lock()
		p := c.pending[m.ID]
		if p != nil {
			delete(c.pending, m.ID)
		}
		c.pendMu.Unlock()
		if p == nil {
			c.log.Debug("ignoring reply to no pending request", "channel", m.Channel, "id", m.ID)
			continue
		}
		p.ch <- result{msg: m}
	}
}

// request sends m on the current session and returns the successful reply.
// Transport failures, and replies saying the session is unknown, are
// retried (with the same id) on the restored connection until ctx ends. An
// unsuccessful reply is returned with an *Error.
func (c *Client) request(ctx context.Context, m *Message) (*Message, error) {
	var lastErr error
	for attempt := 1; ; attempt++ {
		sess, err := c.waitConnected(ctx)
		if err != nil {
			return nil, withCause(err, lastErr)
		}
		m.ClientID = sess.id
		p, err := c.start(sess.tr, m, false, c.opts.requestTimeout)
		if err != nil {
			return nil, err
		}
		reply, err := c.await(ctx, p, c.opts.requestTimeout)
		switch {
		case err == nil && reply.Successful:
			return reply, nil
		case err == nil:
			rerr := replyError(reply)
			if !rerr.unknownClient() {
				return reply, rerr
			}
			// The session ended under us; the connect loop is handshaking
			// again.
			err = rerr
		case !isTransportError(err):
			return nil, withCause(err, lastErr)
		}
		lastErr = err
		c.log.Debug("request failed; retrying", "channel", m.Channel, "id", m.ID, "attempt", attempt, "err", err)
		if !c.retryPause(ctx, attempt) {
			if c.ctx.Err() != nil {
				return nil, withCause(ErrClosed, lastErr)
			}
			return nil, withCause(ctx.Err(), lastErr)
		}
	}
}

// withCause adds the last failure to an error that ended a retry loop.
func withCause(err, last error) error {
	if last == nil || errors.Is(err, last) {
		return err
	}
	return fmt.Errorf("%w (last failure: %w)", err, last)
}

// advice is the client's current connection advice.
type advice struct {
	reconnect string
	interval  time.Duration
	timeout   time.Duration
}

// defaultAdvice is the advice before the server's first, faye's defaults.
func defaultAdvice() advice {
	return advice{reconnect: "retry", interval: 0, timeout: 60 * time.Second}
}

// mergeAdvice merges a reply's advice into the client's: fields present
// replace the current ones, absent ones are kept (faye merges the same way).
func (c *Client) mergeAdvice(a *Advice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.Reconnect != "" {
		c.adv.reconnect = a.Reconnect
	}
	if a.Interval != nil {
		c.adv.interval = max(time.Duration(*a.Interval)*time.Millisecond, 0)
	}
	if a.Timeout != nil {
		c.adv.timeout = max(time.Duration(*a.Timeout)*time.Millisecond, 0)
	}
}

func (c *Client) advice() advice {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adv
}

// backoff returns the pause before retry number n (from 1): the minimum
// doubled n-1 times, capped at the maximum, minus a random part of up to
// half (jitter).
func (c *Client) backoff(n int) time.Duration {
	return backoffDelay(c.opts.backoffMin, c.opts.backoffMax, n)
}

func backoffDelay(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d - rand.N(d/2+1)
}
