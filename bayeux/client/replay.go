package client

import (
	"encoding/json"
	"math"
	"sync"

	"github.com/bayou-pubsub/bayou/channels"
)

// Position is a message's place in the history of its channel, as a Bayou
// server with history for the channel sends it in the message's ext
// ("replayId" and "epoch"). ReplayID grows by one with each publication on
// the channel; Epoch names the history the ids count in and changes when
// the server lost that history, so ids are compared only within an epoch.
type Position struct {
	// ReplayID is the publication's offset in its channel's history.
	ReplayID uint64
	// Epoch identifies the history; empty if the server sent none.
	Epoch string
}

// Position returns the position that a delivered message carries in its
// ext (replayId and epoch), and whether it carries one: only messages on
// channels the server keeps history for do.
func (m *Message) Position() (Position, bool) {
	id, ok := extUint(m.Ext["replayId"])
	if !ok {
		return Position{}, false
	}
	epoch, _ := m.Ext["epoch"].(string)
	return Position{ReplayID: id, Epoch: epoch}, true
}

// extUint returns v as a non-negative integer: ext values decoded from
// JSON are float64, and extensions may set other number types.
func extUint(v any) (uint64, bool) {
	switch n := v.(type) {
	case float64:
		if n >= 0 && n <= 1<<53 && n == math.Trunc(n) {
			return uint64(n), true
		}
	case int:
		if n >= 0 {
			return uint64(n), true
		}
	case int64:
		if n >= 0 {
			return uint64(n), true
		}
	case uint64:
		return n, true
	case json.Number:
		if i, err := n.Int64(); err == nil && i >= 0 {
			return uint64(i), true
		}
	}
	return 0, false
}

// A SubscribeOption changes how Subscribe subscribes.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	replay replayFrom
	set    bool
}

// ReplayAll makes Subscribe first deliver every message the server still
// retains for the channel, then the new ones. It needs a channel name (not
// a pattern) and a server that keeps the channel's history; other servers
// deliver only new messages.
func ReplayAll() SubscribeOption {
	return func(o *subscribeOptions) { o.replay, o.set = replayFrom{kind: replayAll}, true }
}

// ReplayAfter makes Subscribe first deliver the messages published on the
// channel after position p (typically the Position of the last message an
// earlier run of the application processed), then the new ones. With an
// empty Epoch, p.ReplayID is taken in whatever history the server has. If
// the server no longer has them, the subscription is made without replay
// and the loss is reported to the function set with WithGapFunc (Bayou
// also refuses a position on a channel it keeps no history for; servers
// without replay ignore the request). It needs a channel name, not a
// pattern.
func ReplayAfter(p Position) SubscribeOption {
	return func(o *subscribeOptions) { o.replay, o.set = replayFrom{kind: replayAfter, pos: p}, true }
}

// Gap reports that messages of a channel were missed and could not be
// replayed: the server no longer retained them (or its history of the
// channel was lost), so the application may need to reload its state. The
// subscription stays active and receives the messages that follow.
type Gap struct {
	// Channel is the channel with missing messages.
	Channel string
	// After is the position the client asked to resume after.
	After Position
	// Resumed is where delivery continues (messages after it are
	// delivered), when the server said; zero otherwise.
	Resumed Position
	// Err is the server's refusal of the replay (an *Error, code 400), or
	// nil when the server subscribed without replaying.
	Err error
}

const (
	replayNew   = iota // only new messages (-1 on the wire)
	replayAll          // everything retained (-2)
	replayAfter        // after pos
)

// replayFrom is the replay a subscribe asks for.
type replayFrom struct {
	kind int
	pos  Position
}

// wire returns the value of ext.replay[channel] asking for r.
func (r replayFrom) wire() any {
	switch r.kind {
	case replayAll:
		return -2
	case replayAfter:
		if r.pos.Epoch == "" {
			return r.pos.ReplayID
		}
		return map[string]any{"replayId": r.pos.ReplayID, "epoch": r.pos.Epoch}
	}
	return -1
}

// positions tracks, per channel, the position of the last message the
// client received with one, to drop the copies of messages it has already
// delivered and to ask for what it missed when it subscribes again.
type positions struct {
	mu   sync.Mutex
	last map[string]Position
}

func newPositions() *positions { return &positions{last: make(map[string]Position)} }

