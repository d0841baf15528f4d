package bayeux

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/channels"
)

// eventLog records events as "kind:channel" strings.
type eventLog struct {
	mu  sync.Mutex
	got []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, s)
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

func (l *eventLog) events() Events {
	return Events{
		Handshake:   func(*Session) { l.add("handshake") },
		Subscribe:   func(_ *Session, ch string) { l.add("subscribe:" + ch) },
		Unsubscribe: func(_ *Session, ch string) { l.add("unsubscribe:" + ch) },
		Publish:     func(_ *Session, ch string, _ []byte) { l.add("publish:" + ch) },
		Disconnect:  func(*Session, EndReason) { l.add("disconnect") },
	}
}

func TestObserve(t *testing.T) {
	var cfgLog, obsLog eventLog
	ts := newTestServer(t, Config{Events: cfgLog.events()})
	cancel := ts.Observe(obsLog.events())
	id := ts.handshake(t)
	ts.subscribe(t, id, "/a")
	ts.publish(t, "/a", `1`)
	ts.post(t, `{"channel":"/meta/disconnect","clientId":"`+id+`"}`)
	want := []string{"handshake", "subscribe:/a", "publish:/a", "unsubscribe:/a", "disconnect"}
	if got := obsLog.list(); !slices.Equal(got, want) {
		t.Fatalf("observer saw %q, want %q", got, want)
	}
	if got := cfgLog.list(); !slices.Equal(got, want) {
		t.Fatalf("Config.Events saw %q, want %q", got, want)
	}

	cancel()
	cancel() // a second call does nothing
	id = ts.handshake(t)
	ts.subscribe(t, id, "/b")
	if got := obsLog.list(); len(got) != len(want) {
		t.Fatalf("cancelled observer still called: %q", got)
	}
	if got := cfgLog.list(); got[len(got)-1] != "subscribe:/b" {
		t.Fatalf("Config.Events after cancel: %q", got)
	}
}

// attachExt is an Attacher that records the server it is attached to.
type attachExt struct {
	NopExtension
	err error
	srv *Server
}

func (a *attachExt) Attach(srv *Server) error {
	a.srv = srv
	return a.err
}

func TestAttach(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &attachExt{}
	srv, err := New(Config{Extensions: []Extension{a}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if a.srv != srv {
		t.Fatal("Attach was not given the server")
	}
	// A goroutine started with Go lives until Shutdown, which waits for it.
	started, stopped := make(chan struct{}), make(chan struct{})
	if !srv.Go(func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		close(stopped)
	}) {
		t.Fatal("Go refused on a running server")
	}
	<-started
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("Shutdown returned before the Go goroutine")
	}
	if srv.Go(func(context.Context) {}) {
		t.Fatal("Go ran after Shutdown")
	}

	failing := &attachExt{err: errors.New("no store")}
	if _, err := New(Config{Extensions: []Extension{failing}, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "no store") {
		t.Fatalf("New with a failing Attach: %v", err)
	}
}

// TestAfterReply sends a welcome to each new subscriber of /room from the
// Incoming hook. Sent at once, it would reach the client before the reply
// to its subscribe, which faye's client ignores; after AfterReply it comes
// after the reply.
func TestAfterReply(t *testing.T) {
	var srv *Server
	welcome := funcExt{in: func(_ context.Context, m *Message) {
		if m.Channel != channels.MetaSubscribe || m.Session == nil {
			return
		}
		sess := m.Session
		m.AfterReply(func() {
			if sess.Subscribed("/room") {
				_ = srv.Deliver(context.Background(), sess.ID(), "/room", "welcome")
			}
		})
	}}
	ts := newTestServer(t, Config{Extensions: []Extension{welcome}, Timeout: 5 * time.Second})
	srv = ts.Server

	for _, channel := range []string{"/room", "/other"} {
		t.Run(channel, func(t *testing.T) {
			ws := ts.dial(t)
			send := func(s string) {
				if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			send(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`)
			id := readFrame(t, ws, 2*time.Second).Get("0.clientId").String()
			// A held connect first, so that a delivery is written at once.
			send(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","id":"c"}]`)
			send(`[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"` + channel + `","id":"s"}]`)
			var order []string
			deadline := time.Now().Add(2 * time.Second)
			for len(order) < 2 && time.Now().Before(deadline) {
				_ = ws.SetReadDeadline(deadline)
				_, b, err := ws.ReadMessage()
				if err != nil {
					break
				}
				for _, m := range gjson.ParseBytes(b).Array() {
					switch {
					case m.Get("data").String() == "fence":
						order = append(order, "fence")
					case m.Get("id").String() == "s":
						order = append(order, "reply")
						if channel == "/other" { // nothing may come before a fence
							ts.publish(t, channel, `"fence"`)
						}
					case m.Get("data").String() == "welcome":
						order = append(order, "welcome")
					case m.Get("id").String() == "c":
						order = append(order, "connect")
					}
				}
			}
			want := []string{"reply", "welcome"}
			if channel != "/room" {
				want = []string{"reply", "fence"}
			}
			if got := slices.DeleteFunc(order, func(s string) bool { return s == "connect" }); !slices.Equal(got, want) {
				t.Fatalf("frames brought %q, want %q", got, want)
			}
		})
	}

	// Outside the handling of a message, AfterReply does nothing.
	var m Message
	if m.AfterReply(func() { t.Error("ran") }) {
		t.Fatal("AfterReply accepted outside a handling")
	}
}
