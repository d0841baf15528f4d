package bayeux

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// pingEngine is the memory engine with a Ping that fails while down is set.
type pingEngine struct {
	Engine
	down error
}

func (e *pingEngine) Ping(context.Context) error { return e.down }

func TestReady(t *testing.T) {
	unreachable := errors.New("unreachable")
	eng := &pingEngine{Engine: NewMemoryEngine()}
	ts := newTestServer(t, Config{Engine: eng})
	ctx := context.Background()
	if err := ts.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	eng.down = unreachable
	if err := ts.Ready(ctx); !errors.Is(err, unreachable) {
		t.Fatalf("Ready with the engine down: %v", err)
	}
	eng.down = nil
	ts.Drain()
	if err := ts.Ready(ctx); !errors.Is(err, ErrDraining) {
		t.Fatalf("Ready while draining: %v", err)
	}
	// Draining, the server still serves its clients and new ones.
	id := ts.handshake(t)
	ts.subscribe(t, id, "/d")
	ts.publish(t, "/d", `"still served"`)
	if r := ts.post(t, connectBody(id, "")); !gjson.Get(r.Raw, `#(channel=="/d").data`).Exists() {
		t.Fatalf("connect while draining: %s", r.Raw)
	}
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ts.Ready(ctx); !errors.Is(err, ErrDraining) {
		t.Fatalf("Ready after Shutdown: %v", err)
	}
}

// TestShutdownSendsClientsElsewhere checks the answer of the connects held
// at shutdown, on long-polling and WebSocket: unsuccessful, with advice to
// handshake again (which CometD, unlike faye, honours only on a failure).
func TestShutdownSendsClientsElsewhere(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 20 * time.Second})
	lp := ts.handshake(t)
	ws := ts.dial(t)
	wsID := ts.handshake(t)
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/connect","clientId":"`+wsID+`","connectionType":"websocket","id":"9"}]`))
	bayeuxtest.Eventually(t, 5*time.Second, ts.sessions.get(wsID).waiting, "the WebSocket connect held")
	answered := make(chan gjson.Result, 1)
	go func() {
		answered <- ts.post(t, `{"channel":"/meta/connect","clientId":"`+lp+`","connectionType":"long-polling","id":"7"}`)
	}()
	bayeuxtest.Eventually(t, 5*time.Second, ts.sessions.get(lp).waiting, "the long-poll held")

	go func() { _ = ts.Shutdown(context.Background()) }()
	check := func(via string, r gjson.Result, id string) {
		t.Helper()
		if r.Get("0.id").String() != id || r.Get("0.successful").Bool() || r.Get("0.error").String() != "503::Server shutting down" ||
			r.Get("0.advice.reconnect").String() != "handshake" {
			t.Fatalf("held %s connect answered %s", via, r.Raw)
		}
	}
	select {
	case r := <-answered:
		check("long-polling", r, "7")
	case <-time.After(3 * time.Second):
		t.Fatal("held long-poll not answered at shutdown")
	}
	check("WebSocket", readFrame(t, ws, 3*time.Second), "9")
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("socket closed with %v, want 1001", err)
	}
}
