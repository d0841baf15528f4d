package redis

import (
	"context"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestEngineStats follows the engine's figures through publishes, a second
// node, an outage and the reconnection after it. The heartbeat is slow, so
// that nothing else talks to Redis while round trips are counted.
func TestEngineStats(t *testing.T) {
	srv := startRedis(t)
	slow := func(c *Config) { c.HeartbeatInterval, c.NodeTTL = time.Minute, 2*time.Minute }
	a := newNode(t, srv, "a", slow)
	st := a.EngineStats()
	if st.Nodes != 1 || st.RoundTrips == 0 || st.Commands < st.RoundTrips || st.Errors != 0 || st.Reconnects != 0 {
		t.Fatalf("after start: %+v", st)
	}
	b := newNode(t, srv, "b", slow)
	if n := b.EngineStats().Nodes; n != 2 {
		t.Errorf("the second node counted %d nodes", n)
	}

	for _, ch := range []string{"/x", "/x/y/z"} {
		before := a.EngineStats()
		a.mustPublish(t, ch, "m")
		after := a.EngineStats()
		if got := after.RoundTrips - before.RoundTrips; got != 1 {
			t.Errorf("a publish on %s took %d round trips, want 1", ch, got)
		}
		if got, want := after.Commands-before.Commands, uint64(len(channels.Expand(ch))); got != want {
			t.Errorf("a publish on %s sent %d commands, want %d (one per pattern)", ch, got, want)
		}
	}

	srv.kill()
	before := a.EngineStats().Errors
	if err := a.Publish(context.Background(), &bayeux.Publication{Channel: "/x", Message: []byte("m")}); err == nil {
		t.Fatal("a publish succeeded with Redis down")
	}
	if got := a.EngineStats().Errors; got <= before {
		t.Errorf("errors %d after a failed publish, %d before", got, before)
	}
	srv.start()
	bayeuxtest.Eventually(t, 15*time.Second, func() bool {
		st := a.EngineStats()
		return st.Reconnects == 1 && a.listening()
	}, "one reconnection counted")
}

// TestServerStatsWithRedis: a server on the Redis engine reports the
// engine's figures in its Stats.
func TestServerStatsWithRedis(t *testing.T) {
	srv := startRedis(t)
	e, err := New(context.Background(), Config{URL: srv.URL(), NodeID: "s", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := bayeux.New(bayeux.Config{Engine: e, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	if err := s.Publish(context.Background(), "/a", 1); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Engine == nil || st.Engine.Nodes != 1 || st.Engine.RoundTrips == 0 || st.Engine.Errors != 0 {
		t.Fatalf("Engine %+v", st.Engine)
	}
	if st.Published != 1 {
		t.Errorf("Published %d, want 1", st.Published)
	}
}
