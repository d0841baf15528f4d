package client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
)

// TestLongPollingBatches checks that messages sent at the same moment
// share HTTP requests.
func TestLongPollingBatches(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sizes []int // messages per POST, connects excluded
	srv, _ := startInproc(t, bayeux.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				if !bytes.Contains(body, []byte(`"/meta/connect"`)) {
					mu.Lock()
					sizes = append(sizes, len(gjson.ParseBytes(body).Array()))
					mu.Unlock()
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	c := dial(t, srv.url, client.TransportLongPolling)
	ctx := ctxTimeout(t, 10*time.Second)
	mu.Lock()
	sizes = nil
	mu.Unlock()
	const n = 200
	results := make([]<-chan client.PublishResult, n)
	for i := range results {
		results[i] = c.PublishAsync(ctx, "/batch", i)
	}
	for _, r := range results {
		if res := <-r; res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	total, largest := 0, 0
	for _, s := range sizes {
		total += s
		largest = max(largest, s)
	}
	if total != n {
		t.Errorf("server received %d publishes in %d requests, want %d", total, len(sizes), n)
	}
	if len(sizes) > n/4 || largest < 2 {
		t.Errorf("%d publishes took %d requests (largest batch %d): not batched", n, len(sizes), largest)
	}
	t.Logf("%d publishes in %d requests, largest batch %d", n, len(sizes), largest)
}

// TestWebSocketOneMessagePerFrame reads the frames the client sends on the
// wire and checks that each holds exactly one message.
func TestWebSocketOneMessagePerFrame(t *testing.T) {
	t.Parallel()
	rec := &frameRecorder{}
	srv, _ := startInproc(t, bayeux.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "" {
				w = &hijackRecorder{ResponseWriter: w, rec: rec}
			}
			h.ServeHTTP(w, r)
		})
	})
	c := dial(t, srv.url, client.TransportWebSocket)
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := c.Subscribe(ctx, "/frames", func(*client.Message) {}); err != nil {
		t.Fatal(err)
	}
	const n = 50
	results := make([]<-chan client.PublishResult, n)
	for i := range results {
		results[i] = c.PublishAsync(ctx, "/frames", i)
	}
	for _, r := range results {
		if res := <-r; res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	frames := rec.frames()
	publishes := 0
	for _, f := range frames {
		msgs := gjson.ParseBytes(f).Array()
		if len(msgs) != 1 {
			t.Errorf("frame with %d messages: %s", len(msgs), f)
		}
		if len(msgs) > 0 && msgs[0].Get("channel").String() == "/frames" {
			publishes++
		}
	}
	if publishes != n {
		t.Errorf("saw %d publish frames, want %d (of %d frames)", publishes, n, len(frames))
	}
}

// hijackRecorder hands the WebSocket upgrader a connection whose reads
// are copied to rec (when not nil), and passes it to onConn (when not nil).
type hijackRecorder struct {
	http.ResponseWriter
	rec    *frameRecorder
	onConn func(net.Conn)
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, _, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	rc := &recordingConn{Conn: conn, rec: h.rec}
	if h.onConn != nil {
		h.onConn(rc)
	}
	return rc, bufio.NewReadWriter(bufio.NewReader(rc), bufio.NewWriter(rc)), nil
}

type recordingConn struct {
	net.Conn
	rec *frameRecorder
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.rec != nil {
		c.rec.write(p[:n])
	}
	return n, err
}

// frameRecorder decodes the client-to-server WebSocket stream.
type frameRecorder struct {
	mu  sync.Mutex
	buf []byte
}

func (r *frameRecorder) write(p []byte) {
	r.mu.Lock()
	r.buf = append(r.buf, p...)
	r.mu.Unlock()
}

// frames returns the payloads of the complete text frames received.
func (r *frameRecorder) frames() [][]byte {
	r.mu.Lock()
	b := bytes.Clone(r.buf)
	r.mu.Unlock()
	var out [][]byte
	for len(b) >= 2 {
		opcode := b[0] & 0x0f
		masked := b[1]&0x80 != 0
		n := uint64(b[1] & 0x7f)
		i := 2
		switch n {
		case 126:
			if len(b) < 4 {
				return out
			}
			n, i = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return out
			}
			n, i = binary.BigEndian.Uint64(b[2:]), 10
		}
		var mask []byte
		if masked {
			if len(b) < i+4 {
				return out
			}
			mask, i = b[i:i+4], i+4
		}
		if uint64(len(b)-i) < n {
			return out
		}
		payload := bytes.Clone(b[i : i+int(n)])
		for j := range payload {
			if masked {
				payload[j] ^= mask[j%4]
			}
		}
		if opcode == 1 { // text; the client never fragments
			out = append(out, payload)
		}
		b = b[i+int(n):]
	}
	return out
}

