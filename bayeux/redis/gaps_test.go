package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// publishCommands returns the calls per publish of each command between
// two commandCalls, leaving out those of the test itself and of
// connection upkeep.
func publishCommands(before, after map[string]int64, publishes int) map[string]float64 {
	out := make(map[string]float64)
	for name, n := range after {
		switch {
		case name == "info", name == "ping", name == "hello", name == "select", strings.HasPrefix(name, "client"):
			continue
		}
		if d := n - before[name]; d != 0 {
			out[name] = float64(d) / float64(publishes)
		}
	}
	return out
}

// connID returns the ID (CLIENT LIST) of the connection named name in
// subscribed state (flag P), or 0.
func connID(tb testing.TB, raw rueidis.Client, name string) int64 {
	tb.Helper()
	list, err := raw.Do(context.Background(), raw.B().ClientList().Build()).ToString()
	if err != nil {
		tb.Fatal(err)
	}
	list = strings.TrimPrefix(list, "txt:") // a RESP3 verbatim string
	for _, line := range strings.Split(list, "\n") {
		var id int64
		named, subscribed := false, false
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id, _ = strconv.ParseInt(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(f, "flags="); ok {
				subscribed = strings.Contains(v, "P")
			}
			named = named || f == "name="+name
		}
		if named && subscribed {
			return id
		}
	}
	return 0
}

// pubsubConn returns the engine's current pub/sub connection, nil while
// it is down.
func (e *Engine) pubsubConn() rueidis.DedicatedClient {
	e.sub.mu.Lock()
	defer e.sub.mu.Unlock()
	return e.sub.conn
}

