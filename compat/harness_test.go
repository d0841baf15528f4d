// Package compat holds raw wire-level probes for Bayou's Bayeux endpoint.
//
// The probes speak HTTP and WebSocket directly (no Bayeux client library) and
// assert the exact strings and fields that faye 1.4 and CometD clients depend on
// (see /work/shared/reference/faye-wire-protocol.md and cometd-dialect.md).
//
// By default TestMain builds ./cmd/bayou once and every test starts its own
// Bayou process. With COMPAT_SERVER=faye the same probes run against the real
// faye 1.4.3 NodeAdapter (compat/node/faye-server.mjs) instead; that run is how
// we check that the probes describe faye's real behaviour. Assertions that
// only hold for Bayou (deliberate improvements over faye) are branched on
// isBayou() with a comment explaining the difference.
package compat

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

const mount = "/bayeux"

var (
	serverKind string // "bayou" or "faye"
	bayouBin   string // built binary (bayou runs only)
	moduleRoot string // directory holding go.mod
)

// isBayou reports whether the probes run against Bayou (as opposed to the
// reference faye server).
func isBayou() bool { return serverKind == "bayou" }

func TestMain(m *testing.M) {
	flag.Parse()
	// The probes mostly wait on timers and sockets; run more of them at once
	// than GOMAXPROCS unless the caller chose -parallel explicitly.
	parallelSet := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			parallelSet = true
		}
	})
	if !parallelSet {
		_ = flag.Set("test.parallel", "16")
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	moduleRoot, err = findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	switch os.Getenv("COMPAT_SERVER") {
	case "faye":
		serverKind = "faye"
		script := filepath.Join(moduleRoot, "compat", "node", "faye-server.mjs")
		if _, err := os.Stat(script); err != nil {
			fmt.Fprintln(os.Stderr, "compat: faye reference server missing:", err)
			return 1
		}
		if _, err := exec.LookPath("node"); err != nil {
			fmt.Fprintln(os.Stderr, "compat: node not found:", err)
			return 1
		}
	case "", "bayou":
		serverKind = "bayou"
		dir, err := os.MkdirTemp("", "bayou-compat-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "compat:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		bayouBin = filepath.Join(dir, "bayou")
		build := exec.Command("go", "build", "-o", bayouBin, "./cmd/bayou")
		build.Dir = moduleRoot
		build.Stdout = os.Stderr
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "compat: building ./cmd/bayou failed:", err)
			return 1
		}
	default:
		fmt.Fprintf(os.Stderr, "compat: unknown COMPAT_SERVER %q (want bayou or faye)\n", os.Getenv("COMPAT_SERVER"))
		return 1
	}
	return m.Run()
}

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ---------------------------------------------------------------------------
// Server processes

type server struct {
	kind    string
	base    string // http://127.0.0.1:PORT
	url     string // http://127.0.0.1:PORT/bayeux
	wsURL   string // ws://127.0.0.1:PORT/bayeux
	timeout int    // T, seconds
	client  *http.Client
	out     *bayeuxtest.Buffer
}

type serverOpts struct {
	timeout int // seconds (T)
	ping    int // seconds; 0 = not passed (Bayou only; faye-server.mjs has no ping option)
}

// startServer starts a fresh server with --timeout timeoutSeconds and
// registers its shutdown with t.Cleanup.
func startServer(t *testing.T, timeoutSeconds int) *server {
	t.Helper()
	return startServerOpts(t, serverOpts{timeout: timeoutSeconds})
}

