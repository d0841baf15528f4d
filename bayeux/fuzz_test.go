package bayeux

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// Fuzz targets for the hardening against hostile input (limits.go). Whatever
// arrives, the server must not panic nor answer 5xx, must emit only valid
// UTF-8 and valid JSON, must refuse nesting and batches over the limits, and
// must do work and produce output in proportion to its input.
//
// `go test` runs each target on its seeds and on the corpus committed under
// testdata/fuzz/<Target>/; `make fuzz` (scripts/fuzz.sh) explores further.

// Output bounds. Every field of a message is decoded from its own stretch
// of the input and is never longer than that JSON text (escapes only
// shorten; numbers are kept as written), except that repairing invalid
// UTF-8 turns each run of invalid bytes into the 3 bytes of U+FFFD. So a
// field is at most 3 times its input bytes. A reply echoes a field at most
// twice (in its own member and inside the error text, such as
// "405:<channel>:Invalid channel"), and escaping a raw U+2028 turns 3 bytes
// into 6, which stays within the same factor 3. Hence fieldFactor and
// echoFactor; the rest of a reply is fixed text.
const (
	// fieldFactor bounds a parsed field's bytes per input byte.
	fieldFactor = 3
	// parsedFactor bounds a parsed message's bytes per input byte: its
	// fields, and Message.invalid, which repeats one of them.
	parsedFactor = 2 * fieldFactor
	// echoFactor bounds the reply bytes per input byte: 2 echoes of 3.
	echoFactor = 2 * fieldFactor
	// parsedPerMessage bounds the fixed text of Message.invalid ("405:",
	// ":Invalid channel" and the like).
	parsedPerMessage = 64
	// replyPerMessage bounds the fixed text of one reply. The longest are
	// refused connects and handshakes with their advice (about 160 bytes)
	// and the one handshake reply of a batch (about 280 bytes, counted in
	// replyPerRequest: every later handshake of the batch gets a short
	// refusal).
	replyPerMessage = 192
	// replyPerRequest bounds what a response adds once: the array, the
	// first handshake's reply, a JSONP wrapper with its callback (at most
	// 256 bytes).
	replyPerRequest = 1024
)

// fuzzMaxMessageSize is the Config.MaxMessageSize of the fuzzed servers.
const fuzzMaxMessageSize = 1 << 20

// handshakeMsg is a handshake every server accepts.
const handshakeMsg = `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket"]}`