// TestHeadersAndCookies checks that WithHeader headers go on every HTTP
// request and WebSocket upgrade, and that cookies the server sets are sent
// back.
func TestHeadersAndCookies(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := map[string]int{} // request kind -> requests with the header and the cookie
			all := map[string]int{}
			srv, _ := startInproc(t, bayeux.Config{}, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					kind := r.Method
					if r.Header.Get("Upgrade") != "" {
						kind = "upgrade"
					}
					c, err := r.Cookie("sticky")
					mu.Lock()
					all[kind]++
					if r.Header.Get("X-Api-Key") == "k1" && err == nil && c.Value == "node-7" {
						seen[kind]++
					}
					mu.Unlock()
					http.SetCookie(w, &http.Cookie{Name: "sticky", Value: "node-7", Path: "/"})
					h.ServeHTTP(w, r)
				})
			})
			c := dial(t, srv.url, tr, client.WithHeader("X-Api-Key", "k1"))
			ctx := ctxTimeout(t, 10*time.Second)
			if _, err := c.Publish(ctx, "/hdr", 1); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			// The handshake is the first request: it has the header but
			// no cookie yet; every later one has both.
			kinds := []string{http.MethodPost}
			if tr == client.TransportWebSocket {
				kinds = append(kinds, "upgrade")
			}
			for _, k := range kinds {
				want := all[k]
				if k == http.MethodPost {
					want--
				}
				if all[k] == 0 || seen[k] != want {
					t.Errorf("%s: %d of %d requests carry the header and the cookie, want %d", k, seen[k], all[k], want)
				}
			}
		})
	}
}

// TestTLS connects over https and wss with WithTLSConfig, and with
// WithHTTPClient.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv, err := bayeux.New(bayeux.Config{Timeout: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		ts.Close()
	})
	cfg := ts.Client().Transport.(*http.Transport).TLSClientConfig
	configs := []struct {
		name string
		opt  client.Option
	}{
		{"tls config", client.WithTLSConfig(cfg)},
		// The WebSocket dialer follows the TLS configuration of the HTTP
		// client's transport.
		{"http client", client.WithHTTPClient(ts.Client())},
	}
	for _, tr := range transports {
		for _, cc := range configs {
			t.Run(cc.name+"/"+string(tr), func(t *testing.T) {
				c := dial(t, ts.URL+"/bayeux", tr, cc.opt)
				ctx := ctxTimeout(t, 10*time.Second)
				in := newInbox()
				if _, err := c.Subscribe(ctx, "/tls", in.handler); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Publish(ctx, "/tls", "secure"); err != nil {
					t.Fatal(err)
				}
				in.next(t, 5*time.Second)
			})
		}
	}
	// Without the test CA the handshake fails.
	_, err = client.Dial(ctxTimeout(t, 10*time.Second), ts.URL+"/bayeux",
		client.WithLogger(quietLogger()), client.WithTLSConfig(&tls.Config{}))
	if err == nil {
		t.Error("Dial with an untrusted certificate succeeded")
	}
}

// TestWebSocketFallback checks that a client falls back to long-polling
// when the server offers WebSocket but the upgrade fails.
func TestWebSocketFallback(t *testing.T) {
	t.Parallel()
	srv, _ := startInproc(t, bayeux.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "" {
				http.Error(w, "no websockets here", http.StatusBadRequest)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx := ctxTimeout(t, 10*time.Second)
	c, err := client.Dial(ctx, srv.url, client.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Transport(); got != client.TransportLongPolling {
		t.Errorf("Transport() = %q, want long-polling", got)
	}
	if _, err := c.Publish(ctx, "/fallback", 1); err != nil {
		t.Error(err)
	}
	_, err = client.Dial(ctx, srv.url, client.WithLogger(quietLogger()), client.WithTransports(client.TransportWebSocket))
	if err == nil {
		t.Error("Dial restricted to a failing WebSocket succeeded")
	}
}

// TestDroppedSocketKeepsSession cuts the client's WebSocket under it: the
// client opens a new one and resumes the same session, and a message
// published meanwhile, queued by the server, still arrives.
func TestDroppedSocketKeepsSession(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var conns []net.Conn
	srv, bs := startInproc(t, bayeux.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "" {
				w = &hijackRecorder{ResponseWriter: w, onConn: func(c net.Conn) {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}}
			}
			h.ServeHTTP(w, r)
		})
	})
	states := newStateLog()
	c := dial(t, srv.url, client.TransportWebSocket, client.WithStateFunc(states.add))
	ctx := ctxTimeout(t, 10*time.Second)
	in := newInbox()
	if _, err := c.Subscribe(ctx, "/drop", in.handler); err != nil {
		t.Fatal(err)
	}
	id := c.ClientID()
	states.waitFor(t, client.StateConnected, id)

	mu.Lock()
	for _, conn := range conns {
		_ = conn.Close()
	}
	mu.Unlock()
	states.waitFor(t, client.StateDisconnected, "")
	if err := bayeuxPublish(bs, "/drop", "during"); err != nil {
		t.Fatal(err)
	}
	states.waitFor(t, client.StateConnected, id) // the same session
	if m := in.next(t, 5*time.Second); string(m.Data) != `"during"` {
		t.Errorf("got %s", m.Data)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 2 {
		t.Errorf("%d sockets opened, want 2", len(conns))
	}
}

// TestWithCookieJar: a jar given with WithCookieJar is used from the first
// request on (the handshake carries its cookie, which a fresh default jar
// could not).
func TestWithCookieJar(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			first := ""
			srv, _ := startInproc(t, bayeux.Config{}, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					if first == "" {
						if c, err := r.Cookie("session"); err == nil {
							first = c.Value
						} else {
							first = "(none)"
						}
					}
					mu.Unlock()
					h.ServeHTTP(w, r)
				})
			})
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(srv.url)
			jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "from-the-jar", Path: "/"}})
			c := dial(t, srv.url, tr, client.WithCookieJar(jar))
			if _, err := c.Publish(ctxTimeout(t, 10*time.Second), "/jar", 1); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if first != "from-the-jar" {
				t.Fatalf("the first request carried cookie %q, want the jar's", first)
			}
		})
	}
}