// admit calls push for a delivery m unless the client has delivered it
// already: a message with a position in the same epoch as the last one of
// its channel and no greater replay id is a copy (sent again after a cut,
// or replayed). It records the position of a new message. Deliveries that
// several goroutines admit at once are pushed in the order admitted.
func (p *positions) admit(m *Message, push func()) bool {
	pos, ok := m.Position()
	if !ok {
		push()
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last, seen := p.last[m.Channel]
	if seen && last.Epoch == pos.Epoch && pos.ReplayID <= last.ReplayID {
		return false
	}
	p.last[m.Channel] = pos
	push()
	return true
}

func (p *positions) get(channel string) (Position, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pos, ok := p.last[channel]
	return pos, ok
}

// raise records pos for channel unless the client already has a later
// position in the same epoch.
func (p *positions) raise(channel string, pos Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if last, ok := p.last[channel]; ok && last.Epoch == pos.Epoch && last.ReplayID >= pos.ReplayID {
		return
	}
	p.last[channel] = pos
}

// restart records pos for channel, where the server restarted it after
// failing to replay from asked: unless messages received meanwhile raised
// the position past asked, pos replaces it even if lower (the server's
// history went back, and its new messages must not look like copies).
func (p *positions) restart(channel string, asked, pos Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if last, ok := p.last[channel]; ok && last != asked && last.Epoch == pos.Epoch && last.ReplayID >= pos.ReplayID {
		return
	}
	p.last[channel] = pos
}

func (p *positions) forget(channel string) {
	p.mu.Lock()
	delete(p.last, channel)
	p.mu.Unlock()
}

// forgetPositionsLocked forgets the positions of the channels that
// removed, a pattern just unsubscribed, matched and that no other
// subscription matches. It is called with c.subMu held.
func (c *Client) forgetPositionsLocked(removed string) {
	c.pos.mu.Lock()
	defer c.pos.mu.Unlock()
	for ch := range c.pos.last {
		if channels.Match(removed, ch) && !c.subscribedLocked(ch) {
			delete(c.pos.last, ch)
		}
	}
}

// subscribedLocked reports whether a subscription of the client matches
// channel. It is called with c.subMu held.
func (c *Client) subscribedLocked(channel string) bool {
	for _, pattern := range channels.Expand(channel) {
		if _, ok := c.subs[pattern]; ok {
			return true
		}
	}
	return false
}

// replayFor returns the replay to ask for when subscribing e: after the
// last position known for its channel, or else the entry's own request.
// ok is false for patterns, to which replay does not apply.
func (c *Client) replayFor(e *subEntry) (r replayFrom, ok bool) {
	if channels.IsWildcard(e.pattern) {
		return replayFrom{}, false
	}
	if pos, known := c.pos.get(e.pattern); known {
		return replayFrom{kind: replayAfter, pos: pos}, true
	}
	c.subMu.Lock()
	defer c.subMu.Unlock()
	return e.replay, true
}

// subscribeMessage returns a /meta/subscribe of e, asking for the replay
// the client needs, which it also returns.
func (c *Client) subscribeMessage(e *subEntry, clientID string) (*Message, replayFrom) {
	m := &Message{Channel: channels.MetaSubscribe, ID: c.nextID(), ClientID: clientID, Subscription: e.pattern}
	r, ok := c.replayFor(e)
	if ok {
		m.SetExt("replay", map[string]any{e.pattern: r.wire()})
	}
	return m, r
}

// replayed handles the position in a successful subscribe reply:
// ext.replay[channel] = {replayId, epoch, recovered}. A subscription made
// for new messages only starts at the position; one whose replay the
// server could not make restarts there, and the gap is reported. It takes
// no lock but c.pos's, so it may be called with c.subMu held.
func (c *Client) replayed(e *subEntry, asked replayFrom, reply *Message) {
	replay, _ := reply.Ext["replay"].(map[string]any)
	info, _ := replay[e.pattern].(map[string]any)
	id, ok := extUint(info["replayId"])
	if !ok {
		return
	}
	epoch, _ := info["epoch"].(string)
	pos := Position{ReplayID: id, Epoch: epoch}
	if recovered, _ := info["recovered"].(bool); recovered || info["recovered"] == nil {
		if asked.kind == replayNew {
			c.pos.raise(e.pattern, pos)
		}
		return
	}
	c.pos.restart(e.pattern, asked.pos, pos)
	if asked.kind == replayAfter {
		c.reportGap(Gap{Channel: e.pattern, After: asked.pos, Resumed: pos})
	}
}

// replayRefused reports whether rerr is the server's refusal of the replay
// asked for e (a 400 error naming the channel). If so it reports the gap
// and makes the entry ask for new messages only from now on.
func (c *Client) replayRefused(e *subEntry, asked replayFrom, rerr *Error) bool {
	if asked.kind != replayAfter || rerr.Code != CodeBadRequest || len(rerr.Args) == 0 || rerr.Args[0] != e.pattern {
		return false
	}
	c.subMu.Lock()
	e.replay = replayFrom{kind: replayNew}
	c.subMu.Unlock()
	c.pos.forget(e.pattern)
	c.reportGap(Gap{Channel: e.pattern, After: asked.pos, Err: rerr})
	return true
}

// reportGap logs g and passes it to the gap function, on the goroutine
// that runs handlers.
func (c *Client) reportGap(g Gap) {
	if g.Err != nil {
		c.log.Warn("bayeux messages lost: replay refused", "channel", g.Channel,
			"after", g.After.ReplayID, "epoch", g.After.Epoch, "err", g.Err)
	} else {
		c.log.Warn("bayeux messages lost: not recovered", "channel", g.Channel,
			"after", g.After.ReplayID, "epoch", g.After.Epoch, "resumedAfter", g.Resumed.ReplayID, "resumedEpoch", g.Resumed.Epoch)
	}
	if fn := c.opts.gapFunc; fn != nil {
		c.disp.push(func() { fn(g) })
	}
}
