package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

var transports = []client.Transport{client.TransportWebSocket, client.TransportLongPolling}

// countingExtension counts, per channel, the messages the server receives
// (the subscribe and unsubscribe ones per subscription).
type countingExtension struct {
	bayeux.NopExtension
	mu     sync.Mutex
	counts map[string]int
}

func (e *countingExtension) Incoming(_ context.Context, m *bayeux.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts = make(map[string]int)
	}
	key := m.Channel
	if subs := m.Subscriptions(); len(subs) > 0 {
		key += " " + subs[0]
	}
	e.counts[key]++
}

func (e *countingExtension) count(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[key]
}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			srv, _ := startInproc(t, bayeux.Config{}, nil)
			sub := dial(t, srv.url, tr)
			pub := dial(t, srv.url, tr)
			ctx := ctxTimeout(t, 10*time.Second)
			in := newInbox()
			if _, err := sub.Subscribe(ctx, "/rt/chat", in.handler); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name string
				data any
				want string
			}{
				{"object", map[string]any{"text": "hi", "n": 1}, `{"n":1,"text":"hi"}`},
				{"string", "héllo \u2028", `"héllo \u2028"`},
				{"null", nil, `null`},
				{"raw", json.RawMessage(`{"big":12345678901234567890}`), `{"big":12345678901234567890}`},
			}
			for _, tc := range tests {
				ack, err := pub.Publish(ctx, "/rt/chat", tc.data)
				if err != nil {
					t.Fatalf("%s: Publish: %v", tc.name, err)
				}
				if !ack.Successful || ack.Channel != "/rt/chat" {
					t.Errorf("%s: ack = %+v", tc.name, ack)
				}
				m := in.next(t, 5*time.Second)
				if m.Channel != "/rt/chat" || !jsonEqual(m.Data, tc.want) {
					t.Errorf("%s: got %s %s, want /rt/chat %s", tc.name, m.Channel, m.Data, tc.want)
				}
			}
		})
	}
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return string(a) == b
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

func TestOneServerSubscriptionPerPattern(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			ext := &countingExtension{}
			srv, _ := startInproc(t, bayeux.Config{Extensions: []bayeux.Extension{ext}}, nil)
			c := dial(t, srv.url, tr)
			ctx := ctxTimeout(t, 10*time.Second)

			// Five handlers on one pattern, subscribed concurrently.
			var subs [5]*client.Subscription
			var got [5]atomic.Int32
			var wg sync.WaitGroup
			for i := range subs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := c.Subscribe(ctx, "/one/*", func(*client.Message) { got[i].Add(1) })
					if err != nil {
						t.Error(err)
						return
					}
					subs[i] = s
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			if n := ext.count("/meta/subscribe /one/*"); n != 1 {
				t.Errorf("server received %d subscribes for /one/*, want 1", n)
			}
			if _, err := c.Publish(ctx, "/one/x", 1); err != nil {
				t.Fatal(err)
			}
			bayeuxtest.Eventually(t, 5*time.Second, func() bool {
				for i := range got {
					if got[i].Load() != 1 {
						return false
					}
				}
				return true
			}, "every handler called")

			// Cancelling all but one keeps the server subscription.
			for _, s := range subs[:4] {
				if err := s.Cancel(ctx); err != nil {
					t.Fatal(err)
				}
				if !errors.Is(s.Err(), client.ErrUnsubscribed) {
					t.Errorf("Err() after Cancel = %v", s.Err())
				}
			}
			if n := ext.count("/meta/unsubscribe /one/*"); n != 0 {
				t.Errorf("server received %d unsubscribes while a handler is left", n)
			}
			if _, err := c.Publish(ctx, "/one/x", 2); err != nil {
				t.Fatal(err)
			}
			bayeuxtest.Eventually(t, 5*time.Second, func() bool { return got[4].Load() == 2 }, "last handler called")
			for i := range 4 {
				if n := got[i].Load(); n != 1 {
					t.Errorf("cancelled handler %d called %d times", i, n)
				}
			}

			// The last one unsubscribes on the server.
			if err := subs[4].Cancel(ctx); err != nil {
				t.Fatal(err)
			}
			if n := ext.count("/meta/unsubscribe /one/*"); n != 1 {
				t.Errorf("server received %d unsubscribes, want 1", n)
			}
			select {
			case <-subs[4].Done():
			default:
				t.Error("Done not closed after Cancel")
			}
			if err := subs[4].Cancel(ctx); err != nil {
				t.Errorf("second Cancel: %v", err)
			}
			// Subscribing again makes a new server subscription.
			if _, err := c.Subscribe(ctx, "/one/*", func(*client.Message) {}); err != nil {
				t.Fatal(err)
			}
			if n := ext.count("/meta/subscribe /one/*"); n != 2 {
				t.Errorf("server received %d subscribes, want 2", n)
			}
		})
	}
}

