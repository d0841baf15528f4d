package client_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestMain runs the tests, then checks that no goroutine of the package
// (nor an HTTP connection it opened) outlived its client.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitNoLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after all tests:\n%s\n", leaked)
			code = 1
		}
	}
	if tmpDir != "" {
		_ = os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// Goroutine leak check

// clientGoroutines returns the stacks of the goroutines, other than the
// caller's, that run code of this package (not its tests) or hold an
// HTTP client connection.
func clientGoroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the caller
			continue
		}
		if ownsGoroutine(g) {
			leaked = append(leaked, g)
		}
	}
	return strings.Join(leaked, "\n\n")
}

func ownsGoroutine(stack string) bool {
	if strings.Contains(stack, "net/http.(*persistConn)") {
		return true
	}
	for _, line := range strings.Split(stack, "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "/bayeux/client/") && strings.Contains(line, ".go:") &&
			!strings.Contains(line, "_test.go:") {
			return true
		}
	}
	return false
}

// waitNoLeaks waits up to d for the client goroutines to end and returns
// the stacks of those still running.
func waitNoLeaks(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		leaked := clientGoroutines()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoLeaks fails t if client goroutines are still running. Only
// meaningful in tests that do not run in parallel with others.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	if leaked := waitNoLeaks(5 * time.Second); leaked != "" {
		t.Errorf("goroutines left running after Close:\n%s", leaked)
	}
}

// ---------------------------------------------------------------------------
// Logging

