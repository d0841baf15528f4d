package bayeux

import (
	"context"
	"errors"
	"sync"
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
	// p.Channel, this one included. An error means the message was not
	// published.
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
}

// ErrEngineClosed is returned by an engine that is not started or closed.
var ErrEngineClosed = errors.New("bayeux: engine closed")

// memoryEngine is the single-node Engine: a publish is delivered at once, on
// the publisher's goroutine, which keeps each publisher's messages in order.
type memoryEngine struct {
	mu      sync.RWMutex
	deliver func(*Publication)
}

// NewMemoryEngine returns the Engine of a single node: publishes go straight
// to the node's own subscribers.
func NewMemoryEngine() Engine { return &memoryEngine{} }

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
	deliver(p)
	return nil
}

// Subscribe needs no bookkeeping: the node's own index already knows every
// local subscription, and there are no other nodes to tell.
func (e *memoryEngine) Subscribe(context.Context, string) error { return nil }

// Unsubscribe: see Subscribe.
func (e *memoryEngine) Unsubscribe(context.Context, string) error { return nil }

func (e *memoryEngine) Close() error {
	e.mu.Lock()
	e.deliver = nil
	e.mu.Unlock()
	return nil
}