func startServerOpts(t *testing.T, o serverOpts) *server {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := tryStart(t, o)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting %s server: %v", serverKind, lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startSlots limits how many servers boot at once: on a small machine,
// sixteen node processes starting together can take longer than the 10 s
// readiness bound.
var startSlots = make(chan struct{}, 4)

func tryStart(t *testing.T, o serverOpts) (*server, error) {
	startSlots <- struct{}{}
	defer func() { <-startSlots }()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	switch serverKind {
	case "faye":
		cmd = exec.Command("node", filepath.Join(moduleRoot, "compat", "node", "faye-server.mjs"),
			"--port", strconv.Itoa(port), "--mount", mount, "--timeout", strconv.Itoa(o.timeout))
		cmd.Dir = filepath.Join(moduleRoot, "compat", "node")
	default:
		args := []string{"--addr", fmt.Sprintf("127.0.0.1:%d", port), "--mount", mount,
			"--timeout", strconv.Itoa(o.timeout)}
		if o.ping > 0 {
			args = append(args, "--ping", strconv.Itoa(o.ping))
		}
		cmd = exec.Command(bayouBin, args...)
	}
	killWithParent(cmd)
	out := &bayeuxtest.Buffer{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	exited := make(chan struct{})
	want := fmt.Sprintf("serving Bayeux at http://127.0.0.1:%d%s", port, mount)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if !signalled && strings.Contains(line, want) {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	select {
	case <-ready:
	case <-exited:
		return nil, fmt.Errorf("server exited before it was ready; output:\n%s", out.String())
	case <-time.After(10 * time.Second):
		stop()
		return nil, fmt.Errorf("no %q line within 10s; output:\n%s", want, out.String())
	}
	tr := &http.Transport{
		Proxy:               nil,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
	}
	s := &server{
		kind:    serverKind,
		base:    fmt.Sprintf("http://127.0.0.1:%d", port),
		url:     fmt.Sprintf("http://127.0.0.1:%d%s", port, mount),
		wsURL:   fmt.Sprintf("ws://127.0.0.1:%d%s", port, mount),
		timeout: o.timeout,
		client:  &http.Client{Transport: tr, Timeout: 20 * time.Second},
		out:     out,
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		stop()
		if t.Failed() {
			t.Logf("%s server output:\n%s", serverKind, tail(out.String(), 4000))
		}
	})
	return s, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// ---------------------------------------------------------------------------
// HTTP helpers

type httpResp struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (r *httpResp) String() string {
	return fmt.Sprintf("HTTP %d %v %q", r.status, r.header, r.body)
}

// do sends one request. target is either a full URL or a path/query relative
// to the server root (e.g. "/bayeux/connect").
func (s *server) do(t *testing.T, method, target string, hdr map[string]string, body string) *httpResp {
	t.Helper()
	r, err := s.doErr(context.Background(), method, target, hdr, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

func (s *server) doErr(ctx context.Context, method, target string, hdr map[string]string, body string) (*httpResp, error) {
	u := target
	if !strings.HasPrefix(u, "http") {
		u = s.base + target
	}
	var rd io.Reader
	if body != "" || method == http.MethodPost || method == http.MethodPut {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &httpResp{status: res.StatusCode, header: res.Header, body: b, took: time.Since(start)}, nil
}

// postJSON POSTs body to the mount with Content-Type: application/json.
func (s *server) postJSON(t *testing.T, body string) *httpResp {
	t.Helper()
	return s.postJSONTo(t, mount, body)
}

func (s *server) postJSONTo(t *testing.T, path, body string) *httpResp {
	t.Helper()
	return s.do(t, http.MethodPost, path, map[string]string{"Content-Type": "application/json"}, body)
}

// postForm POSTs message=<urlencoded msg> with the given Content-Type ("" = none).
func (s *server) postForm(t *testing.T, contentType, msg string) *httpResp {
	t.Helper()
	hdr := map[string]string{}
	if contentType != "" {
		hdr["Content-Type"] = contentType
	}
	return s.do(t, http.MethodPost, mount, hdr, "message="+url.QueryEscape(msg))
}

// getJSONP sends GET ?message=<msg>[&jsonp=<callback>] (callback "" = absent).
func (s *server) getJSONP(t *testing.T, msg, callback string) *httpResp {
	t.Helper()
	q := url.Values{"message": {msg}}
	if callback != "" {
		q.Set("jsonp", callback)
	}
	return s.do(t, http.MethodGet, mount+"?"+q.Encode(), nil, "")
}

// send POSTs a JSON batch (or single message) and returns the reply array,
// asserting HTTP 200 and a JSON array body.
func (s *server) send(t *testing.T, body string) []gjson.Result {
	t.Helper()
	r := s.postJSON(t, body)
	return mustReplies(t, r)
}

func mustReplies(t *testing.T, r *httpResp) []gjson.Result {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("want HTTP 200, got %s", r)
	}
	return mustArray(t, r.body)
}

func mustArray(t *testing.T, b []byte) []gjson.Result {
	t.Helper()
	if !gjson.ValidBytes(b) {
		t.Fatalf("body is not valid JSON: %q", b)
	}
	v := gjson.ParseBytes(b)
	if !v.IsArray() {
		t.Fatalf("body is not a JSON array: %s", b)
	}
	return v.Array()
}

func (s *server) handshake(t *testing.T) string {
	t.Helper()
	rs := s.send(t, `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket","callback-polling"],"id":"h1"}]`)
	if len(rs) != 1 || !rs[0].Get("successful").Bool() {
		t.Fatalf("handshake failed: %v", rs)
	}
	cid := rs[0].Get("clientId").String()
	if cid == "" {
		t.Fatalf("handshake reply has no clientId: %s", rs[0].Raw)
	}
	return cid
}

// subscribe subscribes cid to each channel (one batch) and asserts success.
func (s *server) subscribe(t *testing.T, cid string, chans ...string) {
	t.Helper()
	var parts []string
	for i, ch := range chans {
		parts = append(parts, fmt.Sprintf(`{"channel":"/meta/subscribe","clientId":%q,"subscription":%q,"id":"s%d"}`, cid, ch, i))
	}
	rs := s.send(t, "["+strings.Join(parts, ",")+"]")
	for i, ch := range chans {
		r := byID(rs, fmt.Sprintf("s%d", i))
		if !r.Exists() || !r.Get("successful").Bool() {
			t.Fatalf("subscribe %s failed: %v", ch, rs)
		}
	}
}

// publish publishes anonymously (no clientId) and asserts success.
func (s *server) publish(t *testing.T, channel, data string) {
	t.Helper()
	rs := s.send(t, fmt.Sprintf(`[{"channel":%q,"data":%s}]`, channel, data))
	if len(rs) != 1 || !rs[0].Get("successful").Bool() {
		t.Fatalf("publish to %s failed: %v", channel, rs)
	}
}

// drain sends a connect with advice.timeout 0 (answered at once) and returns
// the delivered messages that follow the connect reply.
func (s *server) drain(t *testing.T, cid string) []gjson.Result {
	t.Helper()
	rs := s.send(t, fmt.Sprintf(`[{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","advice":{"timeout":0},"id":"drain"}]`, cid))
	var msgs []gjson.Result
	seen := false
	for _, r := range rs {
		if r.Get("channel").String() == "/meta/connect" {
			if !r.Get("successful").Bool() {
				t.Fatalf("drain connect failed: %s", r.Raw)
			}
			seen = true
			continue
		}
		msgs = append(msgs, r)
	}
	if !seen {
		t.Fatalf("no connect reply in %v", rs)
	}
	return msgs
}

// ---------------------------------------------------------------------------
// JSON helpers

// byID returns the first message whose id is the JSON string id.
func byID(msgs []gjson.Result, id string) gjson.Result {
	for _, m := range msgs {
		v := m.Get("id")
		if v.Type == gjson.String && v.Str == id {
			return m
		}
	}
	return gjson.Result{}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// assertJSON asserts that got and want are the same JSON value (key order
// ignored).
func assertJSON(t *testing.T, got, want string) {
	t.Helper()
	if !jsonEqual(got, want) {
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
}

func assertStr(t *testing.T, m gjson.Result, path, want string) {
	t.Helper()
	v := m.Get(path)
	if v.Type != gjson.String || v.Str != want {
		t.Errorf("%s = %s, want %q (in %s)", path, orMissing(v), want, m.Raw)
	}
}

func assertBool(t *testing.T, m gjson.Result, path string, want bool) {
	t.Helper()
	v := m.Get(path)
	if !v.IsBool() || v.Bool() != want {
		t.Errorf("%s = %s, want %v (in %s)", path, orMissing(v), want, m.Raw)
	}
}

func assertAbsent(t *testing.T, m gjson.Result, path string) {
	t.Helper()
	if v := m.Get(path); v.Exists() {
		t.Errorf("%s present (%s), want absent (in %s)", path, v.Raw, m.Raw)
	}
}

func orMissing(v gjson.Result) string {
	if !v.Exists() {
		return "<missing>"
	}
	return v.Raw
}

// assertFailure checks a failed reply: successful:false and the exact error.
func assertFailure(t *testing.T, m gjson.Result, channel, errStr string) {
	t.Helper()
	if !m.Exists() {
		t.Errorf("missing reply (want %s)", errStr)
		return
	}
	assertBool(t, m, "successful", false)
	assertStr(t, m, "error", errStr)
	if channel != "" {
		assertStr(t, m, "channel", channel)
	}
}

// ---------------------------------------------------------------------------
// WebSocket helpers

type wsClient struct {
	conn   *websocket.Conn
	frames chan wsFrame
	pings  chan time.Time
	wmu    sync.Mutex
	done   chan struct{}
}

type wsFrame struct {
	typ  int
	data []byte
	at   time.Time
}

// dialWS opens a WebSocket to the mount. origin "" sends no Origin header
// (like the Node faye client).
func (s *server) dialWS(t *testing.T, origin string) *wsClient {
	t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Proxy: nil}
	conn, res, err := d.Dial(s.wsURL, hdr)
	if err != nil {
		st := "no response"
		if res != nil {
			st = res.Status
		}
		t.Fatalf("WebSocket upgrade failed (origin %q): %v (%s)", origin, err, st)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status %d", res.StatusCode)
	}
	w := &wsClient{
		conn:   conn,
		frames: make(chan wsFrame, 256),
		pings:  make(chan time.Time, 64),
		done:   make(chan struct{}),
	}
	conn.SetPingHandler(func(appData string) error {
		select {
		case w.pings <- time.Now():
		default:
		}
		err := conn.WriteControl(websocket.PongMessage, []byte(appData), time.Now().Add(time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	go func() {
		defer close(w.done)
		defer close(w.frames)
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			w.frames <- wsFrame{typ: typ, data: data, at: time.Now()}
		}
	}()
	t.Cleanup(func() {
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = conn.Close()
		select {
		case <-w.done:
		case <-time.After(2 * time.Second):
		}
	})
	return w
}

func (w *wsClient) sendText(t *testing.T, msg string) {
	t.Helper()
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := w.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("WebSocket write: %v", err)
	}
}

// next returns the next frame's messages, asserting that the frame is a
// text frame holding a JSON array. ok is false if nothing arrived within d
// (or the socket closed).
func (w *wsClient) next(t *testing.T, d time.Duration) (msgs []gjson.Result, at time.Time, ok bool) {
	t.Helper()
	select {
	case f, open := <-w.frames:
		if !open {
			return nil, time.Time{}, false
		}
		if f.typ != websocket.TextMessage {
			t.Errorf("server sent a non-text frame (type %d): %q", f.typ, f.data)
		}
		if !gjson.ValidBytes(f.data) || !gjson.ParseBytes(f.data).IsArray() {
			t.Fatalf("server frame is not a JSON array: %s", f.data)
		}
		return gjson.ParseBytes(f.data).Array(), f.at, true
	case <-time.After(d):
		return nil, time.Time{}, false
	}
}

// mustNext is next that fails the test when no frame arrives within d.
func (w *wsClient) mustNext(t *testing.T, d time.Duration) []gjson.Result {
	t.Helper()
	msgs, _, ok := w.next(t, d)
	if !ok {
		t.Fatalf("no WebSocket frame within %v", d)
	}
	return msgs
}

// collect reads frames until pred(all messages so far) is true or the
// deadline d passes; it returns every message read, in arrival order.
func (w *wsClient) collect(t *testing.T, d time.Duration, pred func([]gjson.Result) bool) ([]gjson.Result, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	var all []gjson.Result
	for {
		if pred(all) {
			return all, true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return all, false
		}
		msgs, _, ok := w.next(t, left)
		if !ok {
			return all, pred(all)
		}
		all = append(all, msgs...)
	}
}

func rawList(ms []gjson.Result) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Raw)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func within(t *testing.T, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s took %v, want between %v and %v", what, got.Round(time.Millisecond), lo, hi)
	}
}