// authExtension rejects subscribes and publishes whose ext lacks the token.
type authExtension struct {
	bayeux.NopExtension
	token string
}

func (e authExtension) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel == "/meta/subscribe" || !strings.HasPrefix(m.Channel, "/meta/") {
		if m.ExtString("token") != e.token {
			m.Error = "403::Authentication required"
			return
		}
		m.DeleteExt("token") // not forwarded to subscribers
	}
}

func TestExtensionAddsToken(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			srv, _ := startInproc(t, bayeux.Config{Extensions: []bayeux.Extension{authExtension{token: "s3cret"}}}, nil)
			ctx := ctxTimeout(t, 10*time.Second)

			anon := dial(t, srv.url, tr)
			_, err := anon.Subscribe(ctx, "/private", func(*client.Message) {})
			var berr *client.Error
			if !errors.As(err, &berr) || berr.Code != 403 || berr.Message != "Authentication required" {
				t.Fatalf("Subscribe without token: %v, want 403 Authentication required", err)
			}

			var incoming atomic.Int32
			auth := dial(t, srv.url, tr, client.WithExtension(client.Extension{
				Outgoing: func(m *client.Message) {
					if m.Channel == "/meta/subscribe" || m.Channel == "/private" {
						m.SetExt("token", "s3cret")
					}
				},
				Incoming: func(m *client.Message) {
					if m.Channel == "/private" && m.Data != nil {
						incoming.Add(1)
					}
				},
			}))
			in := newInbox()
			if _, err := auth.Subscribe(ctx, "/private", in.handler); err != nil {
				t.Fatalf("Subscribe with token: %v", err)
			}
			if _, err := auth.Publish(ctx, "/private", "x"); err != nil {
				t.Fatalf("Publish with token: %v", err)
			}
			m := in.next(t, 5*time.Second)
			if _, leaked := m.Ext["token"]; leaked {
				t.Errorf("token forwarded to subscribers: %v", m.Ext)
			}
			if incoming.Load() != 1 {
				t.Errorf("incoming extension saw %d deliveries, want 1", incoming.Load())
			}
			_, err = anon.Publish(ctx, "/private", "x")
			if !errors.As(err, &berr) || berr.Code != 403 {
				t.Errorf("Publish without token: %v, want 403", err)
			}
		})
	}
}

func TestRecoveryAfterUnknownClient(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			srv, bs := startInproc(t, bayeux.Config{RetryInterval: 100 * time.Millisecond}, nil)
			states := newStateLog()
			c := dial(t, srv.url, tr, client.WithStateFunc(states.add))
			ctx := ctxTimeout(t, 15*time.Second)
			in := newInbox()
			if _, err := c.Subscribe(ctx, "/rec/**", in.handler); err != nil {
				t.Fatal(err)
			}
			old := c.ClientID()
			states.waitFor(t, client.StateConnected, old)
			// The server forgets the session (as after a restart or a GC).
			if err := bs.Disconnect(t.Context(), old); err != nil {
				t.Fatal(err)
			}
			states.waitFor(t, client.StateDisconnected, "")
			sc := states.waitFor(t, client.StateConnected, "")
			if sc.ClientID == old || sc.ClientID == "" {
				t.Fatalf("reconnected with clientId %q (old %q)", sc.ClientID, old)
			}
			if err := bayeuxPublish(bs, "/rec/a/b", "after"); err != nil {
				t.Fatal(err)
			}
			if m := in.next(t, 5*time.Second); m.Channel != "/rec/a/b" || string(m.Data) != `"after"` {
				t.Errorf("got %s %s after recovery", m.Channel, m.Data)
			}
		})
	}
}

