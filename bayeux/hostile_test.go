package bayeux

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// Regression tests for hostile input: each one failed on a build without
// the limits (issue 10).

// rawPost sends body with content type ct and returns the status and body.
func (ts *testServer) rawPost(t *testing.T, ct, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.url, strings.NewReader(body))
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// unhex returns s with each \xNN replaced by the byte it names, so that
// tests can spell invalid UTF-8 inside raw strings.
func unhex(s string) string {
	return regexp.MustCompile(`\\x[0-9a-f]{2}`).ReplaceAllStringFunc(s, func(h string) string {
		b, _ := strconv.ParseUint(h[2:], 16, 8)
		return string([]byte{byte(b)})
	})
}

// wsSubscriber is a WebSocket client connected and subscribed to channel.
func wsSubscriber(t *testing.T, ts *testServer, channel string) *websocket.Conn {
	t.Helper()
	c := ts.dial(t)
	send := func(s string) {
		if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`)
	id := readFrame(t, c, 5*time.Second).Get("0.clientId").String()
	send(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","advice":{"timeout":0}},` +
		`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"` + channel + `"}]`)
	for subscribed := false; !subscribed; {
		f := readFrame(t, c, 5*time.Second)
		subscribed = f.Get(`#(channel=="/meta/subscribe").successful`).Bool()
	}
	return c
}

// readRaw reads one frame and checks that it is valid UTF-8 text.
func readRaw(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading frame: %v", err)
	}
	if kind != websocket.TextMessage || !utf8.Valid(b) {
		t.Fatalf("frame is not valid UTF-8 text: %q", b)
	}
	return string(b)
}

func TestInvalidUTF8NeverReachesSubscribers(t *testing.T) {
	ts := newTestServer(t, Config{ForwardExt: true}) // ext is repaired too
	sub := wsSubscriber(t, ts, "/x")
	status, body := ts.rawPost(t, "application/json",
		unhex(`[{"channel":"/x","data":"bad \xff\xfe end","ext":{"k":"\xc3"}},{"channel":"/x","data":"fine"}]`))
	if status != 200 || !utf8.ValidString(body) {
		t.Fatalf("publish answered %d %q", status, body)
	}
	if r := gjson.Parse(body); !r.Get("0.successful").Bool() || !r.Get("1.successful").Bool() {
		t.Fatalf("publishes with repaired data must succeed: %s", body)
	}
	var got []string
	for len(got) < 2 {
		f := gjson.Parse(readRaw(t, sub))
		f.ForEach(func(_, m gjson.Result) bool {
			if m.Get("channel").String() == "/x" {
				got = append(got, m.Get("data").String()+"|"+m.Get("ext.k").String())
			}
			return true
		})
	}
	if got[0] != "bad \uFFFD end|\uFFFD" || got[1] != "fine|" {
		t.Fatalf("delivered %q", got)
	}
}

func TestInvalidUTF8IdentifiersAreRefused(t *testing.T) {
	ts := newTestServer(t, Config{})
	id := ts.handshake(t)
	tests := []struct {
		name, msg, wantErr string
	}{
		{"channel", `{"channel":"/x\xff","data":1}`, "405:/x\uFFFD:Invalid channel"},
		{"clientId", `{"channel":"/meta/connect","clientId":"c\xff","connectionType":"long-polling"}`, "401:c\uFFFD:Unknown client"},
		{"id", `{"channel":"/x","data":1,"id":"\xff1"}`, "400:id:Invalid UTF-8"},
		{"subscription", `{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":["/ok","/b\xff"]}`, "405:/b\uFFFD:Invalid channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ct := range []string{"application/json", "text/plain"} {
				body := unhex(tt.msg)
				if ct != "application/json" {
					body = "message=" + url.QueryEscape(body)
				}
				status, got := ts.rawPost(t, ct, body)
				if status != 200 || !utf8.ValidString(got) {
					t.Fatalf("%s: answered %d %q", ct, status, got)
				}
				r := gjson.Parse(got).Get("0")
				if r.Get("successful").Bool() || r.Get("error").String() != tt.wantErr {
					t.Fatalf("%s: reply %s, want error %q", ct, got, tt.wantErr)
				}
			}
		})
	}
	if subs := ts.sessions.get(id).Subscriptions(); len(subs) != 0 {
		t.Fatalf("a refused subscribe subscribed %q", subs)
	}
}

