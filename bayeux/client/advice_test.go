package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// fakeServer is a scripted long-polling Bayeux server for the advice
// rules: every handshake and connect reply can be replaced.
type fakeServer struct {
	// handshake and connect return fields overriding the default reply to
	// the n-th request (from 1), and for connect how long to hold it and
	// messages to deliver with it.
	handshake func(n int) map[string]any
	connect   func(n int) (fields map[string]any, hold time.Duration, deliveries []map[string]any)

	mu   sync.Mutex
	reqs []fakeRequest
	next chan struct{} // closed at the next request
}

type fakeRequest struct {
	at      time.Time
	channel string
	msg     gjson.Result
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var replies []map[string]any
	var hold time.Duration
	for _, m := range gjson.ParseBytes(body).Array() {
		ch := m.Get("channel").String()
		f.mu.Lock()
		f.reqs = append(f.reqs, fakeRequest{at: time.Now(), channel: ch, msg: m})
		if f.next != nil {
			close(f.next)
			f.next = nil
		}
		n := 0
		for _, q := range f.reqs {
			if q.channel == ch {
				n++
			}
		}
		f.mu.Unlock()
		reply := map[string]any{"id": m.Get("id").String(), "channel": ch, "successful": true}
		switch ch {
		case "/meta/handshake":
			maps.Copy(reply, map[string]any{
				"clientId": "c" + strconv.Itoa(n), "version": "1.0",
				"supportedConnectionTypes": []string{"long-polling"},
				"advice":                   map[string]any{"reconnect": "retry", "interval": 0, "timeout": 1000},
			})
			if f.handshake != nil {
				maps.Copy(reply, f.handshake(n))
			}
			replies = append(replies, reply)
		case "/meta/connect":
			reply["advice"] = map[string]any{"reconnect": "retry", "interval": 0, "timeout": 1000}
			var more []map[string]any
			hold = 100 * time.Millisecond
			if f.connect != nil {
				var fields map[string]any
				fields, hold, more = f.connect(n)
				maps.Copy(reply, fields)
			}
			if m.Get("advice.timeout").Exists() {
				hold = 0
			}
			replies = append(replies, reply)
			replies = append(replies, more...)
		default:
			if s := m.Get("subscription"); s.Exists() {
				reply["subscription"] = s.String()
			}
			replies = append(replies, reply)
		}
	}
	if hold > 0 {
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(replies)
}

// requests returns the requests received on channel.
func (f *fakeServer) requests(channel string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, q := range f.reqs {
		if q.channel == channel {
			out = append(out, q)
		}
	}
	return out
}

// nextRequest returns a channel closed when the next request arrives.
func (f *fakeServer) nextRequest() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next == nil {
		f.next = make(chan struct{})
	}
	return f.next
}

func (f *fakeServer) waitRequests(t *testing.T, channel string, n int) []fakeRequest {
	t.Helper()
	bayeuxtest.Eventually(t, 10*time.Second, func() bool {
		return len(f.requests(channel)) >= n
	}, strconv.Itoa(n)+" "+channel+" requests")
	return f.requests(channel)
}