// bayeuxPublish publishes through the server's own API.
func bayeuxPublish(s *bayeux.Server, channel string, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Publish(ctx, channel, data)
}

// stateLog records state changes.
type stateLog struct {
	mu     sync.Mutex
	all    []client.StateChange
	notify chan struct{}
	seen   int
}

func newStateLog() *stateLog { return &stateLog{notify: make(chan struct{}, 1)} }

func (l *stateLog) add(sc client.StateChange) {
	l.mu.Lock()
	l.all = append(l.all, sc)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// waitFor waits for the next change to state (with that clientId when
// not empty) after those already consumed.
func (l *stateLog) waitFor(t *testing.T, state client.State, clientID string) client.StateChange {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		for l.seen < len(l.all) {
			sc := l.all[l.seen]
			l.seen++
			if sc.State == state && (clientID == "" || sc.ClientID == clientID) {
				l.mu.Unlock()
				return sc
			}
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("state %v not reached within 20s; changes: %+v", state, l.all)
		}
	}
}

// TestConcurrentUse hammers one client from many goroutines (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			srv, _ := startInproc(t, bayeux.Config{}, nil)
			c := dial(t, srv.url, tr)
			ctx := ctxTimeout(t, 20*time.Second)
			var received atomic.Int64
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pattern := fmt.Sprintf("/conc/%d/*", g%3)
					for i := range 20 {
						s, err := c.Subscribe(ctx, pattern, func(*client.Message) { received.Add(1) })
						if err != nil {
							t.Error(err)
							return
						}
						if _, err := c.Publish(ctx, fmt.Sprintf("/conc/%d/x", g%3), i); err != nil {
							t.Error(err)
							return
						}
						_ = c.State()
						_ = c.ClientID()
						if i%2 == 0 {
							if err := s.Cancel(ctx); err != nil {
								t.Error(err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			if received.Load() == 0 {
				t.Error("no message received")
			}
		})
	}
}

