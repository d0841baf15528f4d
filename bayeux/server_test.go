package bayeux

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// testServer runs a Server on a loopback httptest server.
type testServer struct {
	*Server
	http *httptest.Server
	url  string // the mount URL
}

func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := bayeuxtest.Serve(t, srv, srv.Shutdown)
	return &testServer{Server: srv, http: hs, url: hs.URL + srv.cfg.Mount}
}

// post sends body as JSON and returns the parsed reply array.
func (ts *testServer) post(t *testing.T, body string) gjson.Result {
	t.Helper()
	return bayeuxtest.MustPost(t, ts.url, body)
}

func (ts *testServer) handshake(t *testing.T) string {
	t.Helper()
	r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket"]}`)
	id := r.Get("0.clientId").String()
	if id == "" {
		t.Fatalf("handshake failed: %s", r.Raw)
	}
	return id
}

func (ts *testServer) subscribe(t *testing.T, id, pattern string) {
	t.Helper()
	r := ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"`+pattern+`"}`)
	if !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe %s: %s", pattern, r.Raw)
	}
}

func (ts *testServer) publish(t *testing.T, channel, data string) {
	t.Helper()
	r := ts.post(t, `{"channel":"`+channel+`","data":`+data+`}`)
	if !r.Get("0.successful").Bool() {
		t.Fatalf("publish: %s", r.Raw)
	}
}

func connectBody(id string, extra string) string {
	return `{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling"` + extra + `}`
}

// dial opens a WebSocket to the server.
func (ts *testServer) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	return bayeuxtest.DialWebSocket(t, ts.url, nil)
}

func readFrame(t *testing.T, c *websocket.Conn, within time.Duration) gjson.Result {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading frame: %v", err)
	}
	r := gjson.ParseBytes(b)
	if !r.IsArray() {
		t.Fatalf("frame is not a JSON array: %s", b)
	}
	return r
}

func TestCancelledLongPollKeepsMessages(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 5 * time.Second})
	id := ts.handshake(t)
	ts.subscribe(t, id, "/a")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url, strings.NewReader(connectBody(id, "")))
		req.Header.Set("Content-Type", "application/json")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	bayeuxtest.Eventually(t, 5*time.Second, ts.sessions.get(id).waiting, "the connect held")
	cancel() // the client goes away while its connect is held
	<-done
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return !ts.sessions.get(id).waiting() }, "the cancelled connect let go")

	ts.publish(t, "/a", `"kept"`)
	r := ts.post(t, connectBody(id, `,"advice":{"timeout":0}`))
	if got := r.Get(`#(channel=="/a").data`).String(); got != "kept" {
		t.Fatalf("message published after the cancelled poll was lost: %s", r.Raw)
	}
}

func TestSecondConnectAnswersTheFirst(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 10 * time.Second})
	id := ts.handshake(t)
	first := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		ts.post(t, connectBody(id, `,"id":"a"`))
		first <- time.Since(start)
	}()
	bayeuxtest.Eventually(t, 5*time.Second, ts.sessions.get(id).waiting, "the first connect held")
	go ts.post(t, connectBody(id, `,"id":"b"`))
	select {
	case d := <-first:
		if d > 5*time.Second {
			t.Fatalf("first connect answered after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the older held connect was not answered when a newer one arrived")
	}
}

func TestSlowConsumerIsDropped(t *testing.T) {
	ts := newTestServer(t, Config{MaxQueueBytes: 1000})
	id := ts.handshake(t)
	ts.subscribe(t, id, "/slow")
	big := `"` + strings.Repeat("x", 300) + `"`
	for range 4 { // the fourth message passes 1000 queued bytes
		ts.publish(t, "/slow", big)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.sessions.get(id) == nil }, "the slow consumer dropped")
	r := ts.post(t, connectBody(id, ""))
	if r.Get("0.error").String() != "401:"+id+":Unknown client" || r.Get("0.advice.reconnect").String() != "handshake" {
		t.Fatalf("connect after the drop: %s", r.Raw)
	}
	if n := ts.index.Count("/slow"); n != 0 {
		t.Fatalf("dropped session still has %d subscription(s) in the index", n)
	}
}

func TestSlowConsumerHeldConnectGetsHandshakeAdvice(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 10 * time.Second})
	id := ts.handshake(t)
	sess := ts.sessions.get(id)
	answered := make(chan gjson.Result, 1)
	go func() { answered <- ts.post(t, connectBody(id, `,"id":"h"`)) }()
	bayeuxtest.Eventually(t, 5*time.Second, sess.waiting, "the connect held")
	ts.end(sess, EndSlow)
	select {
	case r := <-answered:
		if r.Get("0.successful").Bool() || r.Get("0.id").String() != "h" || r.Get("0.error").String() != errSlowConsumer ||
			r.Get("0.advice.reconnect").String() != "handshake" || !r.Get("0.advice.interval").Exists() {
			t.Fatalf("held connect of a dropped session: %s", r.Raw)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("held connect not answered when its session was dropped")
	}
}

func TestSessionCollection(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 200 * time.Millisecond})
	idle := ts.handshake(t)
	ts.subscribe(t, idle, "/gc")
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.sessions.get(idle) == nil }, "the idle session collected")
	if ts.index.Count("/gc") != 0 {
		t.Fatal("collected session left its subscription")
	}
}

