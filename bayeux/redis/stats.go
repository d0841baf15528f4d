package redis

import (
	"context"
	"sync/atomic"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
)

var _ bayeux.EngineStatser = (*Engine)(nil)

// engineCounters count the engine's work for EngineStats.
type engineCounters struct {
	roundTrips atomic.Uint64
	commands   atomic.Uint64
	errors     atomic.Uint64
	reconnects atomic.Uint64
	nodes      atomic.Int64 // live nodes at the last heartbeat
}

// done counts one round trip whose commands gave results.
func (c *engineCounters) done(results ...rueidis.RedisResult) {
	c.roundTrips.Add(1)
	c.commands.Add(uint64(len(results)))
	failed := 0
	for _, r := range results {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			failed++
		}
	}
	if failed > 0 {
		c.errors.Add(uint64(failed))
	}
}

// EngineStats returns the engine's figures: its round trips to Redis and
// their commands and failures, the reconnections of its pub/sub
// connection, and the live nodes it saw at its last heartbeat. It makes
// the Engine a bayeux.EngineStatser, so that bayeux.Server.Stats (and so
// the bayeux/metrics package) reports them.
func (e *Engine) EngineStats() bayeux.EngineStats {
	c := &e.counters
	return bayeux.EngineStats{
		RoundTrips: c.roundTrips.Load(),
		Commands:   c.commands.Load(),
		Errors:     c.errors.Load(),
		Reconnects: c.reconnects.Load(),
		Nodes:      int(c.nodes.Load()),
	}
}

// countingClient is the engine's Redis client, counting its round trips.
// The engine calls Do, DoMulti and Dedicate only.
type countingClient struct {
	rueidis.Client
	c *engineCounters
}

func (k countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	r := k.Client.Do(ctx, cmd)
	k.c.done(r)
	return r
}

func (k countingClient) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	rs := k.Client.DoMulti(ctx, multi...)
	k.c.done(rs...)
	return rs
}

func (k countingClient) Dedicate() (rueidis.DedicatedClient, func()) {
	dc, cancel := k.Client.Dedicate()
	return countingDedicated{DedicatedClient: dc, c: k.c}, cancel
}

// countingDedicated is a dedicated connection (the pub/sub one) counting
// its round trips.
type countingDedicated struct {
	rueidis.DedicatedClient
	c *engineCounters
}

func (k countingDedicated) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	r := k.DedicatedClient.Do(ctx, cmd)
	k.c.done(r)
	return r
}

func (k countingDedicated) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	rs := k.DedicatedClient.DoMulti(ctx, multi...)
	k.c.done(rs...)
	return rs
}