func TestInvalidUTF8OverJSONP(t *testing.T) {
	ts := newTestServer(t, Config{})
	res, err := http.Get(ts.url + "?jsonp=cb&message=" + `%7B%22channel%22%3A%22%2Fx%22%2C%22data%22%3A1%2C%22id%22%3A%22%FF%22%7D`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if !utf8.Valid(b) || !strings.Contains(string(b), "400:id:Invalid UTF-8") {
		t.Fatalf("JSONP answer %q", b)
	}
}

func TestLongChannelsAreRefusedCheaply(t *testing.T) {
	ts := newTestServer(t, Config{MaxMessageSize: 4 << 20})
	id := ts.handshake(t)
	huge := strings.Repeat("/a", 1<<20) // 2 MiB, a million segments: quadratic work would take hours
	tests := []struct {
		name, channel, want string
	}{
		{"length", huge, "longer than 1024 bytes"},
		{"segments", strings.Repeat("/a", 65), "more than 64 segments"},
		{"long meta", "/meta" + huge, "longer than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, msg := range []string{
				`{"channel":"` + tt.channel + `","data":1}`,
				`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"` + tt.channel + `"}`,
			} {
				status, body := ts.rawPost(t, "application/json", msg)
				r := gjson.Parse(body).Get("0")
				if status != 200 || r.Get("successful").Bool() || !strings.HasPrefix(r.Get("error").String(), "405:") ||
					!strings.Contains(r.Get("error").String(), tt.want) {
					t.Fatalf("answered %d %.300s", status, body)
				}
				if len(body) > 2048 {
					t.Fatalf("the reply echoes the whole channel: %d bytes", len(body))
				}
			}
		})
	}
	// At the limits, everything works.
	ok := strings.Repeat("/a", 64)
	ts.subscribe(t, id, ok)
	ts.publish(t, ok, "1")
	if err := ts.Publish(t.Context(), huge, 1); err == nil {
		t.Fatal("Server.Publish accepted an over-long channel")
	}
}

