package bayeux

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// body posts a JSON body and returns the response body as is.
func (ts *testServer) body(t *testing.T, body string) []byte {
	t.Helper()
	status, b := ts.rawPost(t, "application/json", body)
	if status != http.StatusOK {
		t.Fatalf("POST %s: status %d: %s", body, status, b)
	}
	return []byte(b)
}

// settled returns the server's Stats once no HTTP request is being
// answered: a client may read a response before its handler has counted
// what it wrote, never after the handler returned.
func (ts *testServer) settled(t *testing.T) Stats {
	t.Helper()
	var st Stats
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		st = ts.Stats()
		return st.Connections.LongPolling == 0 && st.Connections.CallbackPolling == 0
	}, "no request in progress")
	return st
}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"402:clientId:Missing required parameter", 402},
		{"401:abc:Unknown client", 401},
		{"429::Too many", 429},
		{"403::Banned", 403},
		{"999::x", 999},
		{"000::x", 0},
		{"Banned", 0},
		{"40::short", 0},
		{"4a2::x", 0},
		{"4021:x", 0},
		{"", 0},
	}
	for _, tc := range tests {
		if got := errorCode(tc.in); got != tc.want {
			t.Errorf("errorCode(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestReceivedKind(t *testing.T) {
	tests := []struct {
		channel string
		want    messageKind
	}{
		{channels.MetaHandshake, kindHandshake},
		{channels.MetaConnect, kindConnect},
		{channels.MetaSubscribe, kindSubscribe},
		{channels.MetaUnsubscribe, kindUnsubscribe},
		{channels.MetaDisconnect, kindDisconnect},
		{"/meta/subscribe/x", kindOtherMeta},
		{"/meta", kindOtherMeta},
		{"/metadata", kindPublish},
		{"/chat/a", kindPublish},
		{"/service/echo", kindPublish},
		{"", kindPublish},
	}
	for _, tc := range tests {
		if got := receivedKind(tc.channel); got != tc.want {
			t.Errorf("receivedKind(%q) = %d, want %d", tc.channel, got, tc.want)
		}
	}
}

// TestStatsLongPolling runs a known exchange over long-polling and checks
// every figure it moves, bytes included.
func TestStatsLongPolling(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 5 * time.Second})
	a, b := ts.handshake(t), ts.handshake(t)
	ts.subscribe(t, a, "/s/x")
	ts.subscribe(t, b, "/s/x")
	ts.subscribe(t, b, "/s/*")
	for i := range 3 {
		ts.publish(t, "/s/x", strconv.Itoa(i))
	}
	// Errors: 402 (no data), 405 (invalid channel), 401 (unknown client),
	// 403 (a meta channel that is no command).
	for _, body := range []string{
		`{"channel":"/s/x"}`,
		`{"channel":"/s/*","data":1}`,
		connectBody("nobody", ""),
		`{"channel":"/meta/subscribe/x","clientId":"` + a + `"}`,
	} {
		if r := ts.post(t, body); r.Get("0.successful").Bool() {
			t.Fatalf("%s succeeded: %s", body, r.Raw)
		}
	}
	// a takes its 3 messages; b keeps its own 3 (two of its subscriptions
	// match, a message comes once).
	body := ts.body(t, connectBody(a, `,"advice":{"timeout":0}`))
	items := gjson.ParseBytes(body).Array()
	if len(items) != 4 {
		t.Fatalf("connect answered %s", body)
	}
	messageBytes := 0
	for _, it := range items[1:] { // the connect reply comes first
		messageBytes += len(it.Raw)
	}

	st := ts.settled(t)
	if st.Sessions != 2 || st.Subscriptions != 3 || st.Channels != 2 || st.HeldConnects != 0 {
		t.Errorf("gauges: %d sessions, %d subscriptions, %d channels, %d held", st.Sessions, st.Subscriptions, st.Channels, st.HeldConnects)
	}
	if want := int64(messageBytes); st.QueuedBytes != want {
		t.Errorf("QueuedBytes %d, want %d (b's 3 messages)", st.QueuedBytes, want)
	}
	wantReceived := MessageCounts{Handshake: 2, Connect: 2, Subscribe: 3, OtherMeta: 1, Publish: 5}
	if st.Received != wantReceived {
		t.Errorf("Received %+v, want %+v", st.Received, wantReceived)
	}
	if st.Published != 3 || st.Handshakes != 2 {
		t.Errorf("Published %d, Handshakes %d; want 3, 2", st.Published, st.Handshakes)
	}
	if want := (TransportCounts{LongPolling: 3}); st.Delivered != want {
		t.Errorf("Delivered %+v, want %+v", st.Delivered, want)
	}
	if want := map[int]uint64{401: 1, 402: 1, 403: 1, 405: 1}; fmt.Sprint(st.Errors) != fmt.Sprint(want) {
		t.Errorf("Errors %v, want %v", st.Errors, want)
	}
	if st.BytesWritten.LongPolling < uint64(len(body)) || st.BytesWritten.WebSocket != 0 {
		t.Errorf("BytesWritten %+v, want at least %d on long-polling", st.BytesWritten, len(body))
	}

	// The bytes are exactly the bodies written: one more request adds its
	// body's length.
	before := ts.settled(t).BytesWritten.LongPolling
	body = ts.body(t, connectBody(b, `,"advice":{"timeout":0}`))
	st = ts.settled(t)
	if got := st.BytesWritten.LongPolling - before; got != uint64(len(body)) {
		t.Errorf("a %d-byte response counted %d bytes", len(body), got)
	}
	if st.Delivered.LongPolling != 6 || st.QueuedBytes != 0 {
		t.Errorf("after b's connect: Delivered %+v, QueuedBytes %d", st.Delivered, st.QueuedBytes)
	}

	// A held connect is a held connect and an open long-polling request.
	done := make(chan []byte, 1)
	go func() {
		res, err := http.Post(ts.url, "application/json", strings.NewReader(connectBody(a, "")))
		if err != nil {
			done <- nil
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- b
	}()
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		st := ts.Stats()
		return st.HeldConnects == 1 && st.Connections.LongPolling == 1
	}, "one held connect on one open long-poll")
	ts.publish(t, "/s/x", `"wake"`)
	if got := <-done; !strings.Contains(string(got), `"wake"`) {
		t.Fatalf("held connect answered %s", got)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		st := ts.Stats()
		return st.HeldConnects == 0 && st.Connections.LongPolling == 0
	}, "no held connect, no open request")
}

