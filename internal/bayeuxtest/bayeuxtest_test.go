package bayeuxtest

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fatalTB records the first Fatalf and ends its goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs fn with a fatalTB and returns what it failed with ("" if it
// did not).
func fails(t *testing.T, fn func(testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestEventually(t *testing.T) {
	var n atomic.Int32
	Eventually(t, 5*time.Second, func() bool { return n.Add(1) == 3 }, "the third call")
	if n.Load() != 3 {
		t.Errorf("condition called %d times, want 3", n.Load())
	}
	began := time.Now()
	msg := fails(t, func(tb testing.TB) { Eventually(tb, 50*time.Millisecond, func() bool { return false }, "never") })
	if !strings.Contains(msg, "never") || !strings.Contains(msg, "50ms") {
		t.Errorf("failed with %q", msg)
	}
	if d := time.Since(began); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("gave up after %v, want about 50ms", d)
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 400 {
		t.Errorf("%d bytes, want 400", got)
	}
}

func TestServe(t *testing.T) {
	var shutdowns atomic.Int32
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			if typ, p, err := c.ReadMessage(); err == nil {
				_ = c.WriteMessage(typ, p)
			}
			return
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Test") != "yes" {
			http.Error(w, "headers", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`[{"successful":true}]`))
	})
	t.Run("serve", func(t *testing.T) {
		hs := Serve(t, echo, func(context.Context) error { shutdowns.Add(1); return nil })
		if r := MustPost(t, hs.URL, `{}`, "X-Test", "yes"); !r.Get("0.successful").Bool() {
			t.Errorf("answer %s", r.Raw)
		}
		if _, err := Post(context.Background(), hs.URL, `{}`); err == nil || !strings.Contains(err.Error(), "status 400") {
			t.Errorf("Post without the header: %v", err)
		}
		c := DialWebSocket(t, hs.URL, nil)
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.ReadMessage(); err != nil || string(p) != "hi" {
			t.Errorf("echo %q, %v", p, err)
		}
	})
	if n := shutdowns.Load(); n != 1 {
		t.Errorf("shutdown called %d times at cleanup, want 1", n)
	}
	if got := WebSocketURL("https://h/x"); got != "wss://h/x" {
		t.Errorf("WebSocketURL = %q", got)
	}
}
