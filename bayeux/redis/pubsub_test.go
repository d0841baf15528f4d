package redis

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestRouting checks that a publication reaches exactly the nodes that
// listen to a matching pattern, once each, with its channel and Exclude.
func TestRouting(t *testing.T) {
	srv := startRedis(t)
	a := newNode(t, srv, "node-a")
	b := newNode(t, srv, "node-b")
	c := newNode(t, srv, "node-c")
	a.mustSubscribe(t, "/**", "/a/**", "/a/b") // three patterns matching /a/b/…
	b.mustSubscribe(t, "/a/*", "/fence")
	c.mustSubscribe(t, "/x", "/a/b/c", "/fence")
	all := []*testNode{a, b, c}

	tests := []struct {
		channel string
		from    *testNode
		want    map[*testNode]int
	}{
		{"/a/b", a, map[*testNode]int{a: 1, b: 1}},
		{"/a/b", b, map[*testNode]int{a: 1, b: 1}},
		{"/a/b/c", c, map[*testNode]int{a: 1, c: 1}},
		{"/a", a, map[*testNode]int{a: 1}},
		{"/a/c", b, map[*testNode]int{a: 1, b: 1}},
		{"/x", c, map[*testNode]int{a: 1, c: 1}},
		{"/y/z", b, map[*testNode]int{a: 1}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s_from_%s", strings.ReplaceAll(tt.channel, "/", "_"), tt.from.NodeID()), func(t *testing.T) {
			for _, n := range all {
				n.got.reset()
			}
			msg := fmt.Sprintf(`{"case":%d}`, i)
			exclude := fmt.Sprintf("client-%d", i)
			err := tt.from.Publish(context.Background(), &bayeux.Publication{Channel: tt.channel, Message: []byte(msg), Exclude: exclude})
			if err != nil {
				t.Fatal(err)
			}
			// A fence from the same origin arrives after every copy
			// of the publication: one connection, one order.
			const fence = "/fence"
			tt.from.mustPublish(t, fence, "fence")
			for _, n := range all {
				n.got.waitChannel(t, fence)
			}
			for _, n := range all {
				got := 0
				for _, p := range n.got.snapshot() {
					if string(p.Message) != msg {
						continue
					}
					got++
					if p.Channel != tt.channel || p.Exclude != exclude {
						t.Errorf("%s got channel %q exclude %q, want %q %q", n.NodeID(), p.Channel, p.Exclude, tt.channel, exclude)
					}
				}
				if got != tt.want[n] {
					t.Errorf("%s received %d copies, want %d", n.NodeID(), got, tt.want[n])
				}
			}
		})
	}
}

