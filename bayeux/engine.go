package bayeux

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Engine is the seam between one server node and many. A node keeps its own
// sessions, subscriptions and connections; the engine carries what must reach
// other nodes: publishes, and which channel patterns this node listens to.
//
// The in-memory engine (NewMemoryEngine) serves a single node. An engine for
// many nodes (on Redis, say) delivers a publish to every node that listens to
// a pattern matching its channel, each node then fanning out to its own
// sessions, so the cost of a publish in the engine does not grow with the
// number of subscribers.
type Engine interface {
	// Start begins delivering publications to deliver. deliver is safe for
	// concurrent use; the engine must keep the messages of one publisher in
	// the order they were published. The engine stops delivering when ctx is
	// done.
	Start(ctx context.Context, deliver func(*Publication)) error

	// Publish sends p to every node listening to a pattern that matches
	// p.Channel, this one included, and returns once the engine accepted
	// it. An error means the message may not have been published (with a
	// networked store, a timeout can hide a late success): the publisher is
	// told it failed.
	Publish(ctx context.Context, p *Publication) error

	// Subscribe tells the engine that this node has sessions subscribed to
	// pattern (a channel name or a wildcard pattern). It is called when the
	// first local session subscribes.
	Subscribe(ctx context.Context, pattern string) error

	// Unsubscribe is called when the last local session leaves pattern.
	Unsubscribe(ctx context.Context, pattern string) error

	// Close releases the engine's resources.
	Close() error
}

// Publication is a published message on its way to subscribers.
type Publication struct {
	// Channel is the channel it was published to.
	Channel string
	// Message is the encoded message subscribers receive, shared by all of
	// them: it must not be modified.
	Message []byte
	// Exclude is a clientId that must not receive it (a publisher on a
	// channel where senders are excluded); empty for none.
	Exclude string
	// Audience, when set, restricts the sessions that receive it (see
	// Server.PublishTo): the engine carries it to every node, whose
	// fan-out applies it. Such a publication is never kept in history
	// (its History is nil). Nil for every subscriber.
	Audience *Audience
	// History, when set on a publish, asks the engine to keep the
	// publication in its channel's history under this rule and to give it
	// a Position (the engine must implement Historian). It is nil on
	// channels without history and on deliveries.
	History *HistoryRule
	// Position is the publication's place in its channel's history, set
	// by the engine on delivery (and in History's results); zero on
	// channels without history. Message does not carry it: the server adds
	// it to the copy its subscribers receive.
	Position Position
}

// ErrEngineClosed is returned by an engine that is not started or closed.
var ErrEngineClosed = errors.New("bayeux: engine closed")

// memoryEngine is the single-node Engine: a publish is delivered at once, on
// the publisher's goroutine, which keeps each publisher's messages in order.
type memoryEngine struct {
	mu      sync.RWMutex
	deliver func(*Publication)
	hist    *memHistory
}

// defaultHistoryBytes is Config.HistoryMaxBytes's default.
const defaultHistoryBytes = 64 << 20

// NewMemoryEngine returns the Engine of a single node: publishes go straight
// to the node's own subscribers. It keeps channel history (it is a
// Historian) in memory, within Config.HistoryMaxBytes of the server it is
// given to.
func NewMemoryEngine() Engine { return &memoryEngine{hist: newMemHistory(defaultHistoryBytes)} }

func (e *memoryEngine) Start(ctx context.Context, deliver func(*Publication)) error {
	e.mu.Lock()
	e.deliver = deliver
	e.mu.Unlock()
	context.AfterFunc(ctx, func() { _ = e.Close() })
	return nil
}

func (e *memoryEngine) Publish(_ context.Context, p *Publication) error {
	e.mu.RLock()
	deliver := e.deliver
	e.mu.RUnlock()
	if deliver == nil {
		return ErrEngineClosed
	}
	if p.History != nil {
		e.hist.publish(p, deliver)
		return nil
	}
	deliver(p)
	return nil
}

// Subscribe needs no bookkeeping: the node's own index already knows every
// local subscription, and there are no other nodes to tell.
func (e *memoryEngine) Subscribe(context.Context, string) error { return nil }

// Unsubscribe: see Subscribe.
func (e *memoryEngine) Unsubscribe(context.Context, string) error { return nil }

// Ping reports ErrEngineClosed once the engine is closed: there is
// nothing else to reach.
func (e *memoryEngine) Ping(context.Context) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.deliver == nil {
		return ErrEngineClosed
	}
	return nil
}

func (e *memoryEngine) Close() error {
	e.mu.Lock()
	e.deliver = nil
	e.mu.Unlock()
	return nil
}

// A Cluster is an Engine that spans several nodes. Besides publishes, it
// records which node owns each session, carries messages between nodes so
// that a node can forward a request to the session's owner (clients need no
// sticky load balancing), and sums counts across nodes.
//
// Session ownership: the node that creates a session owns it; its
// subscriptions, queue and held connect live there. Another node that gets
// a request for the session forwards it to the owner with Send.
type Cluster interface {
	Engine

	// NodeID identifies this node among the cluster's nodes.
	NodeID() string

	// ClaimSession records that this node owns session id, for ttl; the
	// owner calls it again to extend the claim. The cluster re-records the
	// claims it holds when its store was reset (a restarted Redis, say).
	ClaimSession(ctx context.Context, id string, ttl time.Duration) error
	// ReleaseSession forgets this node's claim on session id.
	ReleaseSession(ctx context.Context, id string) error
	// SessionOwner returns the live node that owns session id, or "" when
	// no live node does.
	SessionOwner(ctx context.Context, id string) (string, error)

	// Send delivers msg to the node's handler (see HandleNodeMessages). An
	// error means it was not sent; one wrapping ErrNodeGone means the node
	// is dead.
	Send(ctx context.Context, node string, msg []byte) error
	// HandleNodeMessages sets the function called, one at a time in
	// arrival order, with each message sent to this node. The server calls
	// it once, before Start.
	HandleNodeMessages(h func(msg []byte))

	// ReportCounts publishes this node's number of sessions and of
	// subscribers per pattern, replacing its previous report.
	ReportCounts(ctx context.Context, sessions int, subscribers map[string]int) error
	// Counts returns the sums of the live nodes' latest reports.
	Counts(ctx context.Context) (sessions int, subscribers map[string]int, err error)
}

// A BatchClaimer is a Cluster that extends many session claims in one
// call: the server renews its sessions' claims with it when the engine is
// one, instead of calling ClaimSession for each.
type BatchClaimer interface {
	// ClaimSessions extends this node's claims on sessions ids (made by
	// ClaimSession) for ttl.
	ClaimSessions(ctx context.Context, ids []string, ttl time.Duration) error
}

// A NodeLister is a Cluster that can list its live nodes. Server.SessionsOf
// needs it to ask every node for its sessions.
type NodeLister interface {
	// LiveNodes returns the ids of the cluster's live nodes, this one
	// included.
	LiveNodes(ctx context.Context) ([]string, error)
}

// ErrNodeGone is wrapped by the error of a Cluster's Send when the node is
// dead, not merely out of reach for a moment. Its sessions died with it, and
// SessionOwner no longer names it: the server answers the requests it would
// have forwarded there itself, as those of unknown clients.
var ErrNodeGone = errors.New("bayeux: node gone")
