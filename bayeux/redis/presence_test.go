package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	presenceext "github.com/bayou-pubsub/bayou/extensions/presence"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// presenceNode is a Bayou node with the presence extension on /chat/*,
// whose heartbeat expires fast.
type presenceNode struct {
	*bayouNode
	p *presenceext.Presence
}

func startPresenceCluster(t *testing.T, rs *redisServer, n int) []*presenceNode {
	t.Helper()
	var nodes []*presenceNode
	for i := range n {
		e, err := New(context.Background(), Config{URL: rs.URL(), NodeID: fmt.Sprintf("p%d", i), Logger: testLogger(t),
			OpTimeout: 500 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond, NodeTTL: 600 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		p, err := presenceext.New(presenceext.Config{Channels: []string{"/chat/*"}, SweepInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		b, err := bayeux.New(bayeux.Config{Engine: e, Timeout: 2 * time.Second, Logger: testLogger(t),
			Extensions: []bayeux.Extension{userExt{}, p}})
		if err != nil {
			t.Fatal(err)
		}
		hs := bayeuxtest.Serve(t, b, b.Shutdown)
		nodes = append(nodes, &presenceNode{&bayouNode{srv: b, engine: e, url: hs.URL + "/bayeux"}, p})
	}
	return nodes
}

// users returns the users present on channel as node n sees them, sorted.
func (n *presenceNode) users(t *testing.T, channel string) string {
	t.Helper()
	ms, err := n.p.Members(context.Background(), channel)
	if err != nil {
		return "error: " + err.Error()
	}
	var us []string
	for _, m := range ms {
		us = append(us, m.User)
	}
	slices.Sort(us)
	return strings.Join(us, ",")
}

// TestPresenceAcrossNodes runs three nodes with a member on each. Every
// node lists all three; a watcher on one node is sent them, then the join
// of a member of another node; when a node dies, its member drops out of
// every list and the watcher is told it left, once.
func TestPresenceAcrossNodes(t *testing.T) {
	rs := startRedis(t)
	nodes := startPresenceCluster(t, rs, 3)
	for i, user := range []string{"ana", "bob", "carol"} {
		id := nodes[i].handshakeAs(t, user)
		if r := nodes[i].mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/chat/lobby"}`); !r.Get("0.successful").Bool() {
			t.Fatalf("subscribe: %s", r.Raw)
		}
	}
	for i, n := range nodes {
		bayeuxtest.Eventually(t, 5*time.Second, func() bool { return n.users(t, "/chat/lobby") == "ana,bob,carol" },
			fmt.Sprintf("node %d lists the three members", i))
	}

	watcher := nodes[0].handshake(t)
	nodes[0].mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+watcher+`","subscription":"/presence/chat/lobby"}`)
	var got []string
	seen := func(want string) bool {
		for _, m := range nodes[0].mustPost(t, connect(watcher, `,"advice":{"timeout":0}`)).Array() {
			if m.Get("channel").String() != "/presence/chat/lobby" {
				continue
			}
			d := m.Get("data")
			if d.Get("action").String() == "members" {
				var us []string
				for _, u := range d.Get("members.#.user").Array() {
					us = append(us, u.String())
				}
				got = append(got, "members:"+strings.Join(us, ","))
			} else {
				got = append(got, d.Get("action").String()+":"+d.Get("member.user").String())
			}
		}
		return slices.Contains(got, want)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return seen("members:ana,bob,carol") }, "the members event")

	dave := nodes[1].handshakeAs(t, "dave")
	nodes[1].mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+dave+`","subscription":"/chat/lobby"}`)
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return seen("join:dave") }, "dave's join from node 1")

	nodes[2].die() // carol's node
	for i, n := range nodes[:2] {
		bayeuxtest.Eventually(t, 5*time.Second, func() bool { return n.users(t, "/chat/lobby") == "ana,bob,dave" },
			fmt.Sprintf("node %d drops the dead node's member", i))
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return seen("leave:carol") }, "carol's leave")

	// A fence published after the leave: no second leave came before it.
	if err := nodes[1].srv.Publish(context.Background(), "/presence/chat/lobby", map[string]string{"action": "fence"}); err != nil {
		t.Fatal(err)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return seen("fence:") }, "the fence")
	leaves := 0
	for _, g := range got {
		if g == "leave:carol" {
			leaves++
		}
	}
	if leaves != 1 {
		t.Fatalf("carol left %d times: %q", leaves, got)
	}
}

// TestPresenceAfterStoreReset: after Redis lost its data, each node writes
// its members again.
func TestPresenceAfterStoreReset(t *testing.T) {
	rs := startRedis(t)
	nodes := startPresenceCluster(t, rs, 2)
	for i, user := range []string{"ana", "bob"} {
		id := nodes[i].handshakeAs(t, user)
		nodes[i].mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/chat/lobby"}`)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return nodes[0].users(t, "/chat/lobby") == "ana,bob" }, "both members")
	raw := rs.raw()
	if err := raw.Do(context.Background(), raw.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return nodes[1].users(t, "/chat/lobby") == "ana,bob" }, "both members again")
}
