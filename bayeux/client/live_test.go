package client_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux/client"
)

// TestLive runs the client against live servers, the bayou binary and the
// npm faye 1.4.3 server, over both transports: publish and subscribe,
// wildcards, refused requests, and recovery after a server restart (which,
// on bayou, loses the history a resubscribe asks to replay).
func TestLive(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"bayou", "faye"} {
		for _, tr := range transports {
			t.Run(kind+"/"+string(tr), func(t *testing.T) {
				t.Parallel()
				srv := startProcess(t, kind, 2)
				t.Run("roundtrip", func(t *testing.T) { liveRoundTrip(t, srv, tr) })
				t.Run("wildcards", func(t *testing.T) { liveWildcards(t, srv, tr) })
				t.Run("refused", func(t *testing.T) { liveRefused(t, srv, tr) })
				t.Run("recovery", func(t *testing.T) { liveRecovery(t, srv, tr) })
				if kind == "bayou" {
					t.Run("history lost in a restart", func(t *testing.T) { liveHistoryLost(t, srv, tr) })
				}
			})
		}
	}
}

func liveRoundTrip(t *testing.T, srv *testServer, tr client.Transport) {
	// timedOut is closed by the first connect reply that comes a second or
	// more after the last delivery: a held connect that timed out (the
	// servers hold them for 2s) rather than one released by a delivery.
	timedOut := make(chan struct{})
	var (
		mu           sync.Mutex
		lastDelivery time.Time
	)
	sub := dial(t, srv.url, tr, client.WithExtension(client.Extension{
		Incoming: func(m *client.Message) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !strings.HasPrefix(m.Channel, "/meta/"):
				lastDelivery = time.Now()
			case m.Channel == "/meta/connect" && !lastDelivery.IsZero() && time.Since(lastDelivery) >= time.Second:
				select {
				case <-timedOut:
				default:
					close(timedOut)
				}
			}
		},
	}))
	pub := dial(t, srv.url, tr, client.WithExtension(client.Extension{
		Outgoing: func(m *client.Message) {
			if m.Channel == "/live/rt" {
				m.SetExt("tag", "from-go")
			}
		},
	}))
	ctx := ctxTimeout(t, 10*time.Second)
	in := newInbox()
	if _, err := sub.Subscribe(ctx, "/live/rt", in.handler); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ack, err := pub.Publish(ctx, "/live/rt", map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if !ack.Successful {
			t.Errorf("ack %+v", ack)
		}
		m := in.next(t, 5*time.Second)
		if want := fmt.Sprintf(`{"n":%d}`, i); m.Channel != "/live/rt" || string(m.Data) != want {
			t.Errorf("got %s %s, want /live/rt %s", m.Channel, m.Data, want)
		}
		// faye forwards the publisher's ext; bayou does not, unless
		// configured to (bayeux.Config.ForwardExt).
		if forwarded := m.Ext["tag"] == "from-go"; forwarded != (srv.kind == "faye") {
			t.Errorf("%s: ext = %v", srv.kind, m.Ext)
		}
	}
	// A held connect is released by a delivery, and the next connects are
	// held again: messages keep flowing after more than one timeout.
	select {
	case <-timedOut:
	case <-time.After(10 * time.Second):
		t.Fatal("no held connect timed out after the deliveries")
	}
	if _, err := pub.Publish(ctx, "/live/rt", "late"); err != nil {
		t.Fatal(err)
	}
	if m := in.next(t, 5*time.Second); string(m.Data) != `"late"` {
		t.Errorf("got %s after a connect timeout", m.Data)
	}
	if sub.State() != client.StateConnected {
		t.Errorf("subscriber state %v", sub.State())
	}
}