// batchSeeds returns inputs that exercise the parser and every limit:
// valid messages of each kind, invalid UTF-8 in each field, nesting at and
// past the limit, batches at and past the limit, long channels, escapes.
func batchSeeds() [][]byte {
	nested := func(depth int) string {
		return `{"channel":"/x","data":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
	}
	batch := func(n int, msg string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(msg+",", n), ",") + "]"
	}
	seeds := []string{
		// Valid messages.
		handshakeMsg,
		`[` + handshakeMsg + `]`,
		`[{"channel":"/meta/connect","clientId":"abc","connectionType":"long-polling","advice":{"timeout":0}}]`,
		`[{"channel":"/meta/connect","clientId":"abc","connectionType":"websocket","id":"2"}]`,
		`{"channel":"/meta/subscribe","clientId":"abc","subscription":["/a","/b/*","/c/**"],"id":3}`,
		`{"channel":"/meta/unsubscribe","clientId":"abc","subscription":"/a"}`,
		`{"channel":"/meta/disconnect","clientId":"abc"}`,
		`[{"channel":"/chat/room","data":{"text":"hi","n":[1,2.5,-3e4,true,null]},"id":"4","ext":{"auth":"t"}}]`,
		`{"channel":"/service/echo","data":"x"}`,
		`{"channel":"/meta/foo"}`,
		`{"channel":"/meta/subscribe/x","clientId":"abc","subscription":"/a"}`,
		`[` + handshakeMsg + `,` + handshakeMsg + `,{"channel":"/x","data":1}]`,
		// Fields of unexpected types.
		`{"channel":1,"clientId":2,"id":{"a":[1]},"version":3,"supportedConnectionTypes":4,"connectionType":5}`,
		`{"channel":"/meta/handshake","version":true,"supportedConnectionTypes":[1,{},[],null,"websocket"]}`,
		`{"channel":null,"data":null,"ext":null,"id":null,"subscription":null}`,
		`{"channel":1e5,"clientId":-1.5e-7,"version":1.0,"connectionType":2E+2,"supportedConnectionTypes":[1e1]}`,
		`{"channel":"/meta/subscribe","clientId":"abc","subscription":[1,{},["/a"]]}`,
		`{"channel":"/meta/connect","clientId":"abc","connectionType":"long-polling","advice":{"timeout":-1e300}}`,
		// Not a batch.
		``, `null`, `[]`, `{}`, `1`, `"x"`, `true`, `[1,"x",null,[]]`, `{bad`, `[{}`, ` [ { } ] `,
		// Invalid UTF-8 in each field.
		unhex(`[{"channel":"/x","data":"bad \xff\xfe end","ext":{"k":"\xc3"}},{"channel":"/x","data":"fine"}]`),
		unhex(`{"channel":"/x\xff","data":1}`),
		unhex(`{"channel":"/meta/connect","clientId":"c\xff","connectionType":"long-polling"}`),
		unhex(`{"channel":"/x","data":1,"id":"\xff1"}`),
		unhex(`{"channel":"/meta/subscribe","clientId":"abc","subscription":["/ok","/b\xff"]}`),
		unhex(`{"channel":"/meta/handshake","version":"\xed\xa0\x80","supportedConnectionTypes":["\xc0\xaf"]}`),
		unhex(`{"\xff":"\xff","channel":"/x","data":"\xf4\x90\x80\x80"}`),
		// Escapes: quotes, surrogates, separators.
		`{"channel":"/x","data":"` + strings.Repeat(`\"[`, 50) + `"}`,
		`{"channel":"/x","data":"\\\"[{\\"}`,
		`{"channel":"/x\"y","data":"\ud800","id":"\udc00\u2028"}`,
		"{\"channel\":\"/x\u2028\",\"data\":\"\u2029\"}",
		`{"channel":"\u002fx","data":"\u0000"}`,
		// Nesting at and past the limit; brackets in strings.
		nested(63), nested(64), strings.Repeat("[", 65), strings.Repeat("[", 1000),
		strings.Repeat("{\"a\":", 70) + "1" + strings.Repeat("}", 70),
		`{"channel":"/x","data":"` + strings.Repeat("[{", 100) + `"}`,
		`{"channel":"/x","data":"` + strings.Repeat(`\"[`, 100),
		// Batches at and past the limit.
		batch(100, `{}`), batch(101, `{}`), batch(101, `1`), batch(100, handshakeMsg),
		batch(100, `{"channel":"/meta/connect"}`),
		// Long channels.
		`{"channel":"` + strings.Repeat("/a", 600) + `","data":1}`,
		`{"channel":"` + strings.Repeat("/a", 65) + `","data":1}`,
		`{"channel":"/meta/subscribe","clientId":"abc","subscription":"` + strings.Repeat("/a", 600) + `"}`,
		`{"channel":"/meta` + strings.Repeat("/a", 600) + `"}`,
	}
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}

// FuzzParseBatch feeds any bytes to the batch parser. It must not panic;
// it must refuse what is not JSON, nests deeper than the limit or holds more
// messages than the limit, and accept the rest; every string it returns must
// be valid UTF-8, every raw field valid JSON, and the total size of the
// fields must stay within a small multiple of the input's.
func FuzzParseBatch(f *testing.F) {
	for _, s := range batchSeeds() {
		f.Add(s)
	}
	lim := testLimits
	f.Fuzz(func(t *testing.T, in []byte) {
		msgs, err := lim.parseBatch(in)
		checkParseOutcome(t, &lim, in, msgs, err)
		if err != nil {
			return
		}
		if len(msgs) > lim.batch {
			t.Fatalf("%d messages returned, limit %d", len(msgs), lim.batch)
		}
		size := 0
		for i := range msgs {
			size += checkMessage(t, &msgs[i], utf8.Valid(in))
		}
		if limit := parsedFactor*len(in) + parsedPerMessage*len(msgs); size > limit {
			t.Fatalf("%d bytes of fields from %d bytes of input (bound %d)", size, len(in), limit)
		}
	})
}

// checkParseOutcome checks the error of parseBatch(in) against a reference
// built on encoding/json: invalid JSON and primitives are refused, nesting
// past the limit with errTooDeep, too many messages with errTooMany, and
// anything else is accepted with one message per element.
func checkParseOutcome(t *testing.T, lim *limits, in []byte, msgs []Message, err error) {
	t.Helper()
	if !json.Valid(in) {
		if err == nil {
			t.Fatalf("invalid JSON accepted: %d messages", len(msgs))
		}
		return
	}
	if d := jsonDepth(in); d > lim.depth {
		if !errors.Is(err, errTooDeep) {
			t.Fatalf("JSON nested %d deep (limit %d): err = %v", d, lim.depth, err)
		}
		return
	}
	switch trimmed := bytes.TrimSpace(in); trimmed[0] {
	case '[':
		var elems []json.RawMessage
		if e := json.Unmarshal(trimmed, &elems); e != nil {
			t.Fatalf("reference decoding: %v", e)
		}
		switch {
		case len(elems) > lim.batch:
			if !errors.Is(err, errTooMany) {
				t.Fatalf("%d messages (limit %d): err = %v", len(elems), lim.batch, err)
			}
		case err != nil:
			t.Fatalf("valid batch of %d refused: %v", len(elems), err)
		case len(msgs) != len(elems):
			t.Fatalf("%d elements parsed as %d messages", len(elems), len(msgs))
		}
	case '{':
		if err != nil || len(msgs) != 1 {
			t.Fatalf("valid object: %d messages, err %v", len(msgs), err)
		}
	case 'n':
		if err != nil || len(msgs) != 0 {
			t.Fatalf("null: %d messages, err %v", len(msgs), err)
		}
	default:
		if !errors.Is(err, errBadRequest) {
			t.Fatalf("a JSON primitive: err = %v", err)
		}
	}
}

// jsonDepth returns how deeply the arrays and objects of the valid JSON text
// b nest. Unlike nestingExceeds it reads strings forwards, skipping each
// escaped character, so the two cannot share a mistake.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++ // the escaped character
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// checkMessage checks that every string of m is valid UTF-8 and every raw
// field valid JSON, and returns the size of its strings. A message of a
// valid UTF-8 batch is never refused as invalid.
func checkMessage(t *testing.T, m *Message, validInput bool) int {
	t.Helper()
	fields := []struct {
		name, value string
		raw         bool // holds JSON text
	}{
		{"channel", m.Channel, false},
		{"clientId", m.ClientID, false},
		{"id", m.ID, true},
		{"subscription", m.Subscription, true},
		{"data", m.Data, true},
		{"ext", m.Ext, true},
		{"connectionType", m.ConnectionType, false},
		{"version", m.Version, false},
		{"invalid", m.invalid, false},
	}
	for _, ct := range m.ConnectionTypes {
		fields = append(fields, struct {
			name, value string
			raw         bool
		}{"supportedConnectionTypes", ct, false})
	}
	size := 0
	for _, f := range fields {
		size += len(f.value)
		if !utf8.ValidString(f.value) {
			t.Fatalf("%s is not valid UTF-8: %q", f.name, f.value)
		}
		if f.raw && f.value != "" && !json.Valid([]byte(f.value)) {
			t.Fatalf("%s is not valid JSON: %q", f.name, f.value)
		}
	}
	if validInput && m.invalid != "" {
		t.Fatalf("a message of a valid UTF-8 batch was refused: %q", m.invalid)
	}
	return size
}

// newFuzzServer returns a Server for a fuzz target, shut down when the
// target ends. Logs are discarded.
func newFuzzServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.MaxMessageSize = fuzzMaxMessageSize
	srv, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// httpShape is how FuzzHTTPTransport sends its input.
type httpShape byte

const (
	shapeJSON     httpShape = iota // POST application/json, the input as the body
	shapeForm                      // POST text/plain, "message=" and the input URL-encoded
	shapeJSONP                     // GET ?jsonp=cb&message= and the input URL-encoded
	shapeRawForm                   // POST x-www-form-urlencoded, the input as the whole form
	shapeRawQuery                  // GET, the input as the whole query string
	numShapes
)

// fuzzRequest builds the request of shape that carries in.
func fuzzRequest(shape httpShape, in []byte) *http.Request {
	var r *http.Request
	switch shape {
	case shapeJSON:
		r = httptest.NewRequest(http.MethodPost, "/bayeux", bytes.NewReader(in))
		r.Header.Set("Content-Type", "application/json")
	case shapeForm:
		r = httptest.NewRequest(http.MethodPost, "/bayeux", strings.NewReader("message="+url.QueryEscape(string(in))))
		r.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	case shapeJSONP:
		r = httptest.NewRequest(http.MethodGet, "/bayeux?jsonp=cb&message="+url.QueryEscape(string(in)), nil)
	case shapeRawForm:
		r = httptest.NewRequest(http.MethodPost, "/bayeux", bytes.NewReader(in))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case shapeRawQuery:
		r = httptest.NewRequest(http.MethodGet, "/bayeux", nil)
		r.URL.RawQuery = string(in)
	}
	return r
}

// expectHTTP parses the request of shape that carries in as the server
// should: it returns the messages, the JSONP callback ("" for POST), the
// request body's size and the parse error (nil for 200, else 400).
func expectHTTP(shape httpShape, in []byte) (msgs []Message, callback string, bodySize int, err error) {
	switch shape {
	case shapeJSON:
		msgs, err = testLimits.parseBatch(in)
		return msgs, "", len(in), err
	case shapeForm:
		body := "message=" + url.QueryEscape(string(in))
		msgs, err = testLimits.parseValues([]string{string(in)})
		return msgs, "", len(body), err
	case shapeJSONP:
		msgs, err = testLimits.parseValues([]string{string(in)})
		return msgs, "cb", 0, err
	case shapeRawForm:
		q, perr := url.ParseQuery(string(in))
		if perr != nil || len(q["message"]) == 0 {
			return nil, "", len(in), errBadRequest
		}
		msgs, err = testLimits.parseValues(q["message"])
		return msgs, "", len(in), err
	}
	q, _ := url.ParseQuery(string(in)) // the server ignores malformed pairs
	callback = q.Get("jsonp")
	if callback == "" {
		callback = "jsonpcallback"
	}
	if len(callback) > 256 || !safeCallback.MatchString(callback) || len(q["message"]) == 0 {
		return nil, callback, 0, errBadRequest
	}
	msgs, err = testLimits.parseValues(q["message"])
	return msgs, callback, 0, err
}

// safeCallback is what a JSONP callback echoed in a response may be: a
// dotted JavaScript identifier, nothing that could end the call early.
var safeCallback = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$`)

// FuzzHTTPTransport sends its input to one in-process Server, as a JSON
// POST body, a form field, a JSONP query or a raw form or query, picked by
// the first argument. The server must not panic nor answer 5xx; it must
// answer 200 exactly when the batch is acceptable, with valid UTF-8: a JSON
// array (for JSONP "/**/cb(" array ");") of one reply per message, and
// never more than a small multiple of the input.
func FuzzHTTPTransport(f *testing.F) {
	// A short hold, so that a connect in the input could not stall the
	// fuzzer (none can succeed: a fuzzed input cannot know a clientId).
	srv := newFuzzServer(f, Config{Timeout: 50 * time.Millisecond})
	for _, s := range batchSeeds() {
		for shape := range numShapes {
			f.Add(byte(shape), s)
		}
	}
	for _, form := range []string{
		"message=" + handshakeMsg, // unescaped JSON in a form
		"message=%5B%5D&message=%7B%7D&message=null",
		"message=" + url.QueryEscape(handshakeMsg) + "&message=" + url.QueryEscape(handshakeMsg),
		"message=%zz", "message=%ff", "message=[]&a;b", "message", "=&&message=+", "jsonp=cb",
		"jsonp=a.b.c&message=[]", "jsonp=alert(1)//&message=[]", "jsonp=cb&message=%7B%22channel%22%3A%22%2Fx%22%2C%22data%22%3A1%2C%22id%22%3A%22%FF%22%7D",
		"message=" + strings.Repeat("[", 70),
		"message=" + url.QueryEscape("["+strings.TrimSuffix(strings.Repeat("{},", 60), ",")+"]") +
			"&message=" + url.QueryEscape("["+strings.TrimSuffix(strings.Repeat("{},", 60), ",")+"]"),
	} {
		f.Add(byte(shapeRawForm), []byte(form))
		f.Add(byte(shapeRawQuery), []byte(form))
	}
	f.Fuzz(func(t *testing.T, shapeByte byte, in []byte) {
		shape := httpShape(shapeByte) % numShapes
		msgs, callback, bodySize, wantErr := expectHTTP(shape, in)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, fuzzRequest(shape, in))
		res := rec.Result()
		body := rec.Body.Bytes()
		if res.StatusCode >= 500 {
			t.Fatalf("status %d: %q", res.StatusCode, body)
		}
		if !utf8.Valid(body) {
			t.Fatalf("status %d with invalid UTF-8: %q", res.StatusCode, body)
		}
		switch {
		case bodySize > fuzzMaxMessageSize:
			if res.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d-byte body: status %d, want 413", bodySize, res.StatusCode)
			}
			return
		case wantErr != nil:
			if res.StatusCode != http.StatusBadRequest || len(body) > 256 {
				t.Fatalf("refusable input (%v): status %d %.300q", wantErr, res.StatusCode, body)
			}
			return
		case res.StatusCode != http.StatusOK:
			t.Fatalf("acceptable input: status %d %.300q", res.StatusCode, body)
		}
		if limit := echoFactor*len(in) + replyPerMessage*len(msgs) + replyPerRequest; len(body) > limit {
			t.Fatalf("%d-byte response to %d bytes of input and %d messages (bound %d)", len(body), len(in), len(msgs), limit)
		}
		array := body
		if callback != "" {
			if !safeCallback.MatchString(callback) {
				t.Fatalf("unsafe callback %q answered", callback)
			}
			prefix, suffix := "/**/"+callback+"(", ");"
			if !bytes.HasPrefix(body, []byte(prefix)) || !bytes.HasSuffix(body, []byte(suffix)) {
				t.Fatalf("JSONP body %.300q", body)
			}
			if bytes.ContainsAny(body, "\u2028\u2029") {
				t.Fatalf("JSONP body holds a raw U+2028 or U+2029: %.300q", body)
			}
			array = body[len(prefix) : len(body)-len(suffix)]
		}
		if n := replyCount(t, array); n != len(msgs) {
			t.Fatalf("%d replies to %d messages: %.300q", n, len(msgs), body)
		}
	})
}

// replyCount checks that b is a JSON array of objects and returns its
// length.
func replyCount(t *testing.T, b []byte) int {
	t.Helper()
	var replies []json.RawMessage
	if err := json.Unmarshal(b, &replies); err != nil {
		t.Fatalf("not a JSON array (%v): %.300q", err, b)
	}
	for _, r := range replies {
		if len(r) == 0 || r[0] != '{' {
			t.Fatalf("reply is not an object: %.300q", r)
		}
	}
	return len(replies)
}

// FuzzWebSocketFrame sends its input as one text frame on a fresh
// WebSocket to a Server on loopback, then a handshake frame. Every frame
// the server sends must be valid UTF-8 and a JSON array of objects: one
// reply per message of the input, then the handshake's. A frame over the
// batch limit must close the socket with 1008 (over the size limit, 1009)
// instead; one the parser refuses otherwise is ignored. The server must go
// on serving: every input dials afresh, and every 32nd also handshakes over
// HTTP.
func FuzzWebSocketFrame(f *testing.F) {
	srv := newFuzzServer(f, Config{Timeout: 100 * time.Millisecond})
	hs := bayeuxtest.Serve(f, srv, nil) // on 127.0.0.1; closed before the server's shutdown
	wsURL := bayeuxtest.WebSocketURL(hs.URL) + "/bayeux"
	httpURL := hs.URL + "/bayeux"
	for _, s := range batchSeeds() {
		f.Add(s)
	}
	var inputs atomic.Int64
	f.Fuzz(func(t *testing.T, frame []byte) {
		if inputs.Add(1)%32 == 0 {
			httpHandshake(t, httpURL) // after the previous inputs
		}
		dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, res, err := dialer.Dial(wsURL, nil)
		if err != nil {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			t.Fatalf("the server stopped accepting WebSockets: %v (status %d)", err, status)
		}
		defer c.Close()
		msgs, perr := testLimits.parseBatch(frame)
		wantClose := 0
		switch {
		case len(frame) > fuzzMaxMessageSize:
			wantClose = websocket.CloseMessageTooBig
		case errors.Is(perr, errTooMany):
			wantClose = closePolicy
		}
		write := func(b []byte) {
			t.Helper()
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
				t.Fatalf("writing a frame: %v", err)
			}
		}
		write(frame)
		if wantClose != 0 {
			// Nothing more is sent: data arriving at a socket the server
			// closes could make it reset the connection, losing the close.
			readUntilClose(t, c, wantClose)
			return
		}
		write([]byte("[" + handshakeMsg + "]"))
		wantReplies := 0
		if perr == nil {
			wantReplies = len(msgs)
		}
		// The replies come in order; those of the input may share a frame
		// with the handshake's reply (replies to publishes are written
		// together while more frames are waiting).
		var all []json.RawMessage
		size := 0
		for len(all) <= wantReplies {
			replies, n := readReplies(t, c)
			all = append(all, replies...)
			size += n
		}
		if len(all) != wantReplies+1 {
			t.Fatalf("%d replies to %d messages and a handshake", len(all), wantReplies)
		}
		if limit := echoFactor*len(frame) + replyPerMessage*wantReplies + replyPerRequest + handshakeReplyBound; size > limit {
			t.Fatalf("%d bytes of replies to a %d-byte frame of %d messages (bound %d)", size, len(frame), wantReplies, limit)
		}
		if last := all[wantReplies]; !bytes.Contains(last, []byte(`"successful":true`)) ||
			!bytes.Contains(last, []byte(`"channel":"/meta/handshake"`)) {
			t.Fatalf("handshake after the input: %.300q", all[wantReplies:])
		}
	})
}

// handshakeReplyBound bounds the size of a handshake's reply.
const handshakeReplyBound = 512

// readReplies reads one frame within 5 seconds, checks that it is valid
// UTF-8 text holding a JSON array of objects, and returns the objects and
// the frame's size.
func readReplies(t *testing.T, c *websocket.Conn) ([]json.RawMessage, int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	if kind != websocket.TextMessage || !utf8.Valid(b) {
		t.Fatalf("frame is not valid UTF-8 text: %.300q", b)
	}
	var replies []json.RawMessage
	if err := json.Unmarshal(b, &replies); err != nil {
		t.Fatalf("frame is not a JSON array (%v): %.300q", err, b)
	}
	for _, r := range replies {
		if len(r) == 0 || r[0] != '{' {
			t.Fatalf("reply is not an object: %.300q", r)
		}
	}
	return replies, len(b)
}

// readUntilClose reads frames, each checked as readReplies does, until the
// server closes the socket, which it must do with code within 5 seconds.
func readUntilClose(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		kind, b, err := c.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, code) {
				t.Fatalf("socket ended with %v, want close code %d", err, code)
			}
			return
		}
		if kind != websocket.TextMessage || !utf8.Valid(b) || !json.Valid(b) || len(b) == 0 || b[0] != '[' {
			t.Fatalf("frame is not a JSON array in UTF-8 text: %.300q", b)
		}
	}
}

// httpHandshake checks that the server still answers a handshake over HTTP.
func httpHandshake(t *testing.T, u string) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	res, err := client.Post(u, "application/json", strings.NewReader(handshakeMsg))
	if err != nil {
		t.Fatalf("handshake over HTTP: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"successful":true`)) {
		t.Fatalf("handshake over HTTP: %d %.300q", res.StatusCode, b)
	}
}