func TestDeepNestingIsRefusedWithoutRecursion(t *testing.T) {
	// With 8 MiB bodies, 6 MB of "[" overflowed the goroutine stack and
	// killed the process.
	ts := newTestServer(t, Config{MaxMessageSize: 8 << 20})
	nested := func(depth int) string {
		return `{"channel":"/x","data":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
	}
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"6 MB of [", strings.Repeat("[", 6<<20), 400},
		{"unterminated string hides nothing", `{"channel":"/x","data":"` + strings.Repeat(`\"[`, 1000), 400},
		{"65 deep", nested(64), 400},
		{"64 deep", nested(63), 200},
		{"brackets in strings do not count", `{"channel":"/x","data":"` + strings.Repeat("[{", 1000) + `"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := ts.rawPost(t, "application/json", tt.body)
			if status != tt.status {
				t.Fatalf("answered %d %.200q, want %d", status, body, tt.status)
			}
			if status == 400 && strings.HasPrefix(tt.name, "6") && !strings.Contains(body, "nested more than 64 deep") {
				t.Fatalf("the 400 does not say what was exceeded: %q", body)
			}
		})
	}
}

func TestDeepFrameIsIgnoredAndTheSocketKept(t *testing.T) {
	ts := newTestServer(t, Config{})
	sub := wsSubscriber(t, ts, "/x")
	if err := sub.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("[", 100000))); err != nil {
		t.Fatal(err)
	}
	ts.publish(t, "/x", `"after"`)
	if f := readRaw(t, sub); !strings.Contains(f, `"after"`) {
		t.Fatalf("got %s", f)
	}
}

func TestBatchLimits(t *testing.T) {
	ts := newTestServer(t, Config{})
	batch := func(n int, msg string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(msg+",", n), ",") + "]"
	}
	status, body := ts.rawPost(t, "application/json", batch(101, `{}`))
	if status != 400 || !strings.Contains(body, "more than 100 messages") {
		t.Fatalf("101 messages: %d %q", status, body)
	}
	// Spread over several form fields, the limit is the same.
	form := "message=" + batch(60, `{}`) + "&message=" + batch(60, `{}`)
	if status, body := ts.rawPost(t, "application/x-www-form-urlencoded", form); status != 400 {
		t.Fatalf("120 messages in two fields: %d %q", status, body)
	}
	if status, body := ts.rawPost(t, "application/json", batch(100, `{}`)); status != 200 || gjson.Get(body, "#").Int() != 100 {
		t.Fatalf("100 messages: %d %.200q", status, body)
	}

	before := ts.Sessions()
	hs := `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`
	_, body = ts.rawPost(t, "application/json", batch(50, hs))
	r := gjson.Parse(body)
	if !r.Get("0.successful").Bool() || r.Get("1.successful").Bool() || r.Get("1.error").String() != errTooManyHandshakes {
		t.Fatalf("50 handshakes in one request: %.300s", body)
	}
	if n := ts.Sessions() - before; n != 1 {
		t.Fatalf("one request created %d sessions", n)
	}
}

func TestBatchLimitClosesWebSocket(t *testing.T) {
	ts := newTestServer(t, Config{MaxBatch: 5})
	c := ts.dial(t)
	if err := c.WriteMessage(websocket.TextMessage, []byte("[{},{},{},{},{},{}]")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, closePolicy) || !strings.Contains(err.Error(), "more than 5 messages") {
		t.Fatalf("read after a 6-message frame: %v", err)
	}
}

// stalledPost sends the headers of a 100-byte POST and only sent of its
// body (plus extra header lines), and returns the answer, which must come
// within 10 s.
func stalledPost(t *testing.T, ts *testServer, sent string, extra ...string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", ts.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /bayeux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n%s\r\n%s",
		strings.Join(extra, ""), sent)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	return res
}

func TestBodyTimeout(t *testing.T) {
	ts := newTestServer(t, Config{BodyTimeout: 200 * time.Millisecond})
	for _, sent := range []string{"", `[{"channel":`} { // nothing, then a drip that stops
		if res := stalledPost(t, ts, sent); res.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("%d bytes sent: status %d, want 408", len(sent), res.StatusCode)
		}
	}
	// Answers given before the body is read do not wait for it either.
	if res := stalledPost(t, ts, "", "Origin: null\r\n"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("refused origin with a stalled body: %d", res.StatusCode)
	}
}

func TestBodyTimeoutDoesNotCutHeldConnects(t *testing.T) {
	ts := newTestServer(t, Config{BodyTimeout: 100 * time.Millisecond, Timeout: 600 * time.Millisecond})
	id := ts.handshake(t)
	r := ts.post(t, connectBody(id, "")) // held well past the body timeout
	if !r.Get("0.successful").Bool() {
		t.Fatalf("held connect: %s", r.Raw)
	}
}

func TestSubscriptionLimit(t *testing.T) {
	ts := newTestServer(t, Config{MaxSubscriptions: 3})
	id := ts.handshake(t)
	r := ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":["/a","/b","/c","/d","/e"]}`)
	if r.Get("0.successful").Bool() || r.Get("0.error").String() != "403:/d:Too many subscriptions (limit 3)" {
		t.Fatalf("subscribe past the limit: %s", r.Raw)
	}
	if subs := ts.sessions.get(id).Subscriptions(); len(subs) != 3 {
		t.Fatalf("subscriptions %q", subs)
	}
	ts.subscribe(t, id, "/a") // again: not a new one
	ts.post(t, `{"channel":"/meta/unsubscribe","clientId":"`+id+`","subscription":"/a"}`)
	ts.subscribe(t, id, "/d")
}

func TestHandshakeRate(t *testing.T) {
	ts := newTestServer(t, Config{HandshakeRate: 0.5, HandshakeBurst: 2, TrustedProxies: mustPrefixes("127.0.0.0/8")})
	hs := `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`
	for i := range 2 {
		if r := ts.post(t, hs); !r.Get("0.successful").Bool() {
			t.Fatalf("handshake %d within the burst: %s", i, r.Raw)
		}
	}
	r := ts.post(t, hs).Get("0")
	if r.Get("successful").Bool() || r.Get("error").String() != errHandshakeRate ||
		r.Get("advice.reconnect").String() != "handshake" || r.Get("advice.interval").Int() < 1000 {
		t.Fatalf("handshake over the rate: %s", r.Raw)
	}
	// Another address has its own budget.
	_, body := ts.rawPostFrom(t, "198.51.100.7", hs)
	if !gjson.Get(body, "0.successful").Bool() {
		t.Fatalf("handshake from another address: %s", body)
	}
}

// rawPostFrom posts body as a client at addr behind a trusted proxy (the
// test server trusts loopback when the config says so).
func (ts *testServer) rawPostFrom(t *testing.T, addr, body string) (int, string) {
	t.Helper()
	return ts.rawPost(t, "application/json", body, "X-Forwarded-For", addr)
}

func TestPublishRate(t *testing.T) {
	ts := newTestServer(t, Config{PublishRate: 0.01, PublishBurst: 2})
	id := ts.handshake(t)
	pub := func(clientID string) gjson.Result {
		cid := ""
		if clientID != "" {
			cid = `,"clientId":"` + clientID + `"`
		}
		return ts.post(t, `{"channel":"/p","data":1`+cid+`}`).Get("0")
	}
	for _, who := range []string{id, ""} { // a session, then anonymous publishes of one address
		pub(who)
		pub(who)
		if r := pub(who); r.Get("successful").Bool() || r.Get("error").String() != "429:/p:Too many publishes - slow down" {
			t.Fatalf("third publish of %q: %s", who, r.Raw)
		}
	}
	if err := ts.Publish(t.Context(), "/p", 1); err != nil {
		t.Fatalf("the server's own publishes are not limited: %v", err)
	}
}

func TestConnectionsPerIP(t *testing.T) {
	ts := newTestServer(t, Config{MaxConnectionsPerIP: 2, Timeout: 5 * time.Second})
	id := ts.handshake(t)
	held := make(chan gjson.Result, 1)
	go func() { held <- ts.post(t, connectBody(id, "")) }()
	bayeuxtest.Eventually(t, 5*time.Second, ts.sessions.get(id).waiting, "the first connection holds a connect")
	ws := ts.dial(t) // the second connection

	status, body := ts.rawPost(t, "application/json", `{}`)
	if status != http.StatusTooManyRequests || !strings.Contains(body, "limit 2") {
		t.Fatalf("third connection: %d %q", status, body)
	}
	// A refused request whose body never comes is answered at once.
	if res := stalledPost(t, ts, ""); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection with a stalled body: %d", res.StatusCode)
	}
	_, res, err := websocket.DefaultDialer.Dial(bayeuxtest.WebSocketURL(ts.url), nil)
	if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection as a WebSocket: %v", err)
	}
	ws.Close() // frees a slot once the server sees it closed
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		status, _ := ts.rawPost(t, "application/json", connectBody(id, `,"advice":{"timeout":0}`))
		return status == 200 // and answers the held connect
	}, "a connection accepted once the socket is closed")
	<-held
}

