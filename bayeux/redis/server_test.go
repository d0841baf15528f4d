package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// bayouNode is a Bayou server on a Redis engine, on a loopback listener.
type bayouNode struct {
	srv    *bayeux.Server
	engine *Engine
	url    string
}

// startCluster starts n Bayou servers sharing srv; tweak, when given,
// adjusts the configuration of server i.
func startCluster(t *testing.T, srv *redisServer, n int, timeout time.Duration, tweak ...func(i int, c *bayeux.Config)) []*bayouNode {
	t.Helper()
	var nodes []*bayouNode
	for i := range n {
		e, err := New(context.Background(), Config{URL: srv.URL(), NodeID: fmt.Sprintf("n%d", i), Logger: testLogger(t),
			OpTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cfg := bayeux.Config{Engine: e, Timeout: timeout, Logger: testLogger(t)}
		for _, f := range tweak {
			f(i, &cfg)
		}
		b, err := bayeux.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs := bayeuxtest.Serve(t, b, b.Shutdown)
		nodes = append(nodes, &bayouNode{srv: b, engine: e, url: hs.URL + "/bayeux"})
	}
	return nodes
}

// post sends a JSON body and returns the reply array; it does not fail
// the test, so that any goroutine may call it.
func (n *bayouNode) post(body string) (gjson.Result, error) {
	return bayeuxtest.Post(context.Background(), n.url, body)
}

func (n *bayouNode) mustPost(t *testing.T, body string) gjson.Result {
	t.Helper()
	return bayeuxtest.MustPost(t, n.url, body)
}

func (n *bayouNode) handshake(t *testing.T) string {
	t.Helper()
	r := n.mustPost(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket"]}`)
	id := r.Get("0.clientId").String()
	if id == "" {
		t.Fatalf("handshake: %s", r.Raw)
	}
	return id
}

func connect(id, extra string) string {
	return `{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling"` + extra + `}`
}

// seqTracker checks that each publisher's messages arrive once and in order.
type seqTracker struct {
	mu   sync.Mutex
	next map[int64]int64
	err  error
}

func (s *seqTracker) add(v gjson.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, seq := v.Get("data.p").Int(), v.Get("data.seq").Int()
	if s.next == nil {
		s.next = map[int64]int64{}
	}
	if seq != s.next[p] && s.err == nil {
		s.err = fmt.Errorf("publisher %d: got seq %d, want %d", p, seq, s.next[p])
	}
	s.next[p] = seq + 1
}

func (s *seqTracker) count(p int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next[p]
}

// TestClusterOfServers runs three Bayou nodes on one Redis: a long-polling
// client whose requests go to a random node each time, a WebSocket client
// whose session was created on another node, and a wildcard subscriber,
// while two publishers send through random nodes. Everyone gets every
// message once, in order per publisher.
func TestClusterOfServers(t *testing.T) {
	rs := startRedis(t)
	nodes := startCluster(t, rs, 3, 2*time.Second)
	rnd := rand.New(rand.NewPCG(3, 4))
	pick := func() *bayouNode { return nodes[rnd.IntN(len(nodes))] }

	// The alternating long-poller.
	lp := nodes[0].handshake(t)
	if r := pick().mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+lp+`","subscription":"/feed/**"}`); !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	// The WebSocket client: handshake on node 0, socket on node 2.
	wsID := nodes[0].handshake(t)
	ws := bayeuxtest.DialWebSocket(t, nodes[2].url, nil)
	frames := make(chan gjson.Result, 1024)
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				close(frames)
				return
			}
			frames <- gjson.ParseBytes(b)
		}
	}()
	var wmu sync.Mutex
	write := func(s string) error {
		wmu.Lock()
		defer wmu.Unlock()
		return ws.WriteMessage(websocket.TextMessage, []byte(s))
	}
	if err := write(`[{"channel":"/meta/connect","clientId":"` + wsID + `","connectionType":"websocket","id":"c1","advice":{"timeout":0}},` +
		`{"channel":"/meta/subscribe","clientId":"` + wsID + `","subscription":"/feed/*","id":"s1"}]`); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	for deadline := time.After(5 * time.Second); !acked["c1"] || !acked["s1"]; {
		select {
		case f := <-frames:
			f.ForEach(func(_, v gjson.Result) bool { acked[v.Get("id").String()] = v.Get("successful").Bool(); return true })
		case <-deadline:
			t.Fatalf("socket replies: %v", acked)
		}
	}
	if err := write(`[{"channel":"/meta/connect","clientId":"` + wsID + `","connectionType":"websocket","id":"c2"}]`); err != nil {
		t.Fatal(err)
	}

	const perPublisher = 200
	var pubErr error
	var pubMu sync.Mutex
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(p), 9))
			for i := range perPublisher {
				n := nodes[r.IntN(len(nodes))]
				res, err := n.post(fmt.Sprintf(`{"channel":"/feed/p%d","data":{"p":%d,"seq":%d}}`, p, p, i))
				if err == nil && !res.Get("0.successful").Bool() {
					err = fmt.Errorf("publish: %s", res.Raw)
				}
				if err != nil {
					pubMu.Lock()
					pubErr = err
					pubMu.Unlock()
					return
				}
			}
		}()
	}

	var lpSeq, wsSeq seqTracker
	wsDone := make(chan struct{})
	go func() {
		defer close(wsDone)
		for f := range frames {
			f.ForEach(func(_, v gjson.Result) bool {
				if v.Get("data").Exists() {
					wsSeq.add(v)
				} else if v.Get("channel").String() == "/meta/connect" {
					go func() {
						_ = write(`[{"channel":"/meta/connect","clientId":"` + wsID + `","connectionType":"websocket"}]`)
					}()
				}
				return true
			})
			if wsSeq.count(0) == perPublisher && wsSeq.count(1) == perPublisher {
				return
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for (lpSeq.count(0) < perPublisher || lpSeq.count(1) < perPublisher) && time.Now().Before(deadline) {
		r := pick().mustPost(t, connect(lp, ""))
		if !r.Get("0.successful").Bool() {
			t.Fatalf("connect: %s", r.Raw)
		}
		r.ForEach(func(_, v gjson.Result) bool {
			if v.Get("data").Exists() {
				lpSeq.add(v)
			}
			return true
		})
		if lpSeq.err != nil {
			t.Fatal(lpSeq.err)
		}
	}
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	select {
	case <-wsDone:
	case <-time.After(10 * time.Second):
	}
	for name, s := range map[string]*seqTracker{"long-polling": &lpSeq, "websocket": &wsSeq} {
		if s.err != nil {
			t.Fatalf("%s: %v", name, s.err)
		}
		if s.count(0) != perPublisher || s.count(1) != perPublisher {
			t.Fatalf("%s received %d and %d of %d per publisher", name, s.count(0), s.count(1), perPublisher)
		}
	}
	t.Logf("long-polling client alternating nodes and WebSocket client on a non-owner node each got 2x%d messages, in order", perPublisher)

	// Cluster-wide counts (reported every second).
	var sessions int
	var subs map[string]int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		sessions, subs, _ = nodes[1].srv.Counts(context.Background())
		if sessions == 2 && subs["/feed/**"] == 1 && subs["/feed/*"] == 1 {
			break
		}
	}
	if sessions != 2 || subs["/feed/**"] != 1 || subs["/feed/*"] != 1 {
		t.Fatalf("cluster counts: %d sessions, %v", sessions, subs)
	}
}

// TestServersSurviveRedisRestart: Redis goes away in the middle of a
// stream. Publishes during the outage fail with an error the publisher
// sees; afterwards sessions are still known on every node and messages flow
// again without any client action.
func TestServersSurviveRedisRestart(t *testing.T) {
	rs := startRedis(t)
	nodes := startCluster(t, rs, 2, 2*time.Second)
	id := nodes[0].handshake(t)
	if r := nodes[1].mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/s"}`); !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	publish := func(i int) (bool, string) {
		r, err := nodes[1].post(fmt.Sprintf(`{"channel":"/s","data":%d}`, i))
		if err != nil {
			return false, err.Error()
		}
		return r.Get("0.successful").Bool(), r.Get("0.error").String()
	}
	if ok, e := publish(0); !ok {
		t.Fatalf("publish before the outage: %s", e)
	}

	rs.kill()
	var failure string
	for end := time.Now().Add(3 * time.Second); failure == "" && time.Now().Before(end); {
		if ok, e := publish(1); !ok {
			failure = e
		}
	}
	if !strings.HasPrefix(failure, "407:/s:") {
		t.Fatalf("publish during the outage: want a 407 error, got %q", failure)
	}
	// While Redis is down, a request for the session on a non-owner node
	// is answered 503 (retry later), not "unknown client".
	if _, err := nodes[1].post(connect(id, `,"advice":{"timeout":0}`)); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("connect through a non-owner during the outage: %v, want a 503", err)
	}
	rs.start()

	// Messages flow again by themselves, once the owner has re-recorded
	// its sessions (within a heartbeat) and both nodes listen again (a
	// forwarded request answered while the other node still re-opens its
	// pub/sub connection may be lost: the client gets a 504 and retries).
	bayeuxtest.Eventually(t, 10*time.Second, func() bool {
		owner, err := nodes[1].engine.SessionOwner(context.Background(), id)
		return err == nil && owner != "" && nodes[0].engine.listening() && nodes[1].engine.listening()
	}, "the owner's claim back and both nodes listening")
	var got []int64
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		ok, _ := publish(2)
		r := nodes[1].mustPost(t, connect(id, `,"advice":{"timeout":500}`))
		if !r.Get("0.successful").Bool() {
			t.Fatalf("connect after the restart: %s", r.Raw)
		}
		r.ForEach(func(_, v gjson.Result) bool {
			if v.Get("channel").String() == "/s" {
				got = append(got, v.Get("data").Int())
			}
			return true
		})
		if ok && len(got) > 0 && got[len(got)-1] == 2 {
			break
		}
	}
	if len(got) == 0 || got[len(got)-1] != 2 {
		t.Fatalf("after the restart the subscriber got %v", got)
	}
	t.Logf("publishes failed during the outage with %q; delivery resumed after the restart", failure)
}

