package bayeux

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// fakeHub connects in-process Cluster engines, standing in for Redis so that
// the server's forwarding is tested on its own. Each node receives
// publications and node messages in order on one goroutine, like the Redis
// engine's subscriber.
type fakeHub struct {
	mu       sync.Mutex
	nodes    map[string]*fakeNode
	sessions map[string]string
	counts   map[string]map[string]int
}

type fakeNode struct {
	hub      *fakeHub
	id       string
	inbox    chan func()
	deliver  func(*Publication)
	handler  func([]byte)
	patterns map[string]int
	done     chan struct{}
}

func newFakeHub() *fakeHub {
	return &fakeHub{nodes: map[string]*fakeNode{}, sessions: map[string]string{}, counts: map[string]map[string]int{}}
}

func (h *fakeHub) node(id string) *fakeNode {
	n := &fakeNode{hub: h, id: id, inbox: make(chan func(), 4096), patterns: map[string]int{}, done: make(chan struct{})}
	h.mu.Lock()
	h.nodes[id] = n
	h.mu.Unlock()
	return n
}

func (n *fakeNode) Start(ctx context.Context, deliver func(*Publication)) error {
	n.deliver = deliver
	go func() {
		for {
			select {
			case f := <-n.inbox:
				f()
			case <-n.done:
				return
			}
		}
	}()
	return nil
}

func (n *fakeNode) Publish(_ context.Context, p *Publication) error {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	for _, other := range n.hub.nodes {
		for pat := range other.patterns {
			if channels.Match(pat, p.Channel) {
				o := other
				o.inbox <- func() { o.deliver(p) }
				break
			}
		}
	}
	return nil
}

func (n *fakeNode) Subscribe(_ context.Context, pattern string) error {
	n.hub.mu.Lock()
	n.patterns[pattern]++
	n.hub.mu.Unlock()
	return nil
}

func (n *fakeNode) Unsubscribe(_ context.Context, pattern string) error {
	n.hub.mu.Lock()
	if n.patterns[pattern]--; n.patterns[pattern] <= 0 {
		delete(n.patterns, pattern)
	}
	n.hub.mu.Unlock()
	return nil
}

func (n *fakeNode) Close() error {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	if _, ok := n.hub.nodes[n.id]; ok {
		delete(n.hub.nodes, n.id)
		close(n.done)
	}
	return nil
}

func (n *fakeNode) NodeID() string { return n.id }

func (n *fakeNode) ClaimSession(_ context.Context, id string, _ time.Duration) error {
	n.hub.mu.Lock()
	n.hub.sessions[id] = n.id
	n.hub.mu.Unlock()
	return nil
}

func (n *fakeNode) ReleaseSession(_ context.Context, id string) error {
	n.hub.mu.Lock()
	if n.hub.sessions[id] == n.id {
		delete(n.hub.sessions, id)
	}
	n.hub.mu.Unlock()
	return nil
}

func (n *fakeNode) SessionOwner(_ context.Context, id string) (string, error) {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	owner := n.hub.sessions[id]
	if _, alive := n.hub.nodes[owner]; !alive {
		return "", nil
	}
	return owner, nil
}

func (n *fakeNode) Send(_ context.Context, node string, msg []byte) error {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	o, ok := n.hub.nodes[node]
	if !ok {
		return fmt.Errorf("node %s is gone", node)
	}
	o.inbox <- func() { o.handler(msg) }
	return nil
}

func (n *fakeNode) HandleNodeMessages(h func([]byte)) { n.handler = h }

func (n *fakeNode) LiveNodes(context.Context) ([]string, error) {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	ids := make([]string, 0, len(n.hub.nodes))
	for id := range n.hub.nodes {
		ids = append(ids, id)
	}
	return ids, nil
}

func (n *fakeNode) ReportCounts(_ context.Context, sessions int, subs map[string]int) error {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	c := map[string]int{"": sessions}
	for p, k := range subs {
		c[p] = k
	}
	n.hub.counts[n.id] = c
	return nil
}

func (n *fakeNode) Counts(context.Context) (int, map[string]int, error) {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	total, subs := 0, map[string]int{}
	for id, c := range n.hub.counts {
		if _, alive := n.hub.nodes[id]; !alive {
			continue
		}
		for p, k := range c {
			if p == "" {
				total += k
			} else {
				subs[p] += k
			}
		}
	}
	return total, subs, nil
}

// newTestCluster starts n servers on one fake hub.
func newTestCluster(t *testing.T, n int, cfg Config) []*testServer {
	hub := newFakeHub()
	var nodes []*testServer
	for i := range n {
		c := cfg
		c.Engine = hub.node(fmt.Sprintf("node%d", i))
		nodes = append(nodes, newTestServer(t, c))
	}
	return nodes
}

