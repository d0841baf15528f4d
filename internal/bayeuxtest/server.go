package bayeuxtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"
)

const (
	// shutdownTimeout bounds the shutdown of a server at the end of a
	// test.
	shutdownTimeout = 5 * time.Second
	// requestTimeout bounds a MustPost, a held connect included.
	requestTimeout = 30 * time.Second
)

// Serve serves h on a new httptest server on 127.0.0.1 until the end of t's
// test. At cleanup it calls shutdown, when not nil, with a context that
// ends after a few seconds (its error is not checked: a test that cares
// shuts down itself), then closes the httptest server. Pass a Bayeux
// server and its Shutdown method, so that held requests are answered and
// sockets closed before the listener goes.
func Serve(t testing.TB, h http.Handler, shutdown func(context.Context) error) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		if shutdown != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = shutdown(ctx)
		}
		hs.Close()
	})
	return hs
}

// Post sends body to url as a JSON POST, with header given as name, value
// pairs, and returns the parsed answer. A request that fails or an answer
// whose status is not 200 OK is an error (holding that answer's body). It
// does not fail a test, so that any goroutine may call it.
func Post(ctx context.Context, url, body string, header ...string) (gjson.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return gjson.Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return gjson.Result{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return gjson.Result{}, err
	}
	if res.StatusCode != http.StatusOK {
		return gjson.Result{}, fmt.Errorf("status %d: %s", res.StatusCode, b)
	}
	return gjson.ParseBytes(b), nil
}

// MustPost is Post, bounded by half a minute, that fails t on an error.
func MustPost(t testing.TB, url, body string, header ...string) gjson.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	r, err := Post(ctx, url, body, header...)
	if err != nil {
		t.Fatalf("POST %s: %v", body, err)
	}
	return r
}

// DialWebSocket opens a WebSocket to url, an http:// or https:// URL (as
// Serve returns) or a ws:// or wss:// one, with header (may be nil), and
// closes it at the end of t's test.
func DialWebSocket(t testing.TB, url string, header http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(WebSocketURL(url), header)
	if err != nil {
		t.Fatalf("dialling %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// WebSocketURL returns url with its http or https scheme turned into ws or
// wss.
func WebSocketURL(url string) string {
	if rest, ok := strings.CutPrefix(url, "http"); ok {
		return "ws" + rest
	}
	return url
}
