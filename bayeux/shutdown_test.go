package bayeux

import (
	"bufio"
	"context"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestShutdownEndsEveryGoroutine runs every transport on a two-node cluster
// (WebSocket and long-polling on the session's own node and forwarded from
// the other, EventSource), shuts both nodes down, and checks that the
// number of goroutines comes back to what it was before: every goroutine the
// servers started was owned and ended by Shutdown.
func TestShutdownEndsEveryGoroutine(t *testing.T) {
	base := runtime.NumGoroutine()
	client := &http.Client{Transport: &http.Transport{}}
	nodes := newTestCluster(t, 2, Config{Timeout: 20 * time.Second, Ping: 50 * time.Millisecond})
	owner, other := nodes[0], nodes[1]
	var clientsDone sync.WaitGroup

	// Long-polling on the owner and forwarded from the other node: both
	// held when the servers shut down.
	for _, via := range []*testServer{owner, other} {
		id := owner.handshake(t)
		owner.subscribe(t, id, "/g")
		clientsDone.Add(1)
		go func() {
			defer clientsDone.Done()
			res, err := client.Post(via.url, "application/json", strings.NewReader(connectBody(id, "")))
			if err == nil {
				res.Body.Close()
			}
		}()
		bayeuxtest.Eventually(t, 5*time.Second, owner.Session(id).waiting, "the owner holds the long-poll")
	}

	// WebSockets: one on the owner, one forwarded from the other node.
	var sockets []*websocket.Conn
	for _, via := range []*testServer{owner, other} {
		id := owner.handshake(t)
		ws := via.dial(t)
		sockets = append(sockets, ws)
		msg := `[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket"},` +
			`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/g"}]`
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		readFrame(t, ws, 5*time.Second)
		bayeuxtest.Eventually(t, 5*time.Second, owner.Session(id).waiting, "the owner holds the WebSocket connect")
	}

	// An EventSource stream.
	id := owner.handshake(t)
	owner.subscribe(t, id, "/g")
	req, _ := http.NewRequest(http.MethodGet, owner.url+"/"+id, nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := bufio.NewReader(res.Body)
	if line, err := events.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("event stream starts with %q, %v", line, err)
	}
	other.publish(t, "/g", `"before shutdown"`)
	for _, ws := range sockets {
		if f := readFrame(t, ws, 5*time.Second); !strings.Contains(f.Raw, "before shutdown") {
			t.Fatalf("socket got %s", f.Raw)
		}
	}

	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		cancel()
		n.http.Close()
	}
	clientsDone.Wait()
	for _, ws := range sockets {
		ws.Close()
	}
	res.Body.Close()
	client.CloseIdleConnections()

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines after shutdown, %d before:\n%s", runtime.NumGoroutine(), base, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