// testLogger writes the client's logs to the test log (debug level with
// -v and BAYOU_TEST_DEBUG=1).
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("BAYOU_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ---------------------------------------------------------------------------
// Servers

// testServer is a Bayeux endpoint for a test.
type testServer struct {
	kind string // "bayou", "faye" or "inproc"
	url  string // http://127.0.0.1:PORT/bayeux
	// restart stops the server and starts a new one on the same port
	// (processes only).
	restart func(t *testing.T)
}

// startInproc serves an in-process Bayou on a 127.0.0.1 httptest server,
// through wrap if not nil.
func startInproc(t *testing.T, cfg bayeux.Config, wrap func(http.Handler) http.Handler) (*testServer, *bayeux.Server) {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv, err := bayeux.New(cfg)
	if err != nil {
		t.Fatalf("bayeux.New: %v", err)
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	ts := bayeuxtest.Serve(t, h, srv.Shutdown)
	mount := cfg.Mount
	if mount == "" {
		mount = "/bayeux"
	}
	return &testServer{kind: "inproc", url: ts.URL + mount}, srv
}

var (
	moduleRoot = filepath.Join("..", "..")
	tmpDir     string

	buildOnce sync.Once
	bayouBin  string
	buildErr  error

	npmOnce sync.Once
	npmErr  error
)

// bayouBinary builds ./cmd/bayou once per test run.
func bayouBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bayou-client-test-")
		if err != nil {
			buildErr = err
			return
		}
		tmpDir = dir
		bayouBin = filepath.Join(dir, "bayou")
		// go test puts its own GOROOT/bin first on the PATH.
		cmd := exec.Command("go", "build", "-o", bayouBin, "./cmd/bayou")
		cmd.Dir = moduleRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/bayou: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bayouBin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// requireNode skips the test when node is not installed (it fails instead
// when CI is set: the CI image has node) and installs the npm packages of
// compat/node when they are missing.
func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node is required in CI: %v", err)
		}
		t.Skipf("node not found (%v): skipping the test against npm faye; install Node.js and run scripts/npm-install.sh", err)
	}
	npmOnce.Do(func() {
		if fileExists(filepath.Join(moduleRoot, "compat", "node", "node_modules", "faye", "package.json")) {
			return
		}
		cmd := exec.Command("bash", filepath.Join(moduleRoot, "scripts", "npm-install.sh"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			npmErr = fmt.Errorf("scripts/npm-install.sh: %w\n%s", err, out)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
}

// startProcess starts the bayou binary (keeping the history of /h/**) or
// the npm faye server on a free 127.0.0.1 port with the given connect
// timeout, and stops it at cleanup.
func startProcess(t *testing.T, kind string, timeout int) *testServer {
	t.Helper()
	var argv func(port int) (string, []string, string)
	switch kind {
	case "bayou":
		bin := bayouBinary(t)
		argv = func(port int) (string, []string, string) {
			return bin, []string{"--addr", "127.0.0.1:" + strconv.Itoa(port), "--timeout", strconv.Itoa(timeout),
				"--ping", "5", "--log-level", "warn", "--history", "/h/**=100"}, ""
		}
	case "faye":
		requireNode(t)
		argv = func(port int) (string, []string, string) {
			return "node", []string{"faye-server.mjs", "--port", strconv.Itoa(port), "--timeout", strconv.Itoa(timeout)},
				filepath.Join(moduleRoot, "compat", "node")
		}
	default:
		t.Fatalf("unknown server kind %q", kind)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	// faye-server.mjs exits on SIGTERM only once every connection has
	// closed, which held connects and sockets delay: kill it sooner.
	p := &proc{grace: 3 * time.Second}
	if kind == "faye" {
		p.grace = 300 * time.Millisecond
	}
	if err := p.start(argv(port)); err != nil {
		t.Fatalf("starting %s: %v", kind, err)
	}
	t.Cleanup(p.stop)
	s := &testServer{kind: kind, url: p.url}
	s.restart = func(t *testing.T) {
		t.Helper()
		p.stop()
		var err error
		for attempt := 0; attempt < 20; attempt++ { // the port may take a moment to free
			if err = p.start(argv(port)); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("restarting %s on port %d: %v", kind, port, err)
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is a server process printing "... serving Bayeux at <URL>".
type proc struct {
	grace time.Duration // between SIGTERM and SIGKILL

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	url  string
}

func (p *proc) start(name string, args []string, dir string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	setPdeathsig(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bayeuxtest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "serving Bayeux at "); ok {
				select {
				case urls <- strings.TrimSpace(u):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case u := <-urls:
		p.mu.Lock()
		p.cmd, p.done, p.url = cmd, done, u
		p.mu.Unlock()
		return nil
	case <-done:
		return fmt.Errorf("%s exited before serving: %s", name, stderr.String())
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New(name + " did not report its URL within 15s: " + stderr.String())
	}
}

// stop sends SIGTERM, then SIGKILL after the grace period, and waits for
// the exit.
func (p *proc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(p.grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// ---------------------------------------------------------------------------
// Client helpers

// dial connects a client for the test with short timeouts and closes it
// at cleanup.
func dial(t *testing.T, url string, transport client.Transport, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all := []client.Option{
		client.WithTransports(transport),
		client.WithLogger(testLogger(t)),
		client.WithRequestTimeout(3 * time.Second),
		client.WithBackoff(50*time.Millisecond, 500*time.Millisecond),
	}
	c, err := client.Dial(ctx, url, append(all, opts...)...)
	if err != nil {
		t.Fatalf("Dial(%s, %s): %v", url, transport, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if got := c.Transport(); got != transport {
		t.Fatalf("Transport() = %q, want %q", got, transport)
	}
	return c
}

// inbox collects delivered messages.
type inbox struct {
	ch chan *client.Message
}

func newInbox() *inbox { return &inbox{ch: make(chan *client.Message, 1024)} }

func (b *inbox) handler(m *client.Message) { b.ch <- m }

// next returns the next message, failing t after d.
func (b *inbox) next(t *testing.T, d time.Duration) *client.Message {
	t.Helper()
	select {
	case m := <-b.ch:
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
		return nil
	}
}

// none fails t if a message arrives within d.
func (b *inbox) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-b.ch:
		t.Fatalf("unexpected message on %s: %s", m.Channel, m.Data)
	case <-time.After(d):
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