// TestNoGoroutineLeaks runs clients through their life, including Close
// in the middle of operations, and checks that every goroutine they
// started has ended. It does not run in parallel with other tests.
func TestNoGoroutineLeaks(t *testing.T) {
	srv, _ := startInproc(t, bayeux.Config{}, nil)
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ctx := ctxTimeout(t, 10*time.Second)
			c, err := client.Dial(ctx, srv.url, client.WithTransports(tr), client.WithLogger(testLogger(t)))
			if err != nil {
				t.Fatal(err)
			}
			in := newInbox()
			sub, err := c.Subscribe(ctx, "/leak/*", in.handler)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Publish(ctx, "/leak/a", 1); err != nil {
				t.Fatal(err)
			}
			in.next(t, 5*time.Second)
			async := c.PublishAsync(ctx, "/leak/b", 2)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			<-async // answered or failed with ErrClosed, never left hanging
			select {
			case <-sub.Done():
				if !errors.Is(sub.Err(), client.ErrClosed) {
					t.Errorf("subscription Err after Close = %v", sub.Err())
				}
			default:
				t.Error("subscription not ended by Close")
			}
			if _, err := c.Publish(ctx, "/leak/a", 1); !errors.Is(err, client.ErrClosed) {
				t.Errorf("Publish after Close: %v, want ErrClosed", err)
			}
			if _, err := c.Subscribe(ctx, "/leak/c", in.handler); !errors.Is(err, client.ErrClosed) {
				t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
			}
			if got := c.State(); got != client.StateClosed {
				t.Errorf("State() = %v after Close", got)
			}
			checkNoLeaks(t)
		})
	}
	t.Run("close while recovering", func(t *testing.T) {
		// A server that is gone: the client keeps retrying until closed.
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		var log bayeuxtest.Buffer
		c, err := client.New(fmt.Sprintf("http://127.0.0.1:%d/bayeux", port),
			client.WithLogger(slog.New(slog.NewTextHandler(&log, nil))), client.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		waiting := make(chan error, 1)
		go func() {
			_, err := c.Publish(context.Background(), "/nowhere", 1)
			waiting <- err
		}()
		bayeuxtest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(log.String(), "attempt=3") },
			"a third failed handshake logged")
		if got := c.State(); got != client.StateConnecting {
			t.Errorf("State() = %v while the server is unreachable", got)
		}
		_ = c.Close()
		select {
		case err := <-waiting:
			if !errors.Is(err, client.ErrClosed) {
				t.Errorf("pending Publish: %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Publish still waiting after Close")
		}
		checkNoLeaks(t)
	})
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := client.Dial(ctx, fmt.Sprintf("http://127.0.0.1:%d/bayeux", port), client.WithLogger(quietLogger())); err == nil {
		t.Error("Dial to a closed port succeeded")
	}

	refuse := handshakeRefusal{}
	srv, _ := startInproc(t, bayeux.Config{Extensions: []bayeux.Extension{refuse}}, nil)
	_, err = client.Dial(ctx, srv.url, client.WithLogger(quietLogger()))
	var berr *client.Error
	if !errors.As(err, &berr) || berr.Code != 401 || !errors.Is(err, client.ErrStopped) {
		t.Errorf("Dial refused with reconnect none: %v, want a 401 *Error and ErrStopped", err)
	}

	bad := []struct {
		url  string
		opts []client.Option
	}{
		{"ftp://example.com/bayeux", nil},
		{"http://127.0.0.1/bayeux", []client.Option{client.WithTransports("flash")}},
		{"http://127.0.0.1/bayeux", []client.Option{client.WithBackoff(time.Second, time.Millisecond)}},
		{"http://127.0.0.1/bayeux", []client.Option{client.WithRequestTimeout(0)}},
	}
	for _, tc := range bad {
		if c, err := client.New(tc.url, tc.opts...); err == nil {
			_ = c.Close()
			t.Errorf("New(%q) with bad options succeeded", tc.url)
		}
	}
}

// handshakeRefusal rejects every handshake for good.
type handshakeRefusal struct{ bayeux.NopExtension }

func (handshakeRefusal) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel == "/meta/handshake" {
		m.Error, m.Final = "401::Access denied", true
	}
}

// TestHandlerMayCallClient checks that a handler can publish and subscribe
// synchronously: replies do not wait for the handler goroutine.
func TestHandlerMayCallClient(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			srv, _ := startInproc(t, bayeux.Config{}, nil)
			c := dial(t, srv.url, tr)
			ctx := ctxTimeout(t, 10*time.Second)
			pongs := newInbox()
			errs := make(chan error, 2)
			if _, err := c.Subscribe(ctx, "/ping", func(m *client.Message) {
				_, err := c.Subscribe(ctx, "/pong", pongs.handler)
				if err == nil {
					_, err = c.Publish(ctx, "/pong", json.RawMessage(m.Data))
				}
				errs <- err
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Publish(ctx, "/ping", 42); err != nil {
				t.Fatal(err)
			}
			if err := <-errs; err != nil {
				t.Fatalf("calls from the handler: %v", err)
			}
			if m := pongs.next(t, 5*time.Second); string(m.Data) != "42" {
				t.Errorf("pong %s", m.Data)
			}
		})
	}
}
