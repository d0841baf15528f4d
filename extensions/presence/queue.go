package presence

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// key names a unit of pending work: a session's presence on a channel, or
// a "members" event owed to a new subscriber of the channel's companion.
type key struct {
	channel, clientID string
	snapshot          bool
}

// op is what is wanted for a key: present (join, with its member) or not.
// Snapshot keys carry no op.
type op struct {
	join   bool
	member []byte
}

// queue holds the work the events ask for, one entry per key: a later
// want replaces an earlier one not yet done (a join and a leave of one
// session before the worker ran cancel out in the store, and a retry never
// overtakes a newer want). It is bounded by the number of subscriptions of
// this node's sessions.
type queue struct {
	mu    sync.Mutex
	order []key
	want  map[key]op
	wake  chan struct{}
}

func (q *queue) init() {
	q.want = make(map[key]op)
	q.wake = make(chan struct{}, 1)
}

// put records the want for k and wakes the worker.
func (q *queue) put(k key, o op) {
	q.mu.Lock()
	if _, ok := q.want[k]; !ok {
		q.order = append(q.order, k)
	}
	q.want[k] = o
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// retry puts back a want that failed, unless a newer one came meanwhile.
func (q *queue) retry(k key, o op) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.want[k]; !ok {
		q.order = append(q.order, k)
		q.want[k] = o
	}
}

// take removes and returns the pending work, in the order it came.
func (q *queue) take() ([]key, []op) {
	q.mu.Lock()
	defer q.mu.Unlock()
	keys := q.order
	ops := make([]op, len(keys))
	for i, k := range keys {
		ops[i] = q.want[k]
		delete(q.want, k)
	}
	q.order = nil
	return keys, ops
}

// run is the worker: it applies the wants to the store and publishes joins
// and leaves, sends "members" events, and sweeps the members of dead nodes.
// The server runs it (Server.Go) until it shuts down.
func (p *Presence) run(ctx context.Context) {
	t := time.NewTicker(p.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.queue.wake:
		case <-t.C:
			p.sweep(ctx)
		}
		keys, ops := p.queue.take()
		for i, k := range keys {
			if ctx.Err() != nil {
				return
			}
			if !p.apply(ctx, k, ops[i]) {
				p.queue.retry(k, ops[i])
			}
		}
	}
}

// apply does the work of one key and reports whether it is done (false:
// the store failed, retry later).
func (p *Presence) apply(ctx context.Context, k key, o op) bool {
	switch {
	case k.snapshot:
		members, err := p.Members(ctx, k.channel)
		if err != nil {
			p.log.Warn("presence: reading members", "channel", k.channel, "err", err)
			return false
		}
		if members == nil {
			members = []Member{}
		}
		_ = p.srv.Deliver(ctx, k.clientID, p.Companion(k.channel), membersEvent{Action: "members", Channel: k.channel, Members: members})
	case o.join:
		if err := p.store.PresenceAdd(ctx, k.channel, k.clientID, o.member); err != nil {
			p.log.Warn("presence: recording a join", "channel", k.channel, "clientId", k.clientID, "err", err)
			return false
		}
		p.announce(ctx, "join", k.channel, o.member)
	default:
		member, err := p.store.PresenceRemove(ctx, k.channel, k.clientID)
		if err != nil {
			p.log.Warn("presence: recording a leave", "channel", k.channel, "clientId", k.clientID, "err", err)
			return false
		}
		if member != nil {
			p.announce(ctx, "leave", k.channel, member)
		}
	}
	return true
}

// membersEvent is the "members" Event, whose list is never omitted.
type membersEvent struct {
	Action  string   `json:"action"`
	Channel string   `json:"channel"`
	Members []Member `json:"members"`
}

// announce publishes a join or leave on the companion of channel.
func (p *Presence) announce(ctx context.Context, action, channel string, member []byte) {
	var m Member
	if err := json.Unmarshal(member, &m); err != nil {
		return
	}
	if err := p.srv.Publish(ctx, p.Companion(channel), Event{Action: action, Channel: channel, Member: &m}); err != nil {
		p.log.Warn("presence: publishing a "+action, "channel", channel, "err", err)
	}
}

// sweep announces as gone the members of nodes that died.
func (p *Presence) sweep(ctx context.Context) {
	err := p.store.PresenceSweep(ctx, func(channel, _ string, member []byte) {
		p.announce(ctx, "leave", channel, member)
	})
	if err != nil {
		p.log.Warn("presence: sweeping the members of dead nodes", "err", err)
	}
}
