package redis

import (
	"context"
	"fmt"

	"github.com/bayou-pubsub/bayou/bayeux"
)

var _ bayeux.Pinger = (*Engine)(nil)

// Ping reports whether the engine can serve: nil when it is running, its
// pub/sub connection is up and Redis answers a PING within ctx (and
// OpTimeout); ErrUnavailable (wrapped) while the pub/sub connection is
// being re-established. It makes the engine a bayeux.Pinger, which
// bayeux.Server.Ready asks.
func (e *Engine) Ping(ctx context.Context) error {
	if err := e.running(); err != nil {
		return err
	}
	if !e.listening() {
		return fmt.Errorf("redis: ping: %w", ErrUnavailable)
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	if err := e.client.Do(ctx, e.client.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// listening reports whether the pub/sub connection is up.
func (e *Engine) listening() bool {
	e.sub.mu.Lock()
	defer e.sub.mu.Unlock()
	return e.sub.conn != nil
}
