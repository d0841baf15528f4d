package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/bayou-pubsub/bayou/bayeux/redis"
)

// redisOptions select and tune the Redis cluster engine.
type redisOptions struct {
	url            string
	namespace      string
	nodeID         string
	opTimeout      float64
	heartbeat      float64
	nodeTTL        float64
	maxFlushDelay  float64
	historyMetaTTL float64
}

func (r *redisOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&r.url, "redis", "", "Redis URL (redis://[user:password@]host:port/db, rediss:// for TLS) of a cluster of bayou nodes sharing channels and sessions; empty runs a single node in memory")
	fs.StringVar(&r.namespace, "redis-namespace", redis.DefaultNamespace, "prefix of the keys and channels used in Redis, so that several clusters can share one")
	fs.StringVar(&r.nodeID, "redis-node-id", "", "this node's name in the cluster (1-64 characters of [0-9A-Za-z_.-], unique among live nodes); empty picks a random one")
	fs.Float64Var(&r.opTimeout, "redis-op-timeout", redis.DefaultOpTimeout.Seconds(), "seconds each Redis operation may take (and the dial timeout)")
	fs.Float64Var(&r.heartbeat, "redis-heartbeat", redis.DefaultHeartbeatInterval.Seconds(), "seconds between two heartbeats of the node")
	fs.Float64Var(&r.nodeTTL, "redis-node-ttl", redis.DefaultNodeTTL.Seconds(), "seconds a node is considered alive after its last heartbeat; must exceed --redis-heartbeat")
	fs.Float64Var(&r.maxFlushDelay, "redis-max-flush-delay", 0, "seconds the Redis client may wait to gather commands into one write (e.g. 0.00005); saves CPU under heavy load")
	fs.Float64Var(&r.historyMetaTTL, "redis-history-meta-ttl", redis.DefaultHistoryMetaTTL.Seconds(), "seconds a channel's history position outlives its latest publication")
}

func (r *redisOptions) validate() error {
	for _, v := range []struct {
		name  string
		value float64
	}{
		{"redis-op-timeout", r.opTimeout}, {"redis-heartbeat", r.heartbeat}, {"redis-node-ttl", r.nodeTTL},
		{"redis-history-meta-ttl", r.historyMetaTTL},
	} {
		if v.value <= 0 {
			return fmt.Errorf("--%s must be positive, got %v", v.name, v.value)
		}
	}
	if r.maxFlushDelay < 0 {
		return fmt.Errorf("--redis-max-flush-delay must not be negative, got %v", r.maxFlushDelay)
	}
	if r.nodeTTL <= r.heartbeat {
		return fmt.Errorf("--redis-node-ttl (%v) must exceed --redis-heartbeat (%v)", r.nodeTTL, r.heartbeat)
	}
	return nil
}

// config returns the engine's configuration.
func (r *redisOptions) config(log *slog.Logger) redis.Config {
	return redis.Config{URL: r.url, Namespace: r.namespace, NodeID: r.nodeID, Logger: log,
		OpTimeout: seconds(r.opTimeout), HeartbeatInterval: seconds(r.heartbeat), NodeTTL: seconds(r.nodeTTL),
		MaxFlushDelay: seconds(r.maxFlushDelay), HistoryMetaTTL: seconds(r.historyMetaTTL)}
}

// engine connects to Redis, or returns nil without --redis. The log names
// the URL without its password.
func (r *redisOptions) engine(ctx context.Context, log *slog.Logger) (*redis.Engine, error) {
	if r.url == "" {
		return nil, nil
	}
	shown := redactURL(r.url)
	if _, err := url.Parse(r.url); err != nil {
		return nil, errors.New("--redis: the URL does not parse") // the parser's error would show it whole
	}
	e, err := redis.New(ctx, r.config(log))
	if err != nil {
		return nil, fmt.Errorf("--redis %s: %w", shown, err)
	}
	log.Info("cluster engine on Redis", "url", shown, "node", e.NodeID())
	return e, nil
}
