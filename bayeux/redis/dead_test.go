package redis

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/rueidis"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// goneBound is how soon after a node's death the other nodes must answer
// its sessions' requests as those of unknown clients: the confirmation
// window (goneAfter) and a check, with room for a loaded test machine.
const goneBound = 3 * time.Second

// die ends the node's engine as the death of its process would: its Redis
// connections close, and nothing it stored is deleted (its heartbeat and
// session claims stay until they expire). The HTTP server goes on, unused.
func (n *bayouNode) die() {
	e := n.engine
	e.state.Store(stateClosed)
	e.cancel()
	e.wg.Wait()
	e.client.Close()
}

// wsClient is a WebSocket to a node, its frames read into a channel.
type wsClient struct {
	conn   *websocket.Conn
	frames chan gjson.Result
	closed chan error // yields the read error once the socket is closed
}

func dialWS(t *testing.T, n *bayouNode) *wsClient {
	t.Helper()
	c := &wsClient{conn: bayeuxtest.DialWebSocket(t, n.url, nil), frames: make(chan gjson.Result, 64), closed: make(chan error, 1)}
	go func() {
		for {
			_, b, err := c.conn.ReadMessage()
			if err != nil {
				c.closed <- err
				return
			}
			c.frames <- gjson.ParseBytes(b)
		}
	}()
	return c
}

func (c *wsClient) send(t *testing.T, frame string) {
	t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
}

// reply waits up to within for the reply whose id is id.
func (c *wsClient) reply(t *testing.T, id string, within time.Duration) gjson.Result {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case f := <-c.frames:
			for _, v := range f.Array() {
				if v.Get("id").String() == id {
					return v
				}
			}
		case err := <-c.closed:
			t.Fatalf("socket closed waiting for reply %s: %v", id, err)
		case <-deadline.C:
			t.Fatalf("no reply %s within %v", id, within)
		}
	}
}

func wsConnect(id, msgID, extra string) string {
	return `[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","id":"` + msgID + `"` + extra + `}]`
}

// unknownClient reports whether r is a 401 "unknown client" reply that
// tells the client to handshake again.
func unknownClient(r gjson.Result) bool {
	return !r.Get("successful").Bool() && strings.HasPrefix(r.Get("error").String(), "401:") &&
		r.Get("advice.reconnect").String() == "handshake"
}