func TestWebSocketRebindAndReload(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 5 * time.Second})
	ws := ts.dial(t)
	// Handshake on the socket (CometD style), connect, subscribe.
	send := func(c *websocket.Conn, s string) {
		if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(ws, `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"1"}]`)
	id1 := readFrame(t, ws, 2*time.Second).Get("0.clientId").String()
	send(ws, `[{"channel":"/meta/connect","clientId":"`+id1+`","connectionType":"websocket","id":"2","advice":{"timeout":0}},{"channel":"/meta/subscribe","clientId":"`+id1+`","subscription":"/r","id":"3"}]`)
	if r := readFrame(t, ws, 2*time.Second); r.Get("#").Int() != 2 {
		t.Fatalf("replies: %s", r.Raw)
	}
	// Re-handshake over HTTP and connect the NEW id on the same socket.
	id2 := ts.handshake(t)
	ts.subscribe(t, id2, "/r2")
	send(ws, `[{"channel":"/meta/connect","clientId":"`+id2+`","connectionType":"websocket","id":"4","advice":{"timeout":0}}]`)
	if r := readFrame(t, ws, 2*time.Second); r.Get("0.id").String() != "4" {
		t.Fatalf("connect reply: %s", r.Raw)
	}
	ts.publish(t, "/r2", `"to-new-session"`)
	if r := readFrame(t, ws, 2*time.Second); r.Get("0.data").String() != "to-new-session" {
		t.Fatalf("delivery after rebind: %s", r.Raw)
	}
	// A known clientId on a brand-new socket, without a handshake (reload).
	ws2 := ts.dial(t)
	send(ws2, `[{"channel":"/meta/connect","clientId":"`+id2+`","connectionType":"websocket","id":"5","advice":{"timeout":0}}]`)
	if r := readFrame(t, ws2, 2*time.Second); !r.Get("0.successful").Bool() {
		t.Fatalf("reload connect: %s", r.Raw)
	}
	ts.publish(t, "/r2", `"after-reload"`)
	if r := readFrame(t, ws2, 2*time.Second); r.Get("0.data").String() != "after-reload" {
		t.Fatalf("delivery after reload: %s", r.Raw)
	}
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	ts := newTestServer(t, Config{})
	const clients, msgs = 8, 50
	var wg sync.WaitGroup
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = ts.handshake(t)
		ts.subscribe(t, ids[i], "/c/**")
	}
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range msgs {
				ts.Server.deliver(&Publication{Channel: "/c/x", Message: []byte(`{"channel":"/c/x","data":[` + string(rune('0'+p)) + `,` + strings.Repeat("1", i%3+1) + `]}`)})
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		s := ts.sessions.get(id)
		if n, _ := s.drain(discard); n != 4*msgs {
			t.Fatalf("session %s has %d queued, want %d", id, n, 4*msgs)
		}
	}
}

// TestStreamOwnsDeliveries: while an EventSource stream is bound, an HTTP
// connect leaves the queue to the stream (like faye), so messages never
// split between two paths.
func TestStreamOwnsDeliveries(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 5 * time.Second})
	id := ts.handshake(t)
	ts.subscribe(t, id, "/es")
	sess := ts.Session(id)
	es := &esStream{wake: make(chan struct{}, 1), done: make(chan struct{})}
	if _, ok := sess.bind(es); !ok {
		t.Fatal("bind failed")
	}
	ts.publish(t, "/es", `1`)
	r := ts.post(t, `{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"eventsource"}`)
	if r.Get(`#(channel=="/es")`).Exists() || !r.Get("0.successful").Bool() {
		t.Fatalf("the connect took the stream's message: %s", r.Raw)
	}
	if !sess.pending() {
		t.Fatal("the message left the queue without the stream")
	}
	// A held long-poll is not woken for the stream's messages, but takes
	// them over when the stream goes away.
	answered := make(chan gjson.Result, 1)
	go func() { answered <- ts.post(t, connectBody(id, "")) }()
	bayeuxtest.Eventually(t, 5*time.Second, sess.waiting, "the long-poll held")
	ts.publish(t, "/es", `2`)
	// Not answered for 200ms: a bounded wait for something that must not
	// happen.
	select {
	case r := <-answered:
		t.Fatalf("a held connect was answered while a stream was bound: %s", r.Raw)
	case <-time.After(200 * time.Millisecond):
	}
	sess.unbind(es)
	select {
	case r := <-answered:
		if r.Get("#(channel==\"/es\")#").Get("#").Int() != 2 {
			t.Fatalf("after the stream went away: %s", r.Raw)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the held connect did not take over when the stream went away")
	}
}

// TestOversizedInput: a body over MaxMessageSize gets 413 and a frame over
// it closes the socket with 1009 (message too big); the server goes on
// serving.
func TestOversizedInput(t *testing.T) {
	ts := newTestServer(t, Config{MaxMessageSize: 1024})
	big := `{"channel":"/x","data":"` + strings.Repeat("x", 2048) + `"}`
	res, err := http.Post(ts.url, "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: status %d, want 413", res.StatusCode)
	}
	ws := ts.dial(t)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("oversized frame: %v, want close 1009", err)
	}
	ts.handshake(t) // still serving
}
