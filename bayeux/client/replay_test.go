package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// historyConfig keeps the history of /h/**.
func historyConfig() bayeux.Config {
	return bayeux.Config{
		RetryInterval: 100 * time.Millisecond,
		History:       []bayeux.HistoryRule{{Pattern: "/h/**", Size: 100}},
	}
}

// handshakeGate holds the handshakes of a test's clients while closed.
type handshakeGate struct {
	mu   sync.Mutex
	shut chan struct{} // nil while open
	held atomic.Int32  // handshakes held so far
}

func (g *handshakeGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

func (g *handshakeGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

func (g *handshakeGate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			g.mu.Lock()
			shut := g.shut
			g.mu.Unlock()
			if shut != nil && bytes.Contains(body, []byte(`"/meta/handshake"`)) {
				g.held.Add(1)
				select {
				case <-shut:
				case <-r.Context().Done():
					return
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// subscribeLog records the ext of the subscribes the server receives.
type subscribeLog struct {
	bayeux.NopExtension
	mu   sync.Mutex
	exts []string
}

func (l *subscribeLog) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel == "/meta/subscribe" {
		l.mu.Lock()
		l.exts = append(l.exts, m.Ext)
		l.mu.Unlock()
	}
}

// asked returns the ext.replay values of the subscribes to channel, in
// order, separated by spaces: -1, -2, N, or N@epoch for the object form.
func (l *subscribeLog) asked(channel string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ext := range l.exts {
		r := gjson.Get(ext, "replay."+gjson.Escape(channel))
		switch {
		case r.IsObject():
			out = append(out, r.Get("replayId").Raw+"@"+r.Get("epoch").Str)
		case r.Exists():
			out = append(out, r.Raw)
		}
	}
	return strings.Join(out, " ")
}

// gapLog collects the gaps a client reports.
type gapLog struct{ ch chan client.Gap }

func newGapLog() *gapLog { return &gapLog{ch: make(chan client.Gap, 16)} }

func (l *gapLog) add(g client.Gap) { l.ch <- g }

func (l *gapLog) next(t *testing.T) client.Gap {
	t.Helper()
	select {
	case g := <-l.ch:
		return g
	case <-time.After(10 * time.Second):
		t.Fatal("no gap reported within 10s")
		return client.Gap{}
	}
}

// expect reads the next messages of b and checks their data and that
// their positions grow by one.
func expect(t *testing.T, b *inbox, want ...string) {
	t.Helper()
	var prev client.Position
	for i, w := range want {
		m := b.next(t, 10*time.Second)
		if got := string(m.Data); got != w {
			t.Fatalf("message %d on %s: got %s, want %s", i, m.Channel, got, w)
		}
		pos, ok := m.Position()
		if !ok || pos.Epoch == "" {
			t.Fatalf("message %s on %s carries no position: ext %v", m.Data, m.Channel, m.Ext)
		}
		if i > 0 && (pos.Epoch != prev.Epoch || pos.ReplayID != prev.ReplayID+1) {
			t.Errorf("position %+v after %+v", pos, prev)
		}
		prev = pos
	}
}

func publishAll(t *testing.T, s *bayeux.Server, channel string, data ...string) {
	t.Helper()
	for _, d := range data {
		if err := bayeuxPublish(s, channel, d); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResumeAfterSessionLoss removes the client's session on the server
// and publishes while the client cannot handshake again: once it can, its
// subscriptions resume where they stopped, so it receives what it missed,
// exactly once and in order; when the server lost the history meanwhile,
// it reports the gap and carries on with new messages.
func TestResumeAfterSessionLoss(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		loseEpoch  bool // remove /h/a's history during the cut
		policy     bayeux.ReplayLostPolicy
		wantMissed []string         // of /h/a
		wantGapErr client.ErrorCode // the code of the gap's Err; -1: no gap, 0: no Err
	}{
		{"replays missed", false, bayeux.ReplayLostError, []string{`"4"`, `"5"`, `"6"`}, -1},
		{"history lost, refused", true, bayeux.ReplayLostError, nil, 400},
		{"history lost, reported", true, bayeux.ReplayLostReport, nil, 0},
	}
	for _, tc := range tests {
		for _, tr := range transports {
			t.Run(tc.name+"/"+string(tr), func(t *testing.T) {
				t.Parallel()
				gate := &handshakeGate{}
				subs := &subscribeLog{}
				cfg := historyConfig()
				cfg.ReplayLost = tc.policy
				cfg.Extensions = []bayeux.Extension{subs}
				srv, bs := startInproc(t, cfg, gate.wrap)
				states, gaps := newStateLog(), newGapLog()
				c := dial(t, srv.url, tr, client.WithStateFunc(states.add), client.WithGapFunc(gaps.add))
				ctx := ctxTimeout(t, 30*time.Second)
				a, b := newInbox(), newInbox()
				if _, err := c.Subscribe(ctx, "/h/a", a.handler); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Subscribe(ctx, "/h/b", b.handler); err != nil {
					t.Fatal(err)
				}
				publishAll(t, bs, "/h/a", "1", "2", "3")
				expect(t, a, `"1"`, `"2"`, `"3"`)
				epoch, _, _ := bs.History(ctx, "/h/a", 0, 1)
				old := c.ClientID()
				states.waitFor(t, client.StateConnected, old)

				gate.close()
				if err := bs.Disconnect(ctx, old); err != nil {
					t.Fatal(err)
				}
				states.waitFor(t, client.StateDisconnected, "")
				bayeuxtest.Eventually(t, 10*time.Second, func() bool { return gate.held.Load() > 0 }, "a handshake held")
				if tc.loseEpoch {
					if err := bs.RemoveHistory(ctx, "/h/a"); err != nil {
						t.Fatal(err)
					}
				}
				publishAll(t, bs, "/h/a", "4", "5", "6")
				publishAll(t, bs, "/h/b", "b1", "b2") // no message before the cut
				gate.open()
				sc := states.waitFor(t, client.StateConnected, "")
				if sc.ClientID == old {
					t.Fatalf("same session %s after Disconnect", old)
				}

				// /h/a resumed after 3 in its epoch (then, refused, asked
				// for new messages only); /h/b after the position its
				// first subscribe reply gave.
				wantA := "-1 3@" + epoch[0].Position.Epoch
				if tc.loseEpoch && tc.policy == bayeux.ReplayLostError {
					wantA += " -1"
				}
				if got := subs.asked("/h/a"); got != wantA {
					t.Errorf("subscribes to /h/a asked %q, want %q", got, wantA)
				}
				if got := subs.asked("/h/b"); got != "-1 0" {
					t.Errorf("subscribes to /h/b asked %q, want %q", got, "-1 0")
				}
				expect(t, b, `"b1"`, `"b2"`)
				switch tc.wantGapErr {
				case -1:
				default:
					g := gaps.next(t)
					if g.Channel != "/h/a" || g.After.ReplayID != 3 || g.After.Epoch != epoch[0].Position.Epoch {
						t.Errorf("gap %+v, want /h/a after 3 in epoch %s", g, epoch[0].Position.Epoch)
					}
					var berr *client.Error
					switch {
					case tc.wantGapErr == 0 && (g.Err != nil || g.Resumed.ReplayID != 3 || g.Resumed.Epoch == g.After.Epoch):
						t.Errorf("gap %+v, want no error and resumed after 3 in a new epoch", g)
					case tc.wantGapErr != 0 && (!errors.As(g.Err, &berr) || berr.Code != tc.wantGapErr):
						t.Errorf("gap error %v, want code %d", g.Err, tc.wantGapErr)
					}
				}
				// What was missed, then new messages: no duplicate comes
				// before the new ones.
				publishAll(t, bs, "/h/a", "7")
				publishAll(t, bs, "/h/b", "b3")
				expect(t, a, append(tc.wantMissed, `"7"`)...)
				expect(t, b, `"b3"`)
				select {
				case g := <-gaps.ch:
					t.Errorf("unexpected gap %+v", g)
				default:
				}
			})
		}
	}
}

// TestSubscribeReplay covers the replay options of Subscribe.
func TestSubscribeReplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  bayeux.ReplayLostPolicy
		opt     func(epoch string) client.SubscribeOption // nil: none
		want    []string                                  // before "4"
		gapCode client.ErrorCode                          // -1: no gap
	}{
		{"new only", bayeux.ReplayLostError, nil, nil, -1},
		{"all", bayeux.ReplayLostError, func(string) client.SubscribeOption { return client.ReplayAll() },
			[]string{`"1"`, `"2"`, `"3"`}, -1},
		{"after a position", bayeux.ReplayLostError, func(e string) client.SubscribeOption {
			return client.ReplayAfter(client.Position{ReplayID: 1, Epoch: e})
		}, []string{`"2"`, `"3"`}, -1},
		{"after an id in any epoch", bayeux.ReplayLostError, func(string) client.SubscribeOption {
			return client.ReplayAfter(client.Position{ReplayID: 2})
		}, []string{`"3"`}, -1},
		{"from a lost epoch, refused", bayeux.ReplayLostError, func(string) client.SubscribeOption {
			return client.ReplayAfter(client.Position{ReplayID: 1, Epoch: "gone"})
		}, nil, 400},
		{"from a lost epoch, reported", bayeux.ReplayLostReport, func(string) client.SubscribeOption {
			return client.ReplayAfter(client.Position{ReplayID: 1, Epoch: "gone"})
		}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := historyConfig()
			cfg.ReplayLost = tc.policy
			srv, bs := startInproc(t, cfg, nil)
			publishAll(t, bs, "/h/r", "1", "2", "3")
			ctx := ctxTimeout(t, 10*time.Second)
			pubs, _, _ := bs.History(ctx, "/h/r", 0, 1)
			gaps := newGapLog()
			c := dial(t, srv.url, client.TransportLongPolling, client.WithGapFunc(gaps.add))
			in := newInbox()
			var opts []client.SubscribeOption
			if tc.opt != nil {
				opts = append(opts, tc.opt(pubs[0].Position.Epoch))
			}
			if _, err := c.Subscribe(ctx, "/h/r", in.handler, opts...); err != nil {
				t.Fatal(err)
			}
			if tc.gapCode >= 0 {
				g := gaps.next(t)
				var berr *client.Error
				if g.Channel != "/h/r" || g.After != (client.Position{ReplayID: 1, Epoch: "gone"}) {
					t.Errorf("gap %+v", g)
				}
				if tc.gapCode == 0 && (g.Err != nil || g.Resumed != (client.Position{ReplayID: 3, Epoch: pubs[0].Position.Epoch})) {
					t.Errorf("gap %+v, want no error and resumed at 3", g)
				}
				if tc.gapCode > 0 && (!errors.As(g.Err, &berr) || berr.Code != tc.gapCode) {
					t.Errorf("gap error %v, want %d", g.Err, tc.gapCode)
				}
			}
			publishAll(t, bs, "/h/r", "4")
			expect(t, in, append(tc.want, `"4"`)...)
		})
	}
}

// TestSubscribeReplayRefused: replay options need a channel name that the
// client does not subscribe to yet.
func TestSubscribeReplayRefused(t *testing.T) {
	t.Parallel()
	srv, _ := startInproc(t, historyConfig(), nil)
	c := dial(t, srv.url, client.TransportLongPolling)
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := c.Subscribe(ctx, "/h/*", func(*client.Message) {}, client.ReplayAll()); err == nil {
		t.Error("replay on a pattern accepted")
	}
	if _, err := c.Subscribe(ctx, "/h/x", func(*client.Message) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, "/h/x", func(*client.Message) {}, client.ReplayAll()); err == nil {
		t.Error("replay on a channel subscribed already accepted")
	}
	if _, err := c.Subscribe(ctx, "/h/x", func(*client.Message) {}); err != nil {
		t.Errorf("second handler without replay: %v", err)
	}
}