// TestStatsWebSocket counts a socket, its deliveries and the bytes of its
// frames, headers included.
func TestStatsWebSocket(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := ts.dial(t)
	frames := 0 // bytes of the frames read, as the server wrote them
	send := func(s string) {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	read := func() gjson.Result {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		frames += len(b) + frameHeader(len(b))
		return gjson.ParseBytes(b)
	}
	send(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`)
	id := read().Get("0.clientId").String()
	send(`[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/w"},` +
		`{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","advice":{"timeout":0}}]`)
	if r := read(); !r.Get("0.successful").Bool() || !r.Get("1.successful").Bool() {
		t.Fatalf("subscribe and connect: %s", r.Raw)
	}
	send(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket"}]`) // held
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.Stats().HeldConnects == 1 }, "the connect held")
	ts.publish(t, "/w", "1")
	ts.publish(t, "/w", "2")
	got := 0
	for got < 2 {
		got += len(read().Array())
	}
	// The server counts a flush once its write returned, which may be
	// after the frames arrived here.
	var st Stats
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		st = ts.Stats()
		return st.Delivered.WebSocket == 2 && st.BytesWritten.WebSocket == uint64(frames)
	}, "the frames read counted")
	if st.Connections.WebSocket != 1 || st.Delivered.LongPolling != 0 {
		t.Errorf("Connections %+v, Delivered %+v", st.Connections, st.Delivered)
	}
	want := MessageCounts{Handshake: 1, Connect: 2, Subscribe: 1, Publish: 2}
	if st.Received != want {
		t.Errorf("Received %+v, want %+v", st.Received, want)
	}
	_ = c.Close()
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.Stats().Connections.WebSocket == 0 }, "the socket uncounted")
}

