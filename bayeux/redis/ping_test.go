package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestReadyFollowsRedis checks that a server on the Redis engine is ready
// while Redis answers, not ready while it is down, ready again once it is
// back, and not ready once draining.
func TestReadyFollowsRedis(t *testing.T) {
	rs := startRedis(t)
	node := startCluster(t, rs, 1, 2*time.Second)[0]
	ready := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return node.srv.Ready(ctx)
	}
	if err := ready(); err != nil {
		t.Fatalf("Ready with Redis up: %v", err)
	}
	rs.kill()
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ready() != nil }, "not ready with Redis down")
	if err := ready(); errors.Is(err, bayeux.ErrDraining) {
		t.Fatalf("Ready with Redis down: %v, want an engine error", err)
	}
	rs.start()
	bayeuxtest.Eventually(t, 10*time.Second, func() bool { return ready() == nil }, "ready again once Redis is back")
	node.srv.Drain()
	if err := ready(); !errors.Is(err, bayeux.ErrDraining) {
		t.Fatalf("Ready while draining: %v", err)
	}
}

func TestPingOfAClosedEngine(t *testing.T) {
	rs := startRedis(t)
	e, err := New(context.Background(), Config{URL: rs.URL(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Ping(context.Background()); !errors.Is(err, bayeux.ErrEngineClosed) {
		t.Fatalf("Ping before Start: %v", err)
	}
	if err := e.Start(context.Background(), func(*bayeux.Publication) {}); err != nil {
		t.Fatal(err)
	}
	if err := e.Ping(context.Background()); err != nil {
		t.Fatalf("Ping of a running engine: %v", err)
	}
	_ = e.Close()
	if err := e.Ping(context.Background()); !errors.Is(err, bayeux.ErrEngineClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
}
