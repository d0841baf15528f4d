package client_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
)

// restartable is an in-process Bayou on a fixed 127.0.0.1 address that a
// test can restart: the server shuts down, and a new one, which knows none
// of the old sessions, serves the same address.
type restartable struct {
	cfg     bayeux.Config
	onStart func(*bayeux.Server) error // called with each new server
	addr    string
	url     string

	mu   sync.Mutex
	bs   *bayeux.Server
	hs   *http.Server
	done chan struct{} // closed when hs has stopped serving
}

// startRestartable starts a restartable server, stopped at cleanup.
func startRestartable(t *testing.T, cfg bayeux.Config, onStart func(*bayeux.Server) error) *restartable {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &restartable{cfg: cfg, onStart: onStart, addr: l.Addr().String()}
	r.url = "http://" + r.addr + "/bayeux"
	t.Cleanup(r.stop)
	if err := r.serve(l); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *restartable) serve(l net.Listener) error {
	bs, err := bayeux.New(r.cfg)
	if err != nil {
		_ = l.Close()
		return err
	}
	if r.onStart != nil {
		if err := r.onStart(bs); err != nil {
			_ = l.Close()
			return err
		}
	}
	hs := &http.Server{Handler: bs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(l)
	}()
	r.mu.Lock()
	r.bs, r.hs, r.done = bs, hs, done
	r.mu.Unlock()
	return nil
}

// stop shuts the server down and closes every connection.
func (r *restartable) stop() {
	r.mu.Lock()
	bs, hs, done := r.bs, r.hs, r.done
	r.bs = nil
	r.mu.Unlock()
	if bs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = bs.Shutdown(ctx)
	_ = hs.Close()
	<-done
}

// restart stops the server and starts a new one on the same address.
func (r *restartable) restart(t *testing.T) {
	t.Helper()
	r.stop()
	var l net.Listener
	var err error
	for range 50 { // the port may take a moment to free
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listening again on %s: %v", r.addr, err)
	}
	if err := r.serve(l); err != nil {
		t.Fatal(err)
	}
}

// numbers records, in the order the server publishes them, the integers
// published on /ord/**: an in-process subscriber, attached to every
// server a test starts.
type numbers struct {
	mu  sync.Mutex
	got []int
	bad []string
}

func (n *numbers) attach(bs *bayeux.Server) error {
	_, err := bs.Subscribe("/ord/**", func(m *bayeux.Message) {
		n.mu.Lock()
		defer n.mu.Unlock()
		v, err := strconv.Atoi(m.Data)
		if err != nil {
			n.bad = append(n.bad, m.Data)
			return
		}
		n.got = append(n.got, v)
	})
	return err
}

func (n *numbers) snapshot() (got []int, bad []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]int(nil), n.got...), append([]string(nil), n.bad...)
}

// checkOrder checks what the server received of publishes numbered from 0,
// of which those with ok[i] succeeded: every number first arrived after
// the smaller ones (copies sent again after a failure may follow), and
// none that succeeded is missing. It returns the number of copies.
func checkOrder(t *testing.T, rec *numbers, ok []bool) (copies int) {
	t.Helper()
	got, bad := rec.snapshot()
	if len(bad) > 0 {
		t.Errorf("server received unexpected data: %q", bad)
	}
	seen := make([]bool, len(ok))
	last := -1
	var disorder []string
	for at, v := range got {
		switch {
		case v < 0 || v >= len(ok):
			t.Errorf("server received %d, not a publish of the test", v)
		case seen[v]:
			copies++
		default:
			if v < last {
				disorder = append(disorder, fmt.Sprintf("%d after %d (at %d)", v, last, at))
			}
			seen[v] = true
			last = max(last, v)
		}
	}
	if len(disorder) > 0 {
		t.Errorf("%d of %d publishes first reached the server after a later one: %v",
			len(disorder), len(ok), disorder[:min(len(disorder), 10)])
	}
	var lost []int
	for i := range ok {
		if ok[i] && !seen[i] {
			lost = append(lost, i)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged publishes never reached the subscriber: %v", len(lost), lost[:min(len(lost), 10)])
	}
	return copies
}

// collect waits for the results of publishes and reports which succeeded.
// Failures are allowed only when allowFail.
func collect(t *testing.T, results []<-chan client.PublishResult, allowFail bool) (ok []bool, failed int) {
	t.Helper()
	ok = make([]bool, len(results))
	for i, r := range results {
		res := <-r
		switch {
		case res.Err == nil:
			ok[i] = true
		case allowFail:
			failed++
		default:
			t.Errorf("publish %d: %v", i, res.Err)
		}
	}
	return ok, failed
}

// TestPublishOrderBeforeConnect makes 1,000 publishes before the client is
// connected (its handshake is held), then one more with Publish: all reach
// the server in call order once it connects.
func TestPublishOrderBeforeConnect(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			rec := &numbers{}
			gate := &handshakeGate{}
			gate.close()
			srv, bs := startInproc(t, bayeux.Config{}, gate.wrap)
			if err := rec.attach(bs); err != nil {
				t.Fatal(err)
			}
			c, err := client.New(srv.url, client.WithTransports(tr), client.WithLogger(testLogger(t)),
				client.WithRequestTimeout(3*time.Second), client.WithBackoff(50*time.Millisecond, 500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			ctx := ctxTimeout(t, 30*time.Second)

			const n = 1000
			results := make([]<-chan client.PublishResult, n)
			for i := range n {
				results[i] = c.PublishAsync(ctx, "/ord/pre", i)
			}
			if got := c.State(); got != client.StateConnecting {
				t.Fatalf("state %v before the handshake was let through", got)
			}
			gate.open()
			// A Publish after them goes out after them.
			if _, err := c.Publish(ctx, "/ord/pre", n); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			ok, _ := collect(t, results, false)
			ok = append(ok, true)
			if copies := checkOrder(t, rec, ok); copies != 0 {
				t.Errorf("%d copies without a failure", copies)
			}
		})
	}
}

// TestPublishOrderAcrossRestart makes 1,000 publishes while the server
// restarts (losing every session): those the server acknowledged reach
// its subscriber, each for the first time after the publishes made before
// it.
func TestPublishOrderAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			rec := &numbers{}
			srv := startRestartable(t, bayeux.Config{RetryInterval: 50 * time.Millisecond}, rec.attach)
			states := newStateLog()
			c := dial(t, srv.url, tr, client.WithStateFunc(states.add))
			first := c.ClientID()
			ctx := ctxTimeout(t, 60*time.Second)

			const n = 1000
			results := make([]<-chan client.PublishResult, n)
			third := make(chan struct{})
			published := make(chan struct{})
			go func() {
				defer close(published)
				for i := range n {
					results[i] = c.PublishAsync(ctx, "/ord/restart", i)
					if i == n/3 {
						close(third)
					}
					if i%5 == 4 {
						time.Sleep(time.Millisecond) // spread the calls over the restart
					}
				}
			}()
			<-third
			srv.restart(t)
			states.waitFor(t, client.StateDisconnected, "")
			<-published
			ok, failed := collect(t, results, true)
			copies := checkOrder(t, rec, ok)
			t.Logf("%d publishes: %d failed, %d copies received", n, failed, copies)
			if sc := states.waitFor(t, client.StateConnected, ""); sc.ClientID == first {
				t.Errorf("the restarted server kept session %s", first)
			}
			// The client goes on publishing.
			if _, err := c.Publish(ctx, "/after", 1); err != nil {
				t.Errorf("Publish after the restart: %v", err)
			}
		})
	}
}