// TestDeadOwner kills, as kill -9 would, the node that owns the sessions
// of clients that talk to other nodes: a long-polling client and a
// WebSocket client that connect after the death, and one of each whose
// connect is held on the dead node at that moment. Within a few seconds
// each is told its client is unknown (401, handshake advice), rather than
// getting 503s (or nothing) until the dead node's heartbeat expires
// (NodeTTL, 10s). A socket that forwarded no connect there is closed.
func TestDeadOwner(t *testing.T) {
	rs := startRedis(t)
	var seen seenConnects
	nodes := startCluster(t, rs, 3, 20*time.Second, func(i int, c *bayeux.Config) { // connects held 20s
		if i == 0 {
			c.Extensions = append(c.Extensions, &seen)
		}
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	lp, ws, heldLP, heldWS, quiet := a.handshake(t), a.handshake(t), a.handshake(t), a.handshake(t), a.handshake(t)
	for _, id := range []string{lp, heldLP} {
		if r := b.mustPost(t, connect(id, `,"advice":{"timeout":0}`)); !r.Get("0.successful").Bool() {
			t.Fatalf("first connect through b: %s", r.Raw)
		}
	}
	sock, heldSock, quietSock := dialWS(t, c), dialWS(t, c), dialWS(t, c)
	quietSock.send(t, `[{"channel":"/meta/subscribe","clientId":"`+quiet+`","subscription":"/q","id":"s1"}]`)
	if r := quietSock.reply(t, "s1", 5*time.Second); !r.Get("successful").Bool() {
		t.Fatalf("subscribe through c: %s", r.Raw)
	}
	for _, s := range []struct {
		c  *wsClient
		id string
	}{{sock, ws}, {heldSock, heldWS}} {
		s.c.send(t, wsConnect(s.id, "c1", `,"advice":{"timeout":0}`))
		if r := s.c.reply(t, "c1", 5*time.Second); !r.Get("successful").Bool() {
			t.Fatalf("first connect through c: %s", r.Raw)
		}
	}

	// The held connects: forwarded to a, which holds them.
	heldAnswer := make(chan gjson.Result, 1)
	go func() {
		r, err := b.post(connect(heldLP, ""))
		if err != nil {
			r = gjson.Parse(`[{"error":"` + err.Error() + `"}]`)
		}
		heldAnswer <- r.Get("0")
	}()
	heldSock.send(t, wsConnect(heldWS, "c2", ""))
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return seen.count(heldLP) == 2 && seen.count(heldWS) == 2 },
		"both second connects forwarded to the owner")

	a.die()
	died := time.Now()

	// A long-polling connect through b after the death.
	var last string
	for {
		r, err := b.post(connect(lp, `,"advice":{"timeout":0}`))
		if err == nil && unknownClient(r.Get("0")) {
			break
		}
		if err != nil {
			last = err.Error()
		} else {
			last = r.Raw
		}
		if time.Since(died) > goneBound {
			t.Fatalf("long-polling connect through a non-owner not answered 401 within %v; last answer: %s", goneBound, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("long-polling connect through a non-owner: 401 %v after the owner's death", time.Since(died).Round(time.Millisecond))

	// A WebSocket connect through c after the death.
	sock.send(t, wsConnect(ws, "c2", ""))
	if r := sock.reply(t, "c2", goneBound); !unknownClient(r) {
		t.Fatalf("websocket connect after the death: %s", r.Raw)
	}
	t.Logf("websocket connect through a non-owner: 401 %v after the owner's death", time.Since(died).Round(time.Millisecond))

	// The held long-polling connect.
	select {
	case r := <-heldAnswer:
		if !unknownClient(r) {
			t.Fatalf("held long-polling connect: %s", r.Raw)
		}
	case <-time.After(goneBound - time.Since(died)):
		t.Fatalf("held long-polling connect not answered within %v of the death", goneBound)
	}
	t.Logf("held long-polling connect: 401 %v after the owner's death", time.Since(died).Round(time.Millisecond))

	// The held WebSocket connect.
	if r := heldSock.reply(t, "c2", goneBound-time.Since(died)); !unknownClient(r) {
		t.Fatalf("held websocket connect: %s", r.Raw)
	}
	t.Logf("held websocket connect: 401 %v after the owner's death", time.Since(died).Round(time.Millisecond))

	// The socket that forwarded no connect is closed.
	select {
	case <-quietSock.closed:
	case f := <-quietSock.frames:
		t.Fatalf("socket without a connect got %s, want it closed", f.Raw)
	case <-time.After(goneBound - time.Since(died)):
		t.Fatalf("socket without a connect not closed within %v", goneBound)
	}

	// Sessions on live nodes are unaffected, and the clients start over.
	id := b.handshake(t)
	if r := c.mustPost(t, connect(id, `,"advice":{"timeout":0}`)); !r.Get("0.successful").Bool() {
		t.Fatalf("connect of a new session through c: %s", r.Raw)
	}
}

// seenConnects counts the connects a node receives, per clientId.
type seenConnects struct {
	bayeux.NopExtension
	mu  sync.Mutex
	ids map[string]int
}

func (s *seenConnects) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel == "/meta/connect" {
		s.mu.Lock()
		if s.ids == nil {
			s.ids = map[string]int{}
		}
		s.ids[m.ClientID]++
		s.mu.Unlock()
	}
}

func (s *seenConnects) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// TestOwnerPubSubReconnect: a node whose pub/sub connection is killed
// comes back within milliseconds; meanwhile requests forwarded to it wait
// for it (Send's confirmation window) instead of failing, and it keeps its
// sessions.
func TestOwnerPubSubReconnect(t *testing.T) {
	rs := startRedis(t)
	nodes := startCluster(t, rs, 2, 20*time.Second)
	a, b := nodes[0], nodes[1]
	raw := rs.raw()
	ctx := context.Background()
	id := a.handshake(t)
	sock := dialWS(t, b)
	listening := func() bool {
		n, err := raw.Do(ctx, raw.B().PubsubNumsub().Channel(a.engine.keys.node+"n0").Build()).AsIntMap()
		return err == nil && n[a.engine.keys.node+"n0"] == 1
	}
	for i := range 3 {
		// Kill every pub/sub connection, and send at once: the
		// forwarded connects likely reach Redis before a listens again.
		if err := raw.Do(ctx, raw.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if r := b.mustPost(t, connect(id, `,"advice":{"timeout":0}`)); !r.Get("0.successful").Bool() {
			t.Fatalf("kill %d: long-polling connect through b: %s", i, r.Raw)
		}
		sock.send(t, wsConnect(id, "w"+string(rune('0'+i)), `,"advice":{"timeout":0}`))
		if r := sock.reply(t, "w"+string(rune('0'+i)), 5*time.Second); !r.Get("successful").Bool() {
			t.Fatalf("kill %d: websocket connect through b: %s", i, r.Raw)
		}
		bayeuxtest.Eventually(t, 5*time.Second, listening, "a listening again")
	}
	if owner, err := b.engine.SessionOwner(ctx, id); err != nil || owner != "n0" {
		t.Fatalf("owner after the reconnects: %q, %v", owner, err)
	}
	if err := b.engine.Send(ctx, "n0", []byte(`{"t":"ping"}`)); errors.Is(err, bayeux.ErrNodeGone) {
		t.Fatalf("Send to a live node: %v", err)
	}
}

// TestSendConfirmsGone plays the other nodes with a raw client: a
// heartbeat key, a session claim and a SUBSCRIBE to the node's channel.
func TestSendConfirmsGone(t *testing.T) {
	rs := startRedis(t)
	raw := rs.raw()
	ctx := context.Background()
	e := newNode(t, rs, "sender", func(c *Config) { c.OpTimeout = 500 * time.Millisecond })
	setBeat := func(node, v string) {
		t.Helper()
		if err := raw.Do(ctx, raw.B().Set().Key(e.keys.alive+node).Value(v).Px(time.Minute).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(node, id string) {
		t.Helper()
		if err := raw.Do(ctx, raw.B().Set().Key(e.keys.sess+id).Value(node).Px(time.Minute).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	owner := func(id string) string {
		t.Helper()
		o, err := e.SessionOwner(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	// listen subscribes a dedicated connection to node's channel and
	// returns the messages it receives.
	listen := func(node string) <-chan string {
		t.Helper()
		dc, cancel := raw.Dedicate()
		t.Cleanup(cancel)
		got := make(chan string, 16)
		dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) { got <- m.Message }})
		if err := dc.Do(ctx, dc.B().Subscribe().Channel(e.keys.node+node).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("a node that listens again within the window gets the message", func(t *testing.T) {
		setBeat("late", "1")
		claim("late", "s-late")
		done := make(chan error, 1)
		began := time.Now()
		go func() { done <- e.Send(ctx, "late", []byte("hello")) }()
		bayeuxtest.Eventually(t, 5*time.Second, func() bool { return e.suspected("late") }, "late suspected")
		got := listen("late")
		if err := <-done; err != nil {
			t.Fatalf("Send = %v", err)
		}
		if m := <-got; m != "hello" {
			t.Fatalf("received %q", m)
		}
		if o := owner("s-late"); o != "late" {
			t.Fatalf("owner = %q", o)
		}
		t.Logf("Send waited %v for the node to listen again", time.Since(began).Round(time.Millisecond))
	})

	t.Run("a node that does not listen is gone after the window", func(t *testing.T) {
		setBeat("ghost", "1")
		claim("ghost", "s-ghost")
		if o := owner("s-ghost"); o != "ghost" {
			t.Fatalf("owner before = %q", o)
		}
		began := time.Now()
		err := e.Send(ctx, "ghost", []byte("x"))
		took := time.Since(began)
		if !errors.Is(err, bayeux.ErrNodeGone) || !errors.Is(err, ErrNoNode) {
			t.Fatalf("Send = %v, want ErrNodeGone and ErrNoNode", err)
		}
		if took < goneAfter || took > goneAfter+time.Second {
			t.Fatalf("verdict after %v, want about %v", took, goneAfter)
		}
		// SessionOwner knows at once, though the heartbeat is current.
		if o := owner("s-ghost"); o != "" {
			t.Fatalf("owner of a gone node's session = %q", o)
		}
		began = time.Now()
		if err := e.Send(ctx, "ghost", []byte("x")); !errors.Is(err, bayeux.ErrNodeGone) {
			t.Fatalf("second Send = %v", err)
		}
		if took := time.Since(began); took > goneAfter/2 {
			t.Fatalf("second Send took %v, want it at once", took)
		}
		// It beats again: it is alive again (once the cache expires).
		setBeat("ghost", "2")
		listen("ghost")
		bayeuxtest.Eventually(t, 5*time.Second, func() bool { return owner("s-ghost") == "ghost" }, "ghost alive again")
		if err := e.Send(ctx, "ghost", []byte("x")); err != nil {
			t.Fatalf("Send once it is back = %v", err)
		}
	})

	t.Run("concurrent Sends share one verdict", func(t *testing.T) {
		setBeat("crowd", "1")
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		checks := commandCalls(t, raw)["pubsub|numsub"]
		began := time.Now()
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- e.Send(ctx, "crowd", []byte("x"))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, bayeux.ErrNodeGone) {
				t.Fatalf("Send = %v", err)
			}
		}
		if took := time.Since(began); took > goneAfter+time.Second {
			t.Fatalf("20 Sends took %v", took)
		}
		// One check every goneCheckInterval for the window, whatever
		// the number of Sends waiting.
		if n := commandCalls(t, raw)["pubsub|numsub"] - checks; n > int64(goneAfter/goneCheckInterval)+2 {
			t.Fatalf("%d PUBSUB NUMSUB for 20 Sends to one node", n)
		}
	})

	t.Run("no verdict while Redis does not answer", func(t *testing.T) {
		setBeat("mute", "1")
		claim("mute", "s-mute")
		done := make(chan error, 1)
		go func() { done <- e.Send(ctx, "mute", []byte("x")) }()
		bayeuxtest.Eventually(t, 5*time.Second, func() bool { return e.suspected("mute") }, "mute suspected")
		rs.signal(syscall.SIGSTOP)
		var err error
		select {
		case err = <-done:
		case <-time.After(goneAfter + 5*time.Second):
			rs.signal(syscall.SIGCONT)
			t.Fatal("Send still waiting on an unresponsive Redis")
		}
		rs.signal(syscall.SIGCONT)
		if err == nil || errors.Is(err, bayeux.ErrNodeGone) {
			t.Fatalf("Send = %v, want an error other than ErrNodeGone", err)
		}
		if o := owner("s-mute"); o != "mute" {
			t.Fatalf("owner = %q", o)
		}
	})
}

// suspected reports whether Send is waiting for a verdict on node.
func (e *Engine) suspected(node string) bool {
	e.nodes.aliveMu.Lock()
	defer e.nodes.aliveMu.Unlock()
	return e.nodes.suspects[node] != nil
}
