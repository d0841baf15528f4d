package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		check   func(t *testing.T, c Config)
	}{
		{"defaults", Config{URL: "redis://127.0.0.1:1/0"}, false, func(t *testing.T, c Config) {
			if c.Namespace != "bayou" || c.OpTimeout != time.Second || c.HeartbeatInterval != 2*time.Second || c.NodeTTL != 10*time.Second || c.Logger == nil ||
				c.HistoryMetaTTL != 24*time.Hour {
				t.Errorf("defaults not applied: %+v", c)
			}
			if len(c.NodeID) != nodeIDLen || !validNodeID(c.NodeID) {
				t.Errorf("generated NodeID %q", c.NodeID)
			}
			for _, r := range c.NodeID {
				if (r < '0' || r > '9') && (r < 'a' || r > 'z') {
					t.Errorf("generated NodeID %q not [0-9a-z]", c.NodeID)
				}
			}
		}},
		{"kept", Config{URL: "redis://x", Namespace: "ns", NodeID: "n-1.a_B"}, false, func(t *testing.T, c Config) {
			if c.Namespace != "ns" || c.NodeID != "n-1.a_B" {
				t.Errorf("fields changed: %+v", c)
			}
		}},
		{"no url", Config{}, true, nil},
		{"bad node id", Config{URL: "redis://x", NodeID: "a:b"}, true, nil},
		{"long node id", Config{URL: "redis://x", NodeID: string(make([]byte, 65))}, true, nil},
		{"ttl below interval", Config{URL: "redis://x", HeartbeatInterval: time.Second, NodeTTL: time.Second}, true, nil},
		{"negative flush delay", Config{URL: "redis://x", MaxFlushDelay: -1}, true, nil},
		{"negative history meta ttl", Config{URL: "redis://x", HistoryMetaTTL: -1}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.cfg.withDefaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
	if a, b := randomID(), randomID(); a == b {
		t.Errorf("two random IDs equal: %s", a)
	}
}

func TestNewFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close() // nothing listens there now
	tests := []struct{ name, url string }{
		{"unparsable url", "http://[::1"},
		{"nothing listening", "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(context.Background(), Config{URL: tt.url, Logger: testLogger(t)})
			if err == nil {
				_ = e.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	e, err := New(ctx, Config{URL: srv.URL(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p := &bayeux.Publication{Channel: "/a", Message: []byte("{}")}
	if err := e.Publish(ctx, p); !errors.Is(err, bayeux.ErrEngineClosed) {
		t.Errorf("Publish before Start = %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	if err := e.Start(sctx, func(*bayeux.Publication) {}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(sctx, func(*bayeux.Publication) {}); err == nil {
		t.Error("second Start succeeded")
	}
	if err := e.Publish(ctx, p); err != nil {
		t.Fatal(err)
	}
	cancel() // the Start context ends the engine
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return e.Publish(ctx, p) != nil },
		"the engine stops publishing after its context ended")
	if err := e.Publish(ctx, p); !errors.Is(err, bayeux.ErrEngineClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestNoGoroutineLeak checks that Close stops every goroutine the engines
// and their Redis clients started.
func TestNoGoroutineLeak(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	before := runtime.NumGoroutine()
	a := newNode(t, srv, "leak-a")
	b := newNode(t, srv, "leak-b")
	b.HandleNodeMessages(func([]byte) {})
	b.mustSubscribe(t, "/g/**", "/g/x")
	a.mustPublish(t, "/g/x", "1")
	b.got.waitChannel(t, "/g/x")
	if err := b.Unsubscribe(ctx, "/g/x"); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, "leak-b", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := a.ClaimSession(ctx, "s", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SessionOwner(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := a.ReportCounts(ctx, 1, map[string]int{"/g": 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Counts(ctx); err != nil {
		t.Fatal(err)
	}
	during := runtime.NumGoroutine()
	for _, n := range []*testNode{a, b} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d with two engines, %d after Close", before, during, runtime.NumGoroutine())
}

// TestRedisRestart kills redis-server in the middle of a stream of
// publishes, checks that calls fail quickly with errors, restarts it on the
// same port and checks that subscriptions, session claims, heartbeats and
// counts come back without help.
func TestRedisRestart(t *testing.T) {
	srv := startRedis(t)
	raw := srv.raw()
	ctx := context.Background()
	const opTimeout = 500 * time.Millisecond
	quick := func(c *Config) { c.OpTimeout = opTimeout }
	a := newNode(t, srv, "pub", quick)
	b := newNode(t, srv, "sub", quick)
	b.mustSubscribe(t, "/r/**")
	if err := b.ClaimSession(ctx, "sess-b", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.ReportCounts(ctx, 1, map[string]int{"/r/**": 1}); err != nil {
		t.Fatal(err)
	}

	// The stream: one publish every 10ms, each message numbered.
	type result struct {
		i        int
		at, took time.Duration
		err      error
	}
	var (
		mu      sync.Mutex
		results []result
	)
	t0 := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			began := time.Now()
			err := a.Publish(ctx, &bayeux.Publication{Channel: "/r/x", Message: []byte(strconv.Itoa(i))})
			mu.Lock()
			results = append(results, result{i, began.Sub(t0), time.Since(began), err})
			mu.Unlock()
		}
	})
	stopStream := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopStream()
	b.got.waitFor(t, 5*time.Second, "stream", func(ps []*bayeux.Publication) bool { return len(ps) >= 20 })

	killedAt := time.Since(t0)
	srv.kill()

	// During the outage: errors, each within OpTimeout (plus slack), once
	// the stream has seen a few.
	bayeuxtest.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		failed := 0
		for _, r := range results {
			if r.err != nil {
				failed++
			}
		}
		return failed >= 3
	}, "three publishes failed after the kill")
	slow := opTimeout + 1500*time.Millisecond // fails fast, not on time: room for a loaded machine
	began := time.Now()
	if err := b.Subscribe(ctx, "/r/other"); err == nil {
		t.Error("Subscribe succeeded during the outage")
	} else if d := time.Since(began); d > slow {
		t.Errorf("Subscribe took %v to fail", d)
	}
	began = time.Now()
	if err := a.Send(ctx, "sub", []byte("x")); err == nil {
		t.Error("Send succeeded during the outage")
	} else if d := time.Since(began); d > slow {
		t.Errorf("Send took %v to fail", d)
	}
	if _, err := b.SessionOwner(ctx, "sess-b"); err == nil {
		t.Error("SessionOwner succeeded during the outage")
	}

	restartedAt := time.Since(t0)
	srv.start()

	// Recovery, measured from the restart.
	var claimBack, aliveBack, countsBack time.Duration
	deadline := time.Now().Add(15 * time.Second)
	for claimBack == 0 || aliveBack == 0 || countsBack == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not recovered: claim %v, heartbeat %v, counts %v", claimBack, aliveBack, countsBack)
		}
		since := time.Since(t0) - restartedAt
		if claimBack == 0 {
			if v, err := raw.Do(ctx, raw.B().Get().Key("bayou:sess:sess-b").Build()).ToString(); err == nil && v == "sub" {
				claimBack = since
			}
		}
		if aliveBack == 0 {
			if n, err := raw.Do(ctx, raw.B().Exists().Key("bayou:alive:sub", "bayou:alive:pub").Build()).AsInt64(); err == nil && n == 2 {
				aliveBack = since
			}
		}
		if countsBack == 0 {
			if s, subs, err := a.Counts(ctx); err == nil && s == 1 && subs["/r/**"] == 1 {
				countsBack = since
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Publications flow again: wait for one published after the restart
	// (the first ones may be lost while the subscriber's pub/sub
	// connection is still down: delivery is at most once).
	var firstOK, firstDelivered result
	b.got.waitFor(t, 15*time.Second, "a publication after the restart", func(ps []*bayeux.Publication) bool {
		mu.Lock()
		defer mu.Unlock()
		sent := make(map[string]result)
		for _, r := range results {
			if r.err == nil && r.at > restartedAt {
				if firstOK.at == 0 {
					firstOK = r
				}
				sent[strconv.Itoa(r.i)] = r
			}
		}
		for _, p := range ps {
			if r, ok := sent[string(p.Message)]; ok {
				firstDelivered = r
				return true
			}
		}
		return false
	})
	deliveredBack := time.Since(t0) - restartedAt
	if got, err := b.SessionOwner(ctx, "sess-b"); err != nil || got != "sub" {
		t.Errorf("SessionOwner after restart = %q, %v", got, err)
	}
	if err := b.Subscribe(ctx, "/r/other"); err != nil {
		t.Errorf("Subscribe after restart: %v", err)
	}
	stopStream()

	// The failed publishes: errors, none slow, none delivered late out
	// of order; the delivered ones in order, once each.
	mu.Lock()
	defer mu.Unlock()
	failed, maxFail := 0, time.Duration(0)
	var firstFail, lastFail time.Duration
	for _, r := range results {
		if r.err == nil {
			continue
		}
		if failed == 0 {
			firstFail = r.at + r.took - killedAt
		}
		lastFail = r.at + r.took - restartedAt
		failed++
		maxFail = max(maxFail, r.took)
	}
	if failed == 0 {
		t.Fatal("no publish failed while Redis was down")
	}
	if maxFail > slow {
		t.Errorf("slowest failing publish took %v (OpTimeout %v)", maxFail, opTimeout)
	}
	prev := -1
	for _, p := range b.got.snapshot() {
		i, err := strconv.Atoi(string(p.Message))
		if err != nil {
			t.Fatalf("bad message %q", p.Message)
		}
		if i <= prev {
			t.Fatalf("message %d delivered after %d", i, prev)
		}
		prev = i
	}
	t.Logf("kill at %v; first publish error %v after the kill; %d publishes failed, slowest failure %v (OpTimeout %v)",
		killedAt.Round(time.Millisecond), firstFail.Round(time.Millisecond), failed, maxFail.Round(time.Millisecond), opTimeout)
	t.Logf("after restart: last failure +%v, first successful publish +%v, heartbeats +%v, claim +%v, counts +%v, "+
		"first delivered publication sent at +%v (seen by +%v)",
		lastFail.Round(time.Millisecond), (firstOK.at + firstOK.took - restartedAt).Round(time.Millisecond),
		aliveBack.Round(time.Millisecond), claimBack.Round(time.Millisecond), countsBack.Round(time.Millisecond),
		(firstDelivered.at - restartedAt).Round(time.Millisecond), deliveredBack.Round(time.Millisecond))
}

// TestRedisUnresponsive freezes redis-server (SIGSTOP: connections stay
// open, nothing answers) and checks that calls fail within OpTimeout and
// that traffic flows again once it resumes, in order.
func TestRedisUnresponsive(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	const opTimeout = 300 * time.Millisecond
	quick := func(c *Config) { c.OpTimeout = opTimeout }
	a := newNode(t, srv, "pub", quick)
	b := newNode(t, srv, "sub", quick)
	b.mustSubscribe(t, "/u/**")
	a.mustPublish(t, "/u/x", "0")
	b.got.waitChannel(t, "/u/x")

	srv.signal(syscall.SIGSTOP)
	frozen := true
	defer func() {
		if frozen {
			srv.signal(syscall.SIGCONT)
		}
	}()
	slow := opTimeout + 1500*time.Millisecond // fails fast, not on time: room for a loaded machine
	calls := []struct {
		name string
		call func() error
	}{
		{"Publish", func() error {
			return a.Publish(ctx, &bayeux.Publication{Channel: "/u/x", Message: []byte("1")})
		}},
		{"Subscribe", func() error { return b.Subscribe(ctx, "/u/other") }},
		{"Send", func() error { return a.Send(ctx, "sub", []byte("x")) }},
		{"ClaimSession", func() error { return a.ClaimSession(ctx, "s", time.Minute) }},
		{"SessionOwner", func() error { _, err := a.SessionOwner(ctx, "s"); return err }},
		{"ReportCounts", func() error { return a.ReportCounts(ctx, 1, nil) }},
		{"Counts", func() error { _, _, err := a.Counts(ctx); return err }},
	}
	for _, c := range calls {
		began := time.Now()
		err := c.call()
		took := time.Since(began)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while Redis is frozen: %v, want a deadline error", c.name, err)
		}
		if took > slow {
			t.Errorf("%s took %v to fail (OpTimeout %v)", c.name, took, opTimeout)
		}
	}
	// Resume once both engines have noticed the freeze through their own
	// heartbeat, not only through the calls above.
	bayeuxtest.Eventually(t, 10*time.Second, func() bool { return a.heartbeatFailed() && b.heartbeatFailed() },
		"both engines' heartbeats failed")
	srv.signal(syscall.SIGCONT)
	frozen = false
	resumed := time.Now()
	for i := 2; ; i++ {
		err := a.Publish(ctx, &bayeux.Publication{Channel: "/u/x", Message: []byte(strconv.Itoa(i))})
		if err == nil {
			break
		}
		if time.Since(resumed) > 5*time.Second {
			t.Fatalf("publish still failing after resume: %v", err)
		}
	}
	b.got.waitFor(t, 5*time.Second, "publication after resume", func(ps []*bayeux.Publication) bool {
		return len(ps) > 0 && string(ps[len(ps)-1].Message) != "0" && string(ps[len(ps)-1].Message) != "1"
	})
	t.Logf("traffic back %v after resume", time.Since(resumed).Round(time.Millisecond))
	prev := -1
	for _, p := range b.got.snapshot() {
		i, _ := strconv.Atoi(string(p.Message))
		if i <= prev {
			t.Fatalf("message %d delivered after %d", i, prev)
		}
		prev = i
	}
}

// heartbeatFailed reports whether the engine's last heartbeat failed.
func (e *Engine) heartbeatFailed() bool {
	n := &e.nodes
	n.beatMu.Lock()
	defer n.beatMu.Unlock()
	return n.beaten && !n.healthy
}

// ExampleNew shows an engine set up for a server.
func ExampleNew() {
	ctx := context.Background()
	engine, err := New(ctx, Config{URL: "redis://127.0.0.1:6379/0", Namespace: "chat"})
	if err != nil {
		fmt.Println("redis unreachable:", err)
		return
	}
	defer engine.Close()
	// srv, err := bayeux.New(bayeux.Config{Engine: engine, …})
}