func TestSessionlessSocketIsClosed(t *testing.T) {
	ts := newTestServer(t, Config{SocketSessionTimeout: 300 * time.Millisecond})
	idle := ts.dial(t)
	live := wsSubscriber(t, ts, "/x")
	for range 3 { // keep-alives do not count as a session
		_ = idle.WriteMessage(websocket.TextMessage, []byte("[]"))
	}
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := idle.ReadMessage()
	if !websocket.IsCloseError(err, closePolicy) {
		t.Fatalf("a socket without a session: %v", err)
	}
	ts.publish(t, "/x", `"still here"`)
	if f := readRaw(t, live); !strings.Contains(f, "still here") {
		t.Fatalf("connected socket got %s", f)
	}
}

func TestClientAddr(t *testing.T) {
	trusted := mustPrefixes("10.0.0.0/8", "127.0.0.1/32")
	tests := []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:5000", "", "192.0.2.1"},
		{"192.0.2.1:5000", "203.0.113.9", "192.0.2.1"}, // untrusted peer: header ignored
		{"10.1.2.3:80", "203.0.113.9", "203.0.113.9"},
		{"10.1.2.3:80", "198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"},
		{"10.1.2.3:80", "garbage", "10.1.2.3"},
		{"10.1.2.3:80", "", "10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::"},
		{"[::ffff:192.0.2.5]:1", "", "192.0.2.5"},
	}
	for _, tt := range tests {
		r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := limitAddr(resolveClientIP(r, trusted)).String(); got != tt.want {
			t.Errorf("%s via %q: %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
}

func TestThrottleForgetsIdleAddresses(t *testing.T) {
	th := newThrottle(&Config{MaxConnectionsPerIP: 1, HandshakeRate: 1000, HandshakeBurst: 1})
	a := peerAddr("192.0.2.1:1")
	if !th.open(a) || th.open(a) {
		t.Fatal("the second connection of the address was admitted")
	}
	ok, _ := th.allowHandshake(a)
	if !ok {
		t.Fatal("first handshake refused")
	}
	th.sweep(time.Now())
	if countAddrs(th) == 0 {
		t.Fatal("an address with an open connection was forgotten")
	}
	th.closed(a)
	th.sweep(time.Now().Add(time.Second))
	if n := countAddrs(th); n != 0 {
		t.Fatalf("%d idle addresses kept", n)
	}
}

func mustPrefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func countAddrs(th *throttle) int {
	n := 0
	for i := range th.shards {
		n += len(th.shards[i].m)
	}
	return n
}

func TestCORSNullOrigin(t *testing.T) {
	hs := `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`
	open := newTestServer(t, Config{})
	status, _ := open.rawPost(t, "text/plain", "message="+hs, "Origin", "null")
	if status != http.StatusForbidden {
		t.Fatalf("Origin null without an allow-list: %d", status)
	}
	req, _ := http.NewRequest(http.MethodOptions, open.url, nil)
	req.Header.Set("Origin", "null")
	req.Header.Set("Access-Control-Request-Method", "POST")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight from Origin null: %d %v", res.StatusCode, res.Header)
	}
	if _, _, err := websocket.DefaultDialer.Dial(bayeuxtest.WebSocketURL(open.url), http.Header{"Origin": {"null"}}); err == nil {
		t.Fatal("WebSocket from Origin null accepted without an allow-list")
	}
	// Other origins keep faye's permissive default; "null" can be listed.
	if status, _ := open.rawPost(t, "text/plain", "message="+hs, "Origin", "https://app.example"); status != 200 {
		t.Fatalf("Origin https://app.example: %d", status)
	}
	listed := newTestServer(t, Config{AllowedOrigins: []string{"null"}})
	if status, _ := listed.rawPost(t, "text/plain", "message="+hs, "Origin", "null"); status != 200 {
		t.Fatalf("listed Origin null: %d", status)
	}
}

// TestStalledSubscriberDoesNotStallPublisher: deliveries to few sessions
// are written on the publisher's goroutine (socket.flushNow), which must
// never wait for a client. One subscriber stops reading while a WebSocket
// publisher sends 16 MiB to its channel (more than the kernel buffers): every publish is still answered,
// a reading subscriber on its own channel gets every message in order, and
// the stalled one is dropped as a slow consumer.
func TestStalledSubscriberDoesNotStallPublisher(t *testing.T) {
	ts := newTestServer(t, Config{MaxQueueBytes: 1 << 20, Timeout: 10 * time.Second})
	stalled := wsSubscriber(t, ts, "/u/stalled")
	if tc, ok := stalled.UnderlyingConn().(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // it fills up at once; it is never read again
	}
	stalledID := ""
	for _, sess := range ts.LocalSessions(nil) {
		stalledID = sess.ID() // the only session so far
	}
	reader := wsSubscriber(t, ts, "/u/reader")
	got := make(chan string, 300)
	go func() {
		defer close(got)
		for {
			_ = reader.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := reader.ReadMessage()
			if err != nil {
				return
			}
			gjson.ParseBytes(b).ForEach(func(_, m gjson.Result) bool {
				if m.Get("channel").String() == "/u/reader" {
					got <- m.Get("data").String()
				}
				return true
			})
		}
	}()
	pub := ts.dial(t)
	id := ts.handshake(t)
	big := `"` + strings.Repeat("x", 64<<10) + `"`
	for i := range 256 {
		frame := `[{"channel":"/u/stalled","clientId":"` + id + `","data":` + big + `,"id":"s` + strconv.Itoa(i) + `"},` +
			`{"channel":"/u/reader","clientId":"` + id + `","data":"` + strconv.Itoa(i) + `","id":"r` + strconv.Itoa(i) + `"}]`
		if err := pub.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		// Both replies, in one frame; the publisher is never kept waiting.
		if r := readFrame(t, pub, 5*time.Second); !r.Get("0.successful").Bool() || !r.Get("1.successful").Bool() {
			t.Fatalf("publish %d answered %s", i, r.Raw)
		}
	}
	for i := range 256 {
		select {
		case d := <-got:
			if d != strconv.Itoa(i) {
				t.Fatalf("the reading subscriber got %q, want %d", d, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the reading subscriber got %d of 256 messages", i)
		}
	}
	bayeuxtest.Eventually(t, 10*time.Second, func() bool { return ts.sessions.get(stalledID) == nil },
		"the stalled subscriber dropped as a slow consumer")
}