// TestClusterAlternatingLongPoll: a long-polling client whose requests go
// to a random node each time (no sticky sessions) receives every message
// once, in order per publisher, while two publishers on other nodes publish.
func TestClusterAlternatingLongPoll(t *testing.T) {
	nodes := newTestCluster(t, 3, Config{Timeout: 2 * time.Second})
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func() *testServer { return nodes[rnd.IntN(len(nodes))] }

	id := nodes[0].handshake(t)
	if r := pick().post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/feed/**"}`); !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe through another node: %s", r.Raw)
	}
	const perPublisher = 150
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPublisher {
				nodes[1+p].publish(t, fmt.Sprintf("/feed/p%d", p), fmt.Sprintf(`{"p":%d,"seq":%d}`, p, i))
				if i%25 == 0 {
					// Pacing, not a wait: spreads the publishes over
					// several of the client's polls.
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	next := [2]int{}
	deadline := time.Now().Add(20 * time.Second)
	for (next[0] < perPublisher || next[1] < perPublisher) && time.Now().Before(deadline) {
		r := pick().post(t, connectBody(id, ""))
		if !r.Get("0.successful").Bool() {
			t.Fatalf("connect: %s", r.Raw)
		}
		r.ForEach(func(_, v gjson.Result) bool {
			if !v.Get("data").Exists() {
				return true
			}
			p, seq := v.Get("data.p").Int(), int(v.Get("data.seq").Int())
			if seq != next[p] {
				t.Fatalf("publisher %d: got seq %d, want %d (lost, duplicated or out of order)", p, seq, next[p])
			}
			next[p]++
			return true
		})
	}
	wg.Wait()
	if next[0] != perPublisher || next[1] != perPublisher {
		t.Fatalf("received %v of %d per publisher", next, perPublisher)
	}
	if c := nodes[2].post(t, `{"channel":"/meta/disconnect","clientId":"`+id+`"}`); !c.Get("0.successful").Bool() {
		t.Fatalf("disconnect through another node: %s", c.Raw)
	}
	if nodes[0].Session(id) != nil {
		t.Fatal("the owner still has the session after a forwarded disconnect")
	}
}

// TestClusterCancelledForwardedPoll: a forwarded held connect whose client
// goes away leaves the messages queued on the owner.
func TestClusterCancelledForwardedPoll(t *testing.T) {
	nodes := newTestCluster(t, 2, Config{Timeout: 5 * time.Second})
	id := nodes[0].handshake(t)
	nodes[0].subscribe(t, id, "/q")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, nodes[1].url, strings.NewReader(connectBody(id, "")))
		req.Header.Set("Content-Type", "application/json")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	owner := nodes[0].Session(id)
	bayeuxtest.Eventually(t, 5*time.Second, owner.waiting, "the owner holds the forwarded connect")
	cancel()
	<-done
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return !owner.waiting() }, "the owner lets go of the cancelled connect")
	nodes[1].publish(t, "/q", `"kept"`)
	bayeuxtest.Eventually(t, 5*time.Second, owner.pending, "the publication queued on the owner")
	r := nodes[1].post(t, connectBody(id, `,"advice":{"timeout":0}`))
	if r.Get(`#(channel=="/q").data`).String() != "kept" {
		t.Fatalf("after a cancelled forwarded poll: %s", r.Raw)
	}
}

// TestClusterWebSocketOnAnotherNode: a session created on node 0 (faye's
// HTTP handshake) is served by a WebSocket on node 1.
func TestClusterWebSocketOnAnotherNode(t *testing.T) {
	nodes := newTestCluster(t, 2, Config{Timeout: 3 * time.Second})
	id := nodes[0].handshake(t)
	ws := nodes[1].dial(t)
	send := func(s string) {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","id":"1","advice":{"timeout":0}}]`)
	if r := readFrame(t, ws, 3*time.Second); r.Get("0.id").String() != "1" || !r.Get("0.successful").Bool() {
		t.Fatalf("connect reply: %s", r.Raw)
	}
	send(`[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/w","id":"2"}]`)
	if r := readFrame(t, ws, 3*time.Second); r.Get("0.id").String() != "2" || !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe reply: %s", r.Raw)
	}
	nodes[1].publish(t, "/w", `"over the cluster"`)
	if r := readFrame(t, ws, 3*time.Second); r.Get("0.data").String() != "over the cluster" {
		t.Fatalf("delivery: %s", r.Raw)
	}
	send(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","id":"3"}]`)
	if r := readFrame(t, ws, 5*time.Second); r.Get("0.id").String() != "3" {
		t.Fatalf("held connect answer: %s", r.Raw)
	}
	// Closing the socket on node 1 unbinds the remote socket on node 0.
	ws.Close()
	owner := nodes[0].Session(id)
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return !owner.bound() }, "the owner unbinds the remote socket")
}

func TestClusterCounts(t *testing.T) {
	nodes := newTestCluster(t, 3, Config{})
	for i, n := range nodes {
		for range i + 1 {
			id := n.handshake(t)
			n.subscribe(t, id, "/c")
		}
	}
	var sessions int
	var subs map[string]int
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sessions, subs, _ = nodes[0].Counts(context.Background())
		if sessions == 6 && subs["/c"] == 6 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("cluster counts: %d sessions, %v", sessions, subs)
}

func TestClusterUnknownSession(t *testing.T) {
	nodes := newTestCluster(t, 2, Config{})
	r := nodes[1].post(t, connectBody("nope", ""))
	if !strings.HasPrefix(r.Get("0.error").String(), "401:nope:") {
		t.Fatalf("connect of an unknown session: %s", r.Raw)
	}
}

func TestClusterDeliverAndDisconnect(t *testing.T) {
	nodes := newTestCluster(t, 2, Config{})
	id := nodes[0].handshake(t)
	if err := nodes[1].Deliver(t.Context(), id, "/direct", "via node 1", WithExt(`{"k":1}`)); err != nil {
		t.Fatal(err)
	}
	owner := nodes[0].Session(id)
	bayeuxtest.Eventually(t, 5*time.Second, owner.pending, "the delivery from node 1 queued on the owner")
	r := nodes[0].post(t, connectBody(id, `,"advice":{"timeout":0}`))
	if m := r.Get(`#(channel=="/direct")`); m.Get("data").String() != "via node 1" || m.Get("ext.k").Int() != 1 {
		t.Fatalf("delivery from another node: %s", r.Raw)
	}
	if err := nodes[1].Disconnect(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return nodes[0].Session(id) == nil }, "the owner ends the session disconnected through node 1")
	if err := nodes[1].Deliver(t.Context(), "nope", "/x", 1); err == nil {
		t.Fatal("Deliver to an unknown client succeeded")
	}
}