// TestCommandsPerPublishDoNotGrowWithSubscribers counts, with INFO
// commandstats, the PUBLISH commands Redis runs per published message on a
// 3-node cluster with 10 and then 1,000 subscribers (spread over the
// nodes): the count is the same, one per expansion of the channel.
func TestCommandsPerPublishDoNotGrowWithSubscribers(t *testing.T) {
	rs := startRedis(t)
	nodes := startCluster(t, rs, 3, 5*time.Second)
	raw := rs.raw()
	const publishes = 50
	subscribe := func(n int) {
		for i := range n {
			node := nodes[i%len(nodes)]
			id := node.handshake(t)
			if r := node.mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/cnt/x"}`); !r.Get("0.successful").Bool() {
				t.Fatalf("subscribe: %s", r.Raw)
			}
		}
	}
	measure := func() float64 {
		before := publishCalls(t, raw)
		for i := range publishes {
			if r := nodes[i%len(nodes)].mustPost(t, fmt.Sprintf(`{"channel":"/cnt/x","data":%d}`, i)); !r.Get("0.successful").Bool() {
				t.Fatalf("publish: %s", r.Raw)
			}
		}
		return float64(publishCalls(t, raw)-before) / publishes
	}
	subscribe(10)
	at10 := measure()
	subscribe(990)
	at1000 := measure()
	t.Logf("PUBLISH commands per published message on /cnt/x: %.2f with 10 subscribers, %.2f with 1,000", at10, at1000)
	// /cnt/x expands to /**, /cnt/**, /cnt/* and /cnt/x.
	if at10 != 4 || at1000 != 4 {
		t.Fatalf("PUBLISH per publish: %.2f at 10 subscribers, %.2f at 1,000; want 4 and 4", at10, at1000)
	}
}

