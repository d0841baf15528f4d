package bayeux

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// watchedCount is the number of sockets the idle watch holds.
func (w *idleWatch) watchedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.socks)
}

// TestIdleSocketsHaveNoGoroutine: idle WebSockets wait in the idle watch,
// not on goroutines, and each is read again as soon as a frame comes.
func TestIdleSocketsHaveNoGoroutine(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 10 * time.Second})
	if ts.idle == nil {
		t.Skip("no epoll set on this system")
	}
	const n = 50
	before := int64(runtime.NumGoroutine())
	socks := make([]*websocket.Conn, n)
	for i := range socks {
		socks[i] = wsSubscriber(t, ts, "/idle/"+strconv.Itoa(i))
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.idle.watchedCount() == n }, "every socket in the idle watch")
	if grown := int64(runtime.NumGoroutine()) - before; grown >= n {
		t.Fatalf("%d goroutines more for %d idle sockets", grown, n)
	}
	// A frame on an idle socket is read and answered at once; the socket
	// then goes back to the watch.
	for round := range 2 {
		for i, c := range socks {
			id := ts.LocalSessions(func(s *Session) bool { return s.Subscribed("/idle/" + strconv.Itoa(i)) })[0].ID()
			msg := `[{"channel":"/idle/` + strconv.Itoa(i) + `","clientId":"` + id + `","data":` + strconv.Itoa(round) + `,"id":"p"}]`
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			gotReply, gotMsg := false, false
			for !gotReply || !gotMsg {
				readFrame(t, c, 5*time.Second).ForEach(func(_, m gjson.Result) bool {
					gotReply = gotReply || (m.Get("id").String() == "p" && m.Get("successful").Bool())
					gotMsg = gotMsg || m.Get("data").Int() == int64(round) && !m.Get("successful").Exists()
					return true
				})
			}
		}
		bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.idle.watchedCount() == n }, "every socket back in the idle watch")
	}
	// Pongs (here unsolicited) are taken without waiting for a data frame:
	// the sockets go back to the watch.
	before = time.Now().UnixNano()
	for _, c := range socks {
		if err := c.WriteControl(websocket.PongMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		if ts.idle.watchedCount() != n {
			return false
		}
		ts.idle.mu.Lock()
		defer ts.idle.mu.Unlock()
		for _, c := range ts.idle.socks {
			if c.lastRead.Load() < int64(before) {
				return false
			}
		}
		return true
	}, "every socket heard from and back in the idle watch after a pong")
	// A socket that closes leaves the watch.
	_ = socks[0].Close()
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.idle.watchedCount() == n-1 }, "a closed socket gone from the watch")
}

// TestIdleWatchClosesSilentSockets: no parked reader enforces the read
// timeout of a watched socket, so the watch's sweep does.
func TestIdleWatchClosesSilentSockets(t *testing.T) {
	ts := newTestServer(t, Config{Timeout: 10 * time.Second})
	if ts.idle == nil {
		t.Skip("no epoll set on this system")
	}
	quiet := wsSubscriber(t, ts, "/idle/quiet")
	talking := wsSubscriber(t, ts, "/idle/talking")
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return ts.idle.watchedCount() == 2 }, "both sockets in the idle watch")
	var silent *wsConn
	ts.idle.mu.Lock()
	for _, c := range ts.idle.socks {
		if sess := c.sess.Load(); sess != nil && sess.Subscribed("/idle/quiet") {
			silent = c
		}
	}
	ts.idle.mu.Unlock()
	silent.lastRead.Store(time.Now().Add(-silent.readTimeout() - time.Second).UnixNano())
	ts.idle.sweep()
	_ = quiet.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := quiet.ReadMessage(); err != nil {
			break // closed by the server
		}
	}
	if ts.idle.watchedCount() != 1 || !silent.closed.Load() {
		t.Fatalf("after the sweep: %d watched, silent socket closed %v", ts.idle.watchedCount(), silent.closed.Load())
	}
	// The other socket is still served.
	id := ts.LocalSessions(func(s *Session) bool { return s.Subscribed("/idle/talking") })[0].ID()
	if err := talking.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/idle/talking","clientId":"`+id+`","data":1,"id":"t"}]`)); err != nil {
		t.Fatal(err)
	}
	for answered := false; !answered; {
		answered = readFrame(t, talking, 5*time.Second).Get(`#(id=="t").successful`).Bool()
	}
}