// TestOrder checks that each publisher's messages arrive in order and once,
// at a node subscribed to three patterns matching them.
func TestOrder(t *testing.T) {
	const total = 10_000
	tests := []struct {
		name       string
		publishers int
	}{
		{"one_publisher", 1},
		{"four_concurrent_publishers", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRedis(t)
			a := newNode(t, srv, "pub")
			b := newNode(t, srv, "sub")
			b.mustSubscribe(t, "/**", "/o/**", "/o/p")
			began := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, tt.publishers)
			for w := range tt.publishers {
				wg.Go(func() {
					for i := range total / tt.publishers {
						p := &bayeux.Publication{Channel: "/o/p", Message: fmt.Appendf(nil, "%d:%d", w, i)}
						if err := a.Publish(context.Background(), p); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			b.got.waitFor(t, 20*time.Second, fmt.Sprintf("%d publications", total), func(ps []*bayeux.Publication) bool {
				return len(ps) >= total
			})
			elapsed := time.Since(began)
			ps := b.got.beyond(total, 50*time.Millisecond) // any duplicate
			if len(ps) != total {
				t.Fatalf("received %d publications, want %d", len(ps), total)
			}
			next := make([]int, tt.publishers)
			for _, p := range ps {
				var w, i int
				if _, err := fmt.Sscanf(string(p.Message), "%d:%d", &w, &i); err != nil {
					t.Fatalf("bad message %q", p.Message)
				}
				if i != next[w] {
					t.Fatalf("publisher %d: got message %d, want %d", w, i, next[w])
				}
				next[w]++
			}
			t.Logf("%d publications, %d publisher(s), 3 matching patterns: delivered once each, in order, in %v",
				total, tt.publishers, elapsed.Round(time.Millisecond))
		})
	}
}

// TestCommandsPerPublish checks that a publish costs depth+2 PUBLISH
// commands whatever the number of patterns nodes listen to and of nodes
// listening, and, on a channel with history, one EVALSHA whose script runs
// a fixed set of commands besides: every Redis command counted.
func TestCommandsPerPublish(t *testing.T) {
	const n = 200
	srv := startRedis(t)
	raw := srv.raw()
	// No heartbeat during the measures (after the first two, awaited
	// below): every command counted is a publish's.
	quiet := func(c *Config) { c.HeartbeatInterval, c.NodeTTL = time.Hour, 2*time.Hour }
	a := newNode(t, srv, "pub", quiet)
	b := newNode(t, srv, "sub", quiet)
	c := newNode(t, srv, "sub2", quiet)
	for _, node := range []*testNode{a, b, c} {
		bayeuxtest.Eventually(t, 5*time.Second, func() bool { return node.nodes.tick.Load() >= 1 },
			"the heartbeat after the connection")
	}
	b.mustSubscribe(t, "/**")
	history := &bayeux.HistoryRule{Size: 100, TTL: time.Minute}
	first := map[string]map[string]float64{} // commands per publish at 10 patterns
	subscribed := 0
	for _, patterns := range []int{10, 1000} {
		for ; subscribed < patterns; subscribed++ {
			b.mustSubscribe(t, fmt.Sprintf("/p/%d", subscribed))
		}
		listeners := []*testNode{b}
		if patterns == 1000 {
			c.mustSubscribe(t, "/**", "/a/**") // one node more, two patterns
			listeners = append(listeners, c)
		}
		for _, rule := range []*bayeux.HistoryRule{nil, history} {
			for _, channel := range []string{"/a", "/a/b", "/a/b/c", "/a/b/c/d/e"} {
				name := fmt.Sprintf("patterns=%d/history=%v/channel=%s", patterns, rule != nil, channel)
				t.Run(name, func(t *testing.T) {
					publish := func(msg string) {
						t.Helper()
						if err := a.Publish(context.Background(), &bayeux.Publication{Channel: channel, Message: []byte(msg), History: rule}); err != nil {
							t.Fatal(err)
						}
					}
					if rule != nil {
						publish("warm-up") // the first starts the history
						for _, l := range listeners {
							l.got.waitChannel(t, channel)
						}
					}
					for _, l := range listeners {
						l.got.reset()
					}
					before := commandCalls(t, raw)
					for range n {
						publish("x")
					}
					calls := publishCommands(before, commandCalls(t, raw), n)
					want := len(channels.Expand(channel))
					t.Logf("commands per publish: %v (channel %s, depth %d; %d node(s) listening, to %d patterns)",
						calls, channel, want-2, len(listeners), patterns+2*(len(listeners)-1)+1)
					if calls["publish"] != float64(want) {
						t.Errorf("PUBLISH per publish = %.2f, want depth+2 = %d", calls["publish"], want)
					}
					if rule != nil {
						for _, cmd := range []string{"evalsha", "hget", "hincrby", "xadd"} {
							if calls[cmd] != 1 {
								t.Errorf("%s per publish = %.2f, want 1", strings.ToUpper(cmd), calls[cmd])
							}
						}
						if calls["pexpire"] != 2 {
							t.Errorf("PEXPIRE per publish = %.2f, want 2", calls["pexpire"])
						}
					}
					key := fmt.Sprintf("%v%s", rule != nil, channel)
					if prev, ok := first[key]; !ok {
						first[key] = calls
					} else if fmt.Sprint(prev) != fmt.Sprint(calls) {
						t.Errorf("commands per publish grew: %v with 10 patterns and one listening node, %v now", prev, calls)
					}
					for _, l := range listeners {
						l.got.waitFor(t, 5*time.Second, "deliveries", func(ps []*bayeux.Publication) bool { return len(ps) == n })
					}
				})
			}
		}
	}
}

// TestSubscribeUnsubscribe checks that Unsubscribe stops delivery and that
// Subscribe is confirmed before it returns.
func TestSubscribeUnsubscribe(t *testing.T) {
	srv := startRedis(t)
	a := newNode(t, srv, "a")
	b := newNode(t, srv, "b")
	b.mustSubscribe(t, "/fence")
	for i := range 20 {
		// Published right after Subscribe returns: must arrive.
		ch := fmt.Sprintf("/s/%d", i)
		b.mustSubscribe(t, ch)
		a.mustPublish(t, ch, "hello")
		b.got.waitChannel(t, ch)
	}
	if err := b.Unsubscribe(context.Background(), "/s/0"); err != nil {
		t.Fatal(err)
	}
	b.got.reset()
	a.mustPublish(t, "/s/0", "gone")
	a.mustPublish(t, "/fence", "fence")
	b.got.waitChannel(t, "/fence")
	for _, p := range b.got.snapshot() {
		if p.Channel == "/s/0" {
			t.Fatal("delivered after Unsubscribe")
		}
	}
	if err := a.Publish(context.Background(), &bayeux.Publication{Channel: "/bad/*"}); err == nil {
		t.Fatal("publish to a wildcard succeeded")
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	tests := []header{
		{node: "n", epoch: 1, seq: 1, channel: "/a"},
		{node: "node-with-long-id.x_y", epoch: 1<<64 - 1, seq: 1<<64 - 1, channel: "/a/b/c", exclude: "client-1"},
		{node: strings.Repeat("z", 64), epoch: 0, seq: 300, channel: "/" + strings.Repeat("c", 500), exclude: strings.Repeat("e", 200)},
		{node: "n", epoch: 2, seq: 9, channel: "/a", audience: &bayeux.Audience{Users: []string{"ana", ""}}},
		{node: "n", epoch: 3, seq: 10, channel: "/a", exclude: "x", audience: &bayeux.Audience{
			Users: []string{"ana", "bob"}, Roles: []string{"staff"}, ClientIDs: []string{strings.Repeat("i", 300)}}},
		{node: "n", epoch: 4, seq: 11, channel: "/a", audience: &bayeux.Audience{}},
	}
	for _, h := range tests {
		for _, msg := range []string{"", `{"data":1}`} {
			payload := string(appendHeader(nil, &h)) + msg
			got, gotMsg, err := decodeHeader(payload)
			if err != nil {
				t.Fatalf("%+v: %v", h, err)
			}
			if !reflect.DeepEqual(got, h) || gotMsg != msg {
				t.Errorf("decoded %+v %q, want %+v %q", got, gotMsg, h, msg)
			}
			// Every truncation of the header must fail, not panic.
			hdrLen := len(payload) - len(msg)
			for cut := range hdrLen {
				if _, _, err := decodeHeader(payload[:cut]); err == nil {
					t.Errorf("%+v: truncated at %d decoded", h, cut)
				}
			}
		}
	}
	if _, _, err := decodeHeader("\x02" + strings.Repeat("x", 20)); err == nil {
		t.Error("unknown version decoded")
	}
}

func TestDedup(t *testing.T) {
	type step struct {
		node  string
		epoch uint64
		seq   uint64
		first bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"copies dropped", []step{{"a", 1, 1, true}, {"a", 1, 1, false}, {"a", 1, 1, false}, {"a", 1, 2, true}, {"a", 1, 2, false}}},
		{"reordered first copies kept", []step{{"a", 1, 5, true}, {"a", 1, 3, true}, {"a", 1, 4, true}, {"a", 1, 3, false}, {"a", 1, 6, true}}},
		{"joining mid-stream", []step{{"a", 1, 1_000_000, true}, {"a", 1, 999_999, true}, {"a", 1, 1_000_000, false}}},
		{"origins independent", []step{{"a", 1, 7, true}, {"b", 1, 7, true}, {"a", 2, 7, true}, {"a", 1, 7, false}}},
		{"restarted origin (new epoch)", []step{{"a", 1, 9000, true}, {"a", 2, 1, true}, {"a", 2, 1, false}}},
		{"edge of window", []step{{"a", 1, 5000, true}, {"a", 1, 5000 - windowBits + 1, true}, {"a", 1, 5000 - windowBits, false}}},
		{"big jump clears window", []step{{"a", 1, 10, true}, {"a", 1, 10 + 3*windowBits, true}, {"a", 1, 10 + 2*windowBits, false}, {"a", 1, 10 + 3*windowBits - 1, true}}},
		{"bits reused after wrap", []step{{"a", 1, 1, true}, {"a", 1, 1 + windowBits, true}, {"a", 1, 2 + windowBits, true}, {"a", 1, 1 + windowBits, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dedup{windows: make(map[origin]*window)}
			for i, s := range tt.steps {
				if got := d.first(s.node, s.epoch, s.seq, 0); got != s.first {
					t.Fatalf("step %d (%s/%d seq %d): first = %v, want %v", i, s.node, s.epoch, s.seq, got, s.first)
				}
			}
		})
	}
	d := dedup{windows: make(map[origin]*window)}
	d.first("old", 1, 1, 1)
	d.first("new", 1, 1, 5)
	d.prune(3)
	if _, ok := d.windows[origin{"old", 1}]; ok || len(d.windows) != 1 {
		t.Errorf("prune kept %v", d.windows)
	}
}

// TestAudienceTravels: a publication's audience reaches the other nodes
// with it; one with both an audience and a history rule is refused.
func TestAudienceTravels(t *testing.T) {
	srv := startRedis(t)
	a := newNode(t, srv, "node-a")
	b := newNode(t, srv, "node-b")
	b.mustSubscribe(t, "/aud/*")
	to := &bayeux.Audience{Users: []string{"ana"}, Roles: []string{"staff"}, ClientIDs: []string{"c1"}}
	ctx := context.Background()
	if err := a.Publish(ctx, &bayeux.Publication{Channel: "/aud/x", Message: []byte(`{"data":1}`), Audience: to}); err != nil {
		t.Fatal(err)
	}
	b.got.waitChannel(t, "/aud/x")
	if got := b.got.snapshot(); len(got) != 1 || !reflect.DeepEqual(got[0].Audience, to) {
		t.Fatalf("node b got %+v, want one publication for %+v", got, to)
	}
	err := a.Publish(ctx, &bayeux.Publication{Channel: "/aud/x", Message: []byte(`{"data":2}`), Audience: to,
		History: &bayeux.HistoryRule{Pattern: "/aud/*", Size: 1}})
	if !errors.Is(err, errAudienceHistory) {
		t.Fatalf("publish with an audience and history: %v, want errAudienceHistory", err)
	}
}
