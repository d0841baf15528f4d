package redis

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// redisServer is a redis-server process of a test's own, on a free port of
// 127.0.0.1, without persistence.
type redisServer struct {
	tb   testing.TB
	port int
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// startRedis starts a redis-server for tb and stops it at cleanup. It skips
// the test when redis-server is not installed (scripts/redis-install.sh
// installs it).
func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("redis-server not installed: the test command runs scripts/redis-install.sh first")
		}
		tb.Skip("redis-server not installed (run scripts/redis-install.sh)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	r := &redisServer{tb: tb, port: port}
	r.start()
	tb.Cleanup(r.kill)
	return r
}

// URL returns the server's redis:// URL.
func (r *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start runs redis-server on r.port and waits until it answers PING.
func (r *redisServer) start() {
	r.tb.Helper()
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = nil, nil // /dev/null: no copying goroutines
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("starting redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(r.addr()); err == nil {
			return
		} else if time.Now().After(deadline) {
			r.kill()
			r.tb.Fatalf("redis-server on port %d did not answer: %v", r.port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops the server at once (SIGKILL, like a crash) and waits for it.
func (r *redisServer) kill() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

// signal sends sig to the server (SIGSTOP/SIGCONT make it unresponsive and
// back, with its connections open).
func (r *redisServer) signal(sig syscall.Signal) {
	r.tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		r.tb.Fatal("redis-server not running")
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.tb.Fatal(err)
	}
}

// ping sends PING over a raw connection.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// raw returns a plain client to inspect the server.
func (r *redisServer) raw() rueidis.Client {
	r.tb.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.addr()}, DisableCache: true})
	if err != nil {
		r.tb.Fatal(err)
	}
	r.tb.Cleanup(c.Close)
	return c
}

// publishCalls returns the server's count of PUBLISH commands so far.
func publishCalls(tb testing.TB, c rueidis.Client) int64 { return commandCalls(tb, c)["publish"] }

// commandCalls returns the server's count of calls per command so far
// (INFO commandstats; commands run by scripts included).
func commandCalls(tb testing.TB, c rueidis.Client) map[string]int64 {
	tb.Helper()
	info, err := c.Do(context.Background(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		tb.Fatal(err)
	}
	calls := make(map[string]int64)
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || len(name) == len(line) {
			continue
		}
		n, err := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		calls[name] = n
	}
	return calls
}

// testLogger logs through tb (debug level when -v).
func testLogger(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// collector records the publications delivered to an engine.
type collector struct {
	mu     sync.Mutex
	pubs   []*bayeux.Publication
	notify chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) deliver(p *bayeux.Publication) {
	c.mu.Lock()
	c.pubs = append(c.pubs, p)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// snapshot returns the publications so far.
func (c *collector) snapshot() []*bayeux.Publication {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*bayeux.Publication(nil), c.pubs...)
}

// reset forgets the publications so far.
func (c *collector) reset() {
	c.mu.Lock()
	c.pubs = nil
	c.mu.Unlock()
}

// waitFor waits until ok(publications) holds, or fails tb after timeout.
func (c *collector) waitFor(tb testing.TB, timeout time.Duration, what string, ok func([]*bayeux.Publication) bool) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if ok(c.snapshot()) {
			return
		}
		select {
		case <-c.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline.C:
			tb.Fatalf("timed out after %v waiting for %s (have %d publications)", timeout, what, len(c.snapshot()))
		}
	}
}

// beyond waits up to d for a publication beyond the first n, one that must
// not come such as a duplicate (a bounded wait for something that must not
// happen), and returns the publications.
func (c *collector) beyond(n int, d time.Duration) []*bayeux.Publication {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		if ps := c.snapshot(); len(ps) > n {
			return ps
		}
		select {
		case <-c.notify:
		case <-timeout.C:
			return c.snapshot()
		}
	}
}

// waitChannel waits for a publication on channel.
func (c *collector) waitChannel(tb testing.TB, channel string) {
	tb.Helper()
	c.waitFor(tb, 5*time.Second, channel, func(ps []*bayeux.Publication) bool {
		for _, p := range ps {
			if p.Channel == channel {
				return true
			}
		}
		return false
	})
}

// testNode is a started engine with its collector.
type testNode struct {
	*Engine
	got *collector
}

// newNode starts an engine on srv, closed at cleanup.
func newNode(tb testing.TB, srv *redisServer, id string, tweak ...func(*Config)) *testNode {
	tb.Helper()
	got := newCollector()
	return &testNode{Engine: startEngine(tb, srv, id, got.deliver, tweak...), got: got}
}

// startEngine starts an engine on srv delivering to deliver, closed at
// cleanup.
func startEngine(tb testing.TB, srv *redisServer, id string, deliver func(*bayeux.Publication), tweak ...func(*Config)) *Engine {
	tb.Helper()
	cfg := Config{URL: srv.URL(), NodeID: id, Logger: testLogger(tb).With("test_node", id)}
	for _, f := range tweak {
		f(&cfg)
	}
	ctx := context.Background()
	e, err := New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	if err := e.Start(ctx, deliver); err != nil {
		tb.Fatal(err)
	}
	return e
}

// mustSubscribe subscribes n to channels.
func (n *testNode) mustSubscribe(tb testing.TB, patterns ...string) {
	tb.Helper()
	for _, p := range patterns {
		if err := n.Subscribe(context.Background(), p); err != nil {
			tb.Fatalf("%s: subscribe %s: %v", n.NodeID(), p, err)
		}
	}
}

// mustPublish publishes msg on channel from n.
func (n *testNode) mustPublish(tb testing.TB, channel, msg string) {
	tb.Helper()
	if err := n.Publish(context.Background(), &bayeux.Publication{Channel: channel, Message: []byte(msg)}); err != nil {
		tb.Fatalf("%s: publish %s: %v", n.NodeID(), channel, err)
	}
}