func liveWildcards(t *testing.T, srv *testServer, tr client.Transport) {
	c := dial(t, srv.url, tr)
	ctx := ctxTimeout(t, 10*time.Second)
	got := make(map[string][]string) // pattern -> channels, written by the dispatch goroutine only
	done := make(chan struct{})
	patterns := []string{"/w/*", "/w/**", "/w/a", "/w/a/*", "/*"}
	for _, p := range patterns {
		if _, err := c.Subscribe(ctx, p, func(m *client.Message) {
			if m.Channel == "/w/end" {
				if p == "/w/*" {
					close(done)
				}
				return
			}
			got[p] = append(got[p], m.Channel)
		}); err != nil {
			t.Fatalf("Subscribe(%s): %v", p, err)
		}
	}
	for _, ch := range []string{"/w/a", "/w/a/b", "/w/a/b/c", "/w", "/x/y", "/w/end"} {
		if _, err := c.Publish(ctx, ch, ch); err != nil {
			t.Fatalf("Publish(%s): %v", ch, err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("sentinel not received")
	}
	want := map[string]string{
		"/w/*":   "[/w/a]",
		"/w/**":  "[/w/a /w/a/b /w/a/b/c]",
		"/w/a":   "[/w/a]",
		"/w/a/*": "[/w/a/b]",
		"/*":     "[/w]",
	}
	for _, p := range patterns {
		if g := fmt.Sprint(got[p]); g != want[p] {
			t.Errorf("%s received %s, want %s", p, g, want[p])
		}
	}
}

func liveRefused(t *testing.T, srv *testServer, tr client.Transport) {
	c := dial(t, srv.url, tr)
	ctx := ctxTimeout(t, 10*time.Second)
	tests := []struct {
		name    string
		do      func() error
		code    client.ErrorCode
		args    []string
		message string
	}{
		{"subscribe to a meta channel", func() error {
			_, err := c.Subscribe(ctx, "/meta/foo", func(*client.Message) {})
			return err
		}, 403, []string{"/meta/foo"}, "Forbidden channel"},
		{"subscribe to an invalid pattern", func() error {
			_, err := c.Subscribe(ctx, "/foo/*/bar", func(*client.Message) {})
			return err
		}, 405, []string{"/foo/*/bar"}, "Invalid channel"},
		{"publish to a meta channel", func() error {
			_, err := c.Publish(ctx, "/meta/foo", 1)
			return err
		}, 403, []string{"/meta/foo"}, "Forbidden channel"},
		{"publish to a pattern", func() error {
			_, err := c.Publish(ctx, "/foo/*", 1)
			return err
		}, 405, []string{"/foo/*"}, "Invalid channel"},
	}
	for _, tc := range tests {
		err := tc.do()
		var berr *client.Error
		if !errors.As(err, &berr) {
			t.Errorf("%s: %v, want an *Error", tc.name, err)
			continue
		}
		if berr.Code != tc.code || fmt.Sprint(berr.Args) != fmt.Sprint(tc.args) || berr.Message != tc.message {
			t.Errorf("%s: got %d %q %q, want %d %q %q", tc.name, berr.Code, berr.Args, berr.Message, tc.code, tc.args, tc.message)
		}
	}
	// The client is still usable.
	if _, err := c.Publish(ctx, "/live/ok", 1); err != nil {
		t.Errorf("Publish after refusals: %v", err)
	}
}

func liveRecovery(t *testing.T, srv *testServer, tr client.Transport) {
	states := newStateLog()
	c := dial(t, srv.url, tr, client.WithStateFunc(states.add))
	ctx := ctxTimeout(t, 30*time.Second)
	in := newInbox()
	if _, err := c.Subscribe(ctx, "/rec/**", in.handler); err != nil {
		t.Fatal(err)
	}
	in2 := newInbox()
	if _, err := c.Subscribe(ctx, "/rec/x", in2.handler); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "/rec/x", "before"); err != nil {
		t.Fatal(err)
	}
	in.next(t, 5*time.Second)
	in2.next(t, 5*time.Second)
	old := c.ClientID()
	states.waitFor(t, client.StateConnected, old)

	start := time.Now()
	srv.restart(t)
	states.waitFor(t, client.StateDisconnected, "")
	sc := states.waitFor(t, client.StateConnected, "")
	t.Logf("%s/%s: reconnected %v after the restart began, clientId %s -> %s", srv.kind, tr, time.Since(start).Round(time.Millisecond), old, sc.ClientID)
	if sc.ClientID == old {
		t.Errorf("same clientId %s after the restart", old)
	}
	if sc.Transport != tr {
		t.Errorf("transport %s after the restart, want %s", sc.Transport, tr)
	}

	// Both subscriptions were restored: a message published after the
	// restart, by another client, reaches both handlers.
	pub := dial(t, srv.url, tr)
	if _, err := pub.Publish(ctx, "/rec/x", "after"); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*inbox{in, in2} {
		if m := b.next(t, 5*time.Second); string(m.Data) != `"after"` {
			t.Errorf("got %s after the restart", m.Data)
		}
	}
	in.none(t, 200*time.Millisecond)
}

// liveHistoryLost restarts bayou, whose history is in memory: the client
// asks to resume /h/live after the last message it received, the new
// process has no such position, so the client reports a gap and receives
// the new messages.
func liveHistoryLost(t *testing.T, srv *testServer, tr client.Transport) {
	states, gaps := newStateLog(), newGapLog()
	c := dial(t, srv.url, tr, client.WithStateFunc(states.add), client.WithGapFunc(gaps.add))
	ctx := ctxTimeout(t, 30*time.Second)
	in := newInbox()
	if _, err := c.Subscribe(ctx, "/h/live", in.handler); err != nil {
		t.Fatal(err)
	}
	pub := dial(t, srv.url, tr)
	for _, d := range []string{"1", "2"} {
		if _, err := pub.Publish(ctx, "/h/live", d); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, in, `"1"`, `"2"`)
	old := c.ClientID()
	states.waitFor(t, client.StateConnected, old)

	srv.restart(t)
	states.waitFor(t, client.StateDisconnected, "")
	states.waitFor(t, client.StateConnected, "")
	g := gaps.next(t)
	var berr *client.Error
	if g.Channel != "/h/live" || g.After.ReplayID != 2 || !errors.As(g.Err, &berr) || berr.Code != 400 {
		t.Errorf("gap %+v, want /h/live after 2 refused with a 400", g)
	}
	pub2 := dial(t, srv.url, tr)
	if _, err := pub2.Publish(ctx, "/h/live", "3"); err != nil {
		t.Fatal(err)
	}
	m := in.next(t, 5*time.Second)
	if pos, _ := m.Position(); string(m.Data) != `"3"` || pos.ReplayID != 1 || pos.Epoch == g.After.Epoch {
		t.Errorf("got %s at %+v after the restart, want \"3\" at 1 in a new epoch", m.Data, pos)
	}
}