// userExt gives a session the identity of ext.user at handshake.
type userExt struct{ bayeux.NopExtension }

func (userExt) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel == "/meta/handshake" && m.Session != nil {
		if u := m.ExtString("user"); u != "" {
			m.Session.SetIdentity(&bayeux.Identity{User: u})
		}
	}
}

// handshakeAs handshakes with ext.user set to user ("" for an anonymous
// session).
func (n *bayouNode) handshakeAs(t *testing.T, user string) string {
	t.Helper()
	ext := ""
	if user != "" {
		ext = `,"ext":{"user":"` + user + `"}`
	}
	r := n.mustPost(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]`+ext+`}`)
	id := r.Get("0.clientId").String()
	if id == "" {
		t.Fatalf("handshake: %s", r.Raw)
	}
	return id
}

// receivedUntilFence connects id on n (without waiting) until the message
// with data "fence" arrives on channel, and returns the data received on
// channel, fence included.
func (n *bayouNode) receivedUntilFence(t *testing.T, id, channel string) []string {
	t.Helper()
	return bayeuxtest.UntilFence(t, 10*time.Second, func() gjson.Result {
		return n.mustPost(t, connect(id, `,"advice":{"timeout":0}`))
	}, channel)
}

// TestPublishToAudienceOnEveryNode runs three Bayou nodes, each with a
// session of ana, one of bob and an anonymous one (identities set by an
// extension at handshake). PublishTo(Audience{Users: ana}) on one node
// reaches ana's sessions on all three nodes and nobody else, and is not
// kept in the channel's history; SessionsOf lists ana's sessions on every
// node from any node.
func TestPublishToAudienceOnEveryNode(t *testing.T) {
	rs := startRedis(t)
	nodes := startCluster(t, rs, 3, 2*time.Second, func(_ int, c *bayeux.Config) {
		c.Extensions = []bayeux.Extension{userExt{}}
		c.History = []bayeux.HistoryRule{{Pattern: "/n/**", Size: 10}}
	})
	type member struct {
		node     int
		id, user string
	}
	var members []member
	for i, n := range nodes {
		for _, user := range []string{"ana", "bob", ""} {
			id := n.handshakeAs(t, user)
			if r := n.mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/n/x"}`); !r.Get("0.successful").Bool() {
				t.Fatalf("subscribe: %s", r.Raw)
			}
			members = append(members, member{i, id, user})
		}
	}
	ctx := context.Background()
	if err := nodes[1].srv.PublishTo(ctx, "/n/x", "for ana", bayeux.Audience{Users: []string{"ana"}}); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].srv.PublishTo(ctx, "/n/x", "for the nameless", bayeux.Audience{Users: []string{""}}); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].srv.Publish(ctx, "/n/x", "fence"); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		want := []string{"fence"}
		if m.user == "ana" {
			want = []string{"for ana", "fence"}
		}
		if got := nodes[m.node].receivedUntilFence(t, m.id, "/n/x"); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("user %q on node %d received %q, want %q", m.user, m.node, got, want)
		}
	}
	pubs, _, err := nodes[2].srv.History(ctx, "/n/x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 1 || !strings.Contains(string(pubs[0].Message), "fence") {
		t.Fatalf("history holds %d publications, want the fence only", len(pubs))
	}

	var want []bayeux.SessionInfo
	for _, m := range members {
		if m.user == "ana" {
			want = append(want, bayeux.SessionInfo{ID: m.id, User: "ana", Node: fmt.Sprintf("n%d", m.node)})
		}
	}
	for i, n := range nodes {
		got, err := n.srv.SessionsOf(ctx, "ana")
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("SessionsOf(ana) on node %d = %v, %v; want %v", i, got, err, want)
		}
	}
	if got, err := nodes[0].srv.SessionsOf(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Fatalf("SessionsOf(nobody) = %v, %v", got, err)
	}
}