// TestHistoryNoGaps publishes a stream on a history channel from one node
// while the pub/sub connection of the other is killed three times (CLIENT
// KILL), then while Redis restarts (losing every key): the subscriber node
// must deliver every offset once, in order. Before the restart nothing is
// missing; after it, a new epoch starts and every publication made after
// the restart arrives once, in order (those published before the
// subscriber reconnected included: it listened all along).
func TestHistoryNoGaps(t *testing.T) {
	const total = 2000
	srv := startRedis(t)
	raw := srv.raw()
	ctx := context.Background()
	quick := func(c *Config) { c.OpTimeout = 500 * time.Millisecond }
	pub := newNode(t, srv, "pub", quick)
	sub := newNode(t, srv, "sub", quick)
	sub.mustSubscribe(t, "/ng/**", "/ng/x") // two copies of each
	rule := &bayeux.HistoryRule{Size: 100_000, TTL: time.Minute}

	// The stream: message i, for i = 0, 1, …; each result recorded.
	type result struct {
		ok      bool
		started time.Time
	}
	var (
		mu      sync.Mutex
		results []result
		okCount atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			began := time.Now()
			err := pub.Publish(ctx, &bayeux.Publication{Channel: "/ng/x", Message: []byte(strconv.Itoa(i)), History: rule})
			mu.Lock()
			results = append(results, result{ok: err == nil, started: began})
			mu.Unlock()
			if err == nil {
				okCount.Add(1)
			} else {
				select { // Redis is down: do not spin
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	})
	stopStream := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopStream()
	reached := func(n int64) {
		t.Helper()
		bayeuxtest.Eventually(t, 20*time.Second, func() bool { return okCount.Load() >= n }, fmt.Sprintf("%d publications", n))
	}
	reconnected := func(old rueidis.DedicatedClient) {
		t.Helper()
		bayeuxtest.Eventually(t, 15*time.Second, func() bool {
			c := sub.pubsubConn()
			return c != nil && c != old
		}, "the subscriber's pub/sub connection is back")
	}

	for k, at := range []int64{200, 450, 700} {
		reached(at)
		old := sub.pubsubConn()
		id := connID(t, raw, "bayou:sub")
		if id == 0 {
			list, _ := raw.Do(ctx, raw.B().ClientList().Build()).ToString()
			t.Fatalf("no pub/sub connection named bayou:sub:\n%s", list)
		}
		if err := raw.Do(ctx, raw.B().ClientKill().Id(id).Build()).Error(); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		reconnected(old)
	}
	reached(950)
	beforeRestart := sub.hist.recovered.Load()
	old := sub.pubsubConn()
	srv.kill()
	// A publication started from now on that succeeds is the new
	// server's: one cut by the kill fails (EVALSHA is not retried).
	killed := time.Now()
	srv.start()
	reconnected(old)
	reached(total)
	stopStream()

	mu.Lock()
	defer mu.Unlock()
	// Every successful publish is delivered: wait for the last one.
	last := -1
	for i, r := range results {
		if r.ok {
			last = i
		}
	}
	sub.got.waitFor(t, 20*time.Second, "the last publication", func(ps []*bayeux.Publication) bool {
		return len(ps) > 0 && string(ps[len(ps)-1].Message) == strconv.Itoa(last)
	})
	ps := sub.got.beyond(len(sub.got.snapshot()), 50*time.Millisecond)

	// Offsets: one run from 1 per epoch, two epochs, in order.
	var epochs []string
	runs := map[string][]uint64{}
	delivered := map[int]int{}
	prev := -1
	for _, p := range ps {
		if p.Channel != "/ng/x" {
			t.Fatalf("delivered on %s", p.Channel)
		}
		e := p.Position.Epoch
		if len(epochs) == 0 || epochs[len(epochs)-1] != e {
			if _, seen := runs[e]; seen {
				t.Fatalf("epoch %s came back", e)
			}
			epochs = append(epochs, e)
		}
		runs[e] = append(runs[e], p.Position.Offset)
		i, err := strconv.Atoi(string(p.Message))
		if err != nil || i <= prev {
			t.Fatalf("message %q delivered after %d", p.Message, prev)
		}
		prev = i
		delivered[i]++
	}
	if len(epochs) != 2 {
		t.Fatalf("%d epochs, want 2 (before and after the restart)", len(epochs))
	}
	for _, e := range epochs {
		checkRun(t, "epoch "+e, runs[e], 1)
	}
	// Every successful publish arrived, except perhaps the last one before
	// the restart: Redis may answer the publisher before it writes to the
	// subscriber, and lose the message with its data if killed in between.
	lastBefore := -1
	for i, r := range results {
		if r.ok && r.started.Before(killed) {
			lastBefore = i
		}
	}
	missing := 0
	for i, r := range results {
		if r.ok && delivered[i] == 0 && i != lastBefore {
			missing++
			if missing <= 5 {
				t.Errorf("publication %d (after the restart: %v) succeeded but was not delivered", i, !r.started.Before(killed))
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d successful publications not delivered", missing)
	}
	failed := 0
	for _, r := range results {
		if !r.ok {
			failed++
		}
	}
	recovered := sub.hist.recovered.Load()
	if recovered == 0 {
		t.Error("no publication was recovered from the stream: the test lost nothing")
	}
	t.Logf("%d publishes (%d failed during the restart); %d delivered, once each, in order: offsets 1..%d in epoch 1, 1..%d in epoch 2; "+
		"gaps filled %d, publications recovered %d (%d before the restart), missed %d, fill errors %d",
		len(results), failed, len(ps), len(runs[epochs[0]]), len(runs[epochs[1]]),
		sub.hist.gaps.Load(), recovered, beforeRestart, sub.hist.missed.Load(), sub.hist.fillErrors.Load())
}

// trackerCount returns the number of channels e tracks (a tracker marked
// lapsed, because its stripe was busy when its last pattern went, is
// as good as gone).
func (e *Engine) trackerCount() int {
	e.hist.mu.Lock()
	defer e.hist.mu.Unlock()
	n := 0
	for _, t := range e.hist.trackers {
		if !t.lapsed {
			n++
		}
	}
	return n
}

// TestHistoryTrackers checks that a node forgets the offsets of a channel
// it stops listening to, so that when it listens again it does not fill
// in what was published meanwhile, and that idle trackers are pruned.
func TestHistoryTrackers(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newNode(t, srv, "a")
	b := newNode(t, srv, "b", func(c *Config) { c.HeartbeatInterval, c.NodeTTL = 50*time.Millisecond, time.Second })
	got := func(ch string) []uint64 { return offsets(b.got.snapshot(), ch) }

	b.mustSubscribe(t, "/t/x")
	for i := range 3 {
		a.publishHistory(t, "/t/x", strconv.Itoa(i), keepAll)
	}
	b.got.waitFor(t, 5*time.Second, "3 publications", func(ps []*bayeux.Publication) bool { return len(ps) == 3 })
	if n := b.trackerCount(); n != 1 {
		t.Fatalf("%d trackers, want 1", n)
	}
	if err := b.Unsubscribe(ctx, "/t/x"); err != nil {
		t.Fatal(err)
	}
	if n := b.trackerCount(); n != 0 {
		t.Fatalf("%d trackers after Unsubscribe, want 0", n)
	}
	for i := range 3 {
		a.publishHistory(t, "/t/x", strconv.Itoa(3+i), keepAll) // 4, 5, 6: not for b
	}
	b.mustSubscribe(t, "/t/x")
	a.publishHistory(t, "/t/x", "6", keepAll)
	b.got.waitFor(t, 5*time.Second, "offset 7", func(ps []*bayeux.Publication) bool { return len(ps) == 4 })
	if ps := b.got.beyond(4, 50*time.Millisecond); fmt.Sprint(offsets(ps, "/t/x")) != "[1 2 3 7]" {
		t.Fatalf("offsets %v, want [1 2 3 7]: publications made while b did not listen were filled in", got("/t/x"))
	}

	// A tracker stays while another wanted pattern still matches.
	b.mustSubscribe(t, "/t/**", "/t/y")
	a.publishHistory(t, "/t/y", "y", keepAll)
	b.got.waitChannel(t, "/t/y")
	if err := b.Unsubscribe(ctx, "/t/**"); err != nil {
		t.Fatal(err)
	}
	if n := b.trackerCount(); n != 2 {
		t.Fatalf("%d trackers, want 2 (/t/x and /t/y are still wanted)", n)
	}
	if err := b.Unsubscribe(ctx, "/t/y"); err != nil {
		t.Fatal(err)
	}
	if n := b.trackerCount(); n != 1 {
		t.Fatalf("%d trackers, want 1", n)
	}

	// Idle trackers go once their stream would have expired.
	b.hist.mu.Lock()
	b.hist.minIdle = 0
	b.hist.mu.Unlock()
	b.mustSubscribe(t, "/t/short")
	a.publishHistory(t, "/t/short", "s", &bayeux.HistoryRule{Size: 10, TTL: 100 * time.Millisecond})
	b.got.waitChannel(t, "/t/short")
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		b.hist.mu.Lock()
		defer b.hist.mu.Unlock()
		_, ok := b.hist.trackers["/t/short"]
		return !ok
	}, "the idle tracker is pruned")
	if n := b.trackerCount(); n != 1 {
		t.Errorf("%d trackers, want 1 (/t/x, kept a minute)", n)
	}
}