// frameHeader is the size of the header of an unmasked frame with n bytes
// of payload.
func frameHeader(n int) int {
	switch {
	case n < 126:
		return 2
	case n < 1<<16:
		return 4
	}
	return 10
}

// TestStatsEventSourceAndJSONP counts the two other transports.
func TestStatsEventSourceAndJSONP(t *testing.T) {
	ts := newTestServer(t, Config{Ping: -1})
	id := ts.handshake(t)
	ts.subscribe(t, id, "/e")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/"+id, nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.Stats().Connections.EventSource == 1 }, "the stream counted")
	ts.publish(t, "/e", `"one"`)
	var read strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(read.String(), `"one"`) {
		n, err := res.Body.Read(buf)
		read.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended: %v (read %q)", err, read.String())
		}
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		st := ts.Stats()
		return st.Delivered.EventSource == 1 && st.BytesWritten.EventSource == uint64(read.Len())
	}, "one delivery and the stream's bytes counted")

	q := url.Values{"jsonp": {"cb"}, "message": {`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"callback-polling","advice":{"timeout":0}}]`}}
	jr, err := http.Get(ts.url + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(jr.Body)
	jr.Body.Close()
	st := ts.settled(t)
	if !strings.HasPrefix(string(b), "/**/cb(") || st.BytesWritten.CallbackPolling != uint64(len(b)) {
		t.Errorf("JSONP answered %q; counted %d bytes", b, st.BytesWritten.CallbackPolling)
	}
	cancel()
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.Stats().Connections.EventSource == 0 }, "the stream uncounted")
}

// TestStatsEndsAndRejections counts slow consumers, ended sessions and the
// refusals of extensions.
func TestStatsEndsAndRejections(t *testing.T) {
	guard := funcExt{in: func(_ context.Context, m *Message) {
		switch {
		case m.Channel == channels.MetaHandshake && m.ExtString("user") == "banned":
			m.Error = "403::Banned"
		case m.Channel == channels.MetaSubscribe:
			for _, ch := range m.Subscriptions() {
				if strings.HasPrefix(ch, "/secret") {
					m.RejectChannel(ch, "")
				}
			}
		case m.Channel == "/nope":
			m.Error = "Not here"
		}
	}}
	ts := newTestServer(t, Config{MaxQueueBytes: 200, Extensions: []Extension{guard}})
	if r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"user":"banned"}}`); r.Get("0.successful").Bool() {
		t.Fatalf("banned handshake: %s", r.Raw)
	}
	slow, quit := ts.handshake(t), ts.handshake(t)
	if r := ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+slow+`","subscription":["/q","/secret/a","/secret/b"]}`); r.Get("0.successful").Bool() {
		t.Fatalf("secret subscribe: %s", r.Raw)
	}
	if r := ts.post(t, `{"channel":"/nope","data":1}`); r.Get("0.successful").Bool() {
		t.Fatalf("/nope: %s", r.Raw)
	}
	for i := 0; ts.Session(slow) != nil && i < 20; i++ {
		ts.publish(t, "/q", `"`+strings.Repeat("x", 50)+`"`)
	}
	if r := ts.post(t, `{"channel":"/meta/disconnect","clientId":"`+quit+`"}`); !r.Get("0.successful").Bool() {
		t.Fatalf("disconnect: %s", r.Raw)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.Stats().SessionsEnded.Slow == 1 }, "the slow consumer counted")
	st := ts.Stats()
	if want := (EndCounts{Slow: 1, Disconnect: 1}); st.SessionsEnded != want {
		t.Errorf("SessionsEnded %+v, want %+v", st.SessionsEnded, want)
	}
	if want := map[int]uint64{0: 1, 403: 3}; fmt.Sprint(st.Rejections) != fmt.Sprint(want) {
		t.Errorf("Rejections %v, want %v", st.Rejections, want)
	}
	if want := map[int]uint64{0: 1, 403: 2}; fmt.Sprint(st.Errors) != fmt.Sprint(want) {
		t.Errorf("Errors %v, want %v (a reply per message)", st.Errors, want)
	}
}