// TestAdvice checks that the connect loop follows the server's advice
// (reconnect retry, handshake and none; interval; timeout) as the faye
// client does.
func TestAdvice(t *testing.T) {
	t.Parallel()
	refuse := func(at int, fields map[string]any) func(int) (map[string]any, time.Duration, []map[string]any) {
		return func(n int) (map[string]any, time.Duration, []map[string]any) {
			if n == at {
				return fields, 0, nil
			}
			return nil, 100 * time.Millisecond, nil
		}
	}
	tests := []struct {
		name           string
		fake           *fakeServer
		requestTimeout time.Duration // default 3s
		check          func(t *testing.T, f *fakeServer, c *client.Client, states *stateLog)
	}{{
		name: "none stops the client",
		fake: &fakeServer{connect: refuse(2, map[string]any{
			"successful": false, "error": "403::Go away", "advice": map[string]any{"reconnect": "none"},
		})},
		check: func(t *testing.T, f *fakeServer, c *client.Client, states *stateLog) {
			sc := states.waitFor(t, client.StateClosed, "")
			var berr *client.Error
			if !errors.Is(sc.Err, client.ErrStopped) || !errors.As(sc.Err, &berr) || berr.Code != 403 {
				t.Errorf("closed with %v, want ErrStopped and the 403", sc.Err)
			}
			// No request may follow: watch for one for 300ms (a bounded
			// wait for something that must not happen).
			select {
			case <-f.nextRequest():
			case <-time.After(300 * time.Millisecond):
			}
			if h, n := len(f.requests("/meta/handshake")), len(f.requests("/meta/connect")); h != 1 || n != 2 {
				t.Errorf("%d handshakes and %d connects after none, want 1 and 2", h, n)
			}
			if _, err := c.Publish(context.Background(), "/x", 1); !errors.Is(err, client.ErrStopped) {
				t.Errorf("Publish after none: %v, want ErrStopped", err)
			}
		},
	}, {
		name: "handshake waits for interval and gets a new session",
		fake: &fakeServer{connect: refuse(2, map[string]any{
			"successful": false, "error": "401:c1:Unknown client",
			"advice": map[string]any{"reconnect": "handshake", "interval": 300},
		})},
		check: func(t *testing.T, f *fakeServer, c *client.Client, states *stateLog) {
			hs := f.waitRequests(t, "/meta/handshake", 2)
			conns := f.requests("/meta/connect")
			if gap := hs[1].at.Sub(conns[1].at); gap < 300*time.Millisecond {
				t.Errorf("handshook again %v after the refused connect, want >= 300ms", gap)
			}
			states.waitFor(t, client.StateConnected, "c2")
			conns = f.waitRequests(t, "/meta/connect", 3)
			if id := conns[2].msg.Get("clientId").String(); id != "c2" {
				t.Errorf("connect after the new handshake carries clientId %q", id)
			}
		},
	}, {
		name: "retry keeps the session",
		fake: &fakeServer{connect: refuse(2, map[string]any{
			"successful": false, "error": "500::Try again", "advice": map[string]any{"reconnect": "retry"},
		})},
		check: func(t *testing.T, f *fakeServer, c *client.Client, states *stateLog) {
			conns := f.waitRequests(t, "/meta/connect", 4)
			if h := len(f.requests("/meta/handshake")); h != 1 {
				t.Errorf("%d handshakes after a retry advice, want 1", h)
			}
			if id := conns[2].msg.Get("clientId").String(); id != "c1" {
				t.Errorf("retried connect carries clientId %q, want c1", id)
			}
		},
	}, {
		name: "interval separates connects",
		fake: &fakeServer{connect: func(int) (map[string]any, time.Duration, []map[string]any) {
			return map[string]any{"advice": map[string]any{"reconnect": "retry", "interval": 200, "timeout": 0}}, 0, nil
		}},
		check: func(t *testing.T, f *fakeServer, c *client.Client, states *stateLog) {
			conns := f.waitRequests(t, "/meta/connect", 4)
			for i := 2; i < 4; i++ {
				if gap := conns[i].at.Sub(conns[i-1].at); gap < 200*time.Millisecond {
					t.Errorf("connect %d sent %v after the previous one, want >= 200ms", i+1, gap)
				}
			}
		},
	}, {
		name:           "timeout bounds a held connect",
		requestTimeout: 500 * time.Millisecond,
		fake: &fakeServer{
			handshake: func(int) map[string]any {
				return map[string]any{"advice": map[string]any{"reconnect": "retry", "interval": 0, "timeout": 300}}
			},
			connect: func(n int) (map[string]any, time.Duration, []map[string]any) {
				fields := map[string]any{"advice": map[string]any{"reconnect": "retry", "interval": 0, "timeout": 300}}
				if n == 2 {
					return fields, time.Hour, nil // never answered
				}
				return fields, 300 * time.Millisecond, nil
			},
		},
		check: func(t *testing.T, f *fakeServer, c *client.Client, states *stateLog) {
			conns := f.waitRequests(t, "/meta/connect", 3)
			if !conns[0].msg.Get("advice.timeout").Exists() || conns[0].msg.Get("advice.timeout").Int() != 0 {
				t.Errorf("first connect %s does not ask for advice.timeout 0", conns[0].msg.Raw)
			}
			if conns[1].msg.Get("advice").Exists() {
				t.Errorf("second connect %s carries advice", conns[1].msg.Raw)
			}
			// requestTimeout (500ms) + advice.timeout (300ms).
			if gap := conns[2].at.Sub(conns[1].at); gap < 750*time.Millisecond || gap > 3*time.Second {
				t.Errorf("unanswered connect abandoned after %v, want about 800ms", gap)
			}
			if !conns[2].msg.Get("advice.timeout").Exists() {
				t.Errorf("connect after a failure %s does not ask for advice.timeout 0", conns[2].msg.Raw)
			}
		},
	}, {
		name: "refused handshake is retried",
		fake: &fakeServer{handshake: func(n int) map[string]any {
			if n < 3 {
				return map[string]any{"successful": false, "error": "401::nope", "clientId": nil,
					"advice": map[string]any{"reconnect": "handshake", "interval": 100}}
			}
			return nil
		}},
		check: func(t *testing.T, f *fakeServer, c *client.Client, states *stateLog) {
			states.waitFor(t, client.StateConnected, "c3")
			hs := f.requests("/meta/handshake")
			for i := 1; i < 3; i++ {
				if gap := hs[i].at.Sub(hs[i-1].at); gap < 100*time.Millisecond {
					t.Errorf("handshake %d sent %v after a refusal, want >= 100ms", i+1, gap)
				}
			}
		},
	}, {
		name: "advice in a delivery is ignored",
		fake: &fakeServer{connect: func(n int) (map[string]any, time.Duration, []map[string]any) {
			if n == 3 {
				return nil, 0, []map[string]any{{
					"channel": "/inject", "data": "x", "id": "1", "successful": true,
					"advice": map[string]any{"reconnect": "none"},
				}}
			}
			return nil, 50 * time.Millisecond, nil
		}},
		check: func(t *testing.T, f *fakeServer, c *client.Client, states *stateLog) {
			got := make(chan *client.Message, 1)
			if _, err := c.Subscribe(ctxTimeout(t, 5*time.Second), "/inject", func(m *client.Message) { got <- m }); err != nil {
				t.Fatal(err)
			}
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("delivery not received")
			}
			n := len(f.requests("/meta/connect"))
			f.waitRequests(t, "/meta/connect", n+2)
			if s := c.State(); s != client.StateConnected {
				t.Errorf("state %v after a delivery carrying advice none", s)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewServer(tc.fake)
			t.Cleanup(ts.Close)
			states := newStateLog()
			timeout := tc.requestTimeout
			if timeout == 0 {
				timeout = 3 * time.Second
			}
			c, err := client.New(ts.URL+"/bayeux",
				client.WithLogger(testLogger(t)),
				client.WithStateFunc(states.add),
				client.WithRequestTimeout(timeout),
				client.WithBackoff(10*time.Millisecond, 20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			tc.check(t, tc.fake, c, states)
		})
	}
}
