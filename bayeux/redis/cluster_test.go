package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestSessions(t *testing.T) {
	srv := startRedis(t)
	raw := srv.raw()
	ctx := context.Background()
	fast := func(c *Config) { c.HeartbeatInterval, c.NodeTTL = 100*time.Millisecond, 500*time.Millisecond }
	a := newNode(t, srv, "owner", fast)
	b := newNode(t, srv, "other", fast)

	owner := func(t *testing.T, n *testNode, id string) string {
		t.Helper()
		o, err := n.SessionOwner(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	// eventually waits for SessionOwner(id) seen from n to become want
	// (the liveness cache may hold an older answer for a second).
	eventually := func(t *testing.T, n *testNode, id, want string) time.Duration {
		t.Helper()
		began := time.Now()
		for owner(t, n, id) != want {
			if time.Since(began) > 5*time.Second {
				t.Fatalf("SessionOwner(%s) from %s = %q, want %q", id, n.NodeID(), owner(t, n, id), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(began)
	}

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"claim, lookup from another node, release", func(t *testing.T) {
			if err := a.ClaimSession(ctx, "s1", time.Minute); err != nil {
				t.Fatal(err)
			}
			if got := owner(t, b, "s1"); got != "owner" {
				t.Fatalf("owner from b = %q", got)
			}
			if got := owner(t, a, "s1"); got != "owner" {
				t.Fatalf("owner from a = %q", got)
			}
			if err := a.ReleaseSession(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			if got := owner(t, b, "s1"); got != "" {
				t.Fatalf("owner after release = %q", got)
			}
		}},
		{"unknown session", func(t *testing.T) {
			if got := owner(t, b, "nope"); got != "" {
				t.Fatalf("owner = %q", got)
			}
		}},
		{"release does not delete another node's claim", func(t *testing.T) {
			if err := a.ClaimSession(ctx, "s2", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := b.ReleaseSession(ctx, "s2"); err != nil {
				t.Fatal(err)
			}
			if got := owner(t, b, "s2"); got != "owner" {
				t.Fatalf("owner = %q", got)
			}
		}},
		{"claim expires", func(t *testing.T) {
			if err := a.ClaimSession(ctx, "s3", 150*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if got := owner(t, b, "s3"); got != "owner" {
				t.Fatalf("owner = %q", got)
			}
			took := eventually(t, b, "s3", "")
			t.Logf("claim of 150ms gone after %v", took.Round(time.Millisecond))
		}},
		{"claim extended", func(t *testing.T) {
			// Each renewal comes once half the claim's ttl has run
			// out (its PTTL, read from Redis) and must put it back.
			const ttl = 400 * time.Millisecond
			left := func() time.Duration {
				ms, err := raw.Do(ctx, raw.B().Pttl().Key(a.keys.sess+"s4").Build()).AsInt64()
				if err != nil {
					t.Fatal(err)
				}
				return time.Duration(ms) * time.Millisecond // -2ms once expired
			}
			for i := range 3 {
				if i > 0 {
					bayeuxtest.Eventually(t, 5*time.Second, func() bool { return left() < ttl/2 }, "half the claim's ttl run out")
				}
				if err := a.ClaimSession(ctx, "s4", ttl); err != nil {
					t.Fatal(err)
				}
				if l := left(); l < ttl/2 {
					t.Fatalf("claim %d: %v of its ttl left", i, l)
				}
			}
			if got := owner(t, b, "s4"); got != "owner" {
				t.Fatalf("owner = %q", got)
			}
		}},
		{"every key has a ttl", func(t *testing.T) {
			if err := a.ReportCounts(ctx, 2, map[string]int{"/a": 1}); err != nil {
				t.Fatal(err)
			}
			keys, err := raw.Do(ctx, raw.B().Keys().Pattern("*").Build()).AsStrSlice()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				ttl, err := raw.Do(ctx, raw.B().Pttl().Key(k).Build()).AsInt64()
				if err != nil {
					t.Fatal(err)
				}
				if ttl == -1 { // -2: expired since KEYS
					t.Errorf("key %s has no ttl", k)
				}
			}
			t.Logf("%d keys, all with a ttl: %v", len(keys), keys)
		}},
		{"store flushed: claims and counts re-recorded", func(t *testing.T) {
			if err := a.ClaimSession(ctx, "s8", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := a.ReportCounts(ctx, 3, map[string]int{"/f": 1}); err != nil {
				t.Fatal(err)
			}
			if err := raw.Do(ctx, raw.B().Flushall().Build()).Error(); err != nil {
				t.Fatal(err)
			}
			took := eventually(t, b, "s8", "owner")
			deadline := time.Now().Add(5 * time.Second)
			for {
				s, subs, err := b.Counts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if s == 3 && subs["/f"] == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("counts not re-recorded: %d %v", s, subs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("after FLUSHALL, claim back within %v (HeartbeatInterval 100ms)", took.Round(time.Millisecond))
		}},
		{"owner dies without closing", func(t *testing.T) {
			dead := newNode(t, srv, "doomed", fast)
			if err := dead.ClaimSession(ctx, "s5", time.Minute); err != nil {
				t.Fatal(err)
			}
			if got := owner(t, b, "s5"); got != "doomed" {
				t.Fatalf("owner = %q", got)
			}
			dead.crash()
			took := eventually(t, b, "s5", "")
			t.Logf("crashed owner's sessions report no owner after %v (NodeTTL %v + liveness cache %v)", took.Round(time.Millisecond), 500*time.Millisecond, aliveCacheTTL)
		}},
		{"owner closes", func(t *testing.T) {
			gone := newNode(t, srv, "leaving", fast)
			if err := gone.ClaimSession(ctx, "s6", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := gone.Close(); err != nil {
				t.Fatal(err)
			}
			// Close deleted the claim: no cache involved.
			if got := owner(t, b, "s6"); got != "" {
				t.Fatalf("owner after Close = %q", got)
			}
			if err := gone.ClaimSession(ctx, "s7", time.Minute); err == nil {
				t.Fatal("claim on a closed engine succeeded")
			}
		}},
		{"invalid arguments", func(t *testing.T) {
			if err := a.ClaimSession(ctx, "", time.Minute); err == nil {
				t.Error("empty id accepted")
			}
			if err := a.ClaimSession(ctx, "x", 0); err == nil {
				t.Error("zero ttl accepted")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// crash stops the engine's goroutines and connection without cleaning up,
// as if the process died.
func (n *testNode) crash() {
	n.state.Store(stateClosed)
	n.cancel()
	n.wg.Wait()
	n.client.Close()
}

func TestNodeMessages(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newNode(t, srv, "a")

	// b's handler must be set before Start.
	b, err := New(ctx, Config{URL: srv.URL(), NodeID: "b", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	const n = 1000
	b.HandleNodeMessages(func(msg []byte) {
		mu.Lock()
		got = append(got, string(msg))
		if len(got) == n {
			close(done)
		}
		mu.Unlock()
	})
	if err := b.Start(ctx, newCollector().deliver); err != nil {
		t.Fatal(err)
	}

	for i := range n {
		if err := a.Send(ctx, "b", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("received %d of %d node messages", len(got), n)
	}
	mu.Lock()
	for i, m := range got {
		if m != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d = %q", i, m)
		}
	}
	mu.Unlock()

	tests := []struct {
		node string
		want error
	}{
		{"nobody", ErrNoNode},
		{"not a valid id!", ErrNoNode},
	}
	for _, tt := range tests {
		if err := a.Send(ctx, tt.node, []byte("x")); !errors.Is(err, tt.want) {
			t.Errorf("Send(%q) = %v, want %v", tt.node, err, tt.want)
		}
	}
}

func TestCounts(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	nodes := []*testNode{newNode(t, srv, "c1"), newNode(t, srv, "c2"), newNode(t, srv, "c3")}
	reports := []struct {
		sessions int
		subs     map[string]int
	}{
		{3, map[string]int{"/a": 1, "/b/**": 2}},
		{5, map[string]int{"/a": 4}},
		{7, map[string]int{"/c": 1, "/b/**": 1}},
	}
	for i, r := range reports {
		if err := nodes[i].ReportCounts(ctx, r.sessions, r.subs); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		prepare  func(t *testing.T)
		sessions int
		subs     map[string]int
	}{
		{"three nodes", func(*testing.T) {}, 15, map[string]int{"/a": 5, "/b/**": 3, "/c": 1}},
		{"report replaced", func(t *testing.T) {
			if err := nodes[1].ReportCounts(ctx, 1, map[string]int{"/d": 2}); err != nil {
				t.Fatal(err)
			}
		}, 11, map[string]int{"/a": 1, "/b/**": 3, "/c": 1, "/d": 2}},
		{"closed node left out", func(t *testing.T) {
			if err := nodes[2].Close(); err != nil {
				t.Fatal(err)
			}
		}, 4, map[string]int{"/a": 1, "/b/**": 2, "/d": 2}},
		{"crashed node left out once its heartbeat expires", func(t *testing.T) {
			raw := srv.raw()
			// Simulate NodeTTL passing: the heartbeat key goes.
			nodes[0].crash()
			if err := raw.Do(ctx, raw.B().Del().Key("bayou:alive:c1").Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}, 1, map[string]int{"/d": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.prepare(t)
			sessions, subs, err := nodes[1].Counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if sessions != tt.sessions || !maps.Equal(subs, tt.subs) {
				t.Errorf("Counts = %d %v, want %d %v", sessions, subs, tt.sessions, tt.subs)
			}
		})
	}
}