// TestStatsHistoryAndAck counts replayed messages and re-sent batches.
func TestStatsHistoryAndAck(t *testing.T) {
	ts := historyServer(t, Config{})
	for i := range 4 {
		ts.publish(t, "/h/a", strconv.Itoa(i))
	}
	id := ts.handshake(t)
	if r := ts.subscribeWith(t, id, "/h/a", `{"replay":{"/h/a":-2}}`); !r.Get("successful").Bool() {
		t.Fatalf("replay: %s", r.Raw)
	}
	if got, _ := ts.poll(t, id, "/h/a"); len(got) != 4 {
		t.Fatalf("replayed %v", got)
	}
	if st := ts.settled(t); st.Replayed != 4 || st.Delivered.LongPolling != 4 {
		t.Errorf("Replayed %d, Delivered %+v; want 4 and 4", st.Replayed, st.Delivered)
	}

	r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"ack":true}}`)
	acker := r.Get("0.clientId").String()
	ts.subscribe(t, acker, "/a")
	connect := func(ack int64) int64 {
		r := ts.post(t, connectBody(acker, `,"advice":{"timeout":0},"ext":{"ack":`+strconv.FormatInt(ack, 10)+`}`))
		return r.Get(`#(channel=="/meta/connect").ext.ack`).Int()
	}
	b1 := connect(0)
	ts.publish(t, "/a", "1")
	ts.publish(t, "/a", "2")
	connect(b1) // sends 1 and 2 with batch b1+1
	connect(b1) // that batch was not acknowledged: both again
	st := ts.Stats()
	if st.AckResentBatches != 1 || st.AckResentMessages != 2 {
		t.Errorf("AckResentBatches %d, AckResentMessages %d; want 1, 2", st.AckResentBatches, st.AckResentMessages)
	}
	if st.Delivered.LongPolling != 8 {
		t.Errorf("Delivered %+v, want 8 on long-polling (4 replayed, 2 sent twice)", st.Delivered)
	}
}

// statsEngine is a memory engine that reports figures.
type statsEngine struct {
	Engine
	figures EngineStats
}

func (e *statsEngine) EngineStats() EngineStats { return e.figures }

func TestStatsEngine(t *testing.T) {
	if st := newTestServer(t, Config{}).Stats(); st.Engine != nil {
		t.Errorf("the memory engine reported %+v", *st.Engine)
	}
	e := &statsEngine{Engine: NewMemoryEngine(), figures: EngineStats{RoundTrips: 7, Commands: 9, Errors: 1, Reconnects: 2, Nodes: 3}}
	st := newTestServer(t, Config{Engine: e}).Stats()
	if st.Engine == nil || *st.Engine != e.figures {
		t.Errorf("Engine %v, want %+v", st.Engine, e.figures)
	}
}

// BenchmarkCountersParallel is the counting a published message costs
// at most when it reaches one recipient, from every core at once (the
// worst case: the counters' cache lines move between cores on every add).
// Delivering the message costs tens of microseconds.
func BenchmarkCountersParallel(b *testing.B) {
	var c counters
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.received[receivedKind("/chat/a")].Add(1) // the publisher's message
			c.published.Add(1)
			c.wrote(trWebSocket, 0, 100) // its reply
			c.wrote(trWebSocket, 1, 0)   // the recipient's flush
			c.wrote(trWebSocket, 0, 100)
		}
	})
}
