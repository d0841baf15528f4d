package client_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// connectLog records the ext.ack of the connects a client sends and of
// the connect replies it receives, in order ("out 3", "in 4", ...), and
// the handshake's.
type connectLog struct {
	mu        sync.Mutex
	handshake []string // ext.ack of the handshake sent and of its reply
	events    []string
}

func extAck(m *client.Message) string {
	v, ok := m.Ext["ack"]
	if !ok {
		return "none"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (l *connectLog) extension() client.Extension {
	record := func(dir string, m *client.Message) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch m.Channel {
		case "/meta/handshake":
			l.handshake = append(l.handshake, dir+" "+extAck(m))
		case "/meta/connect":
			l.events = append(l.events, dir+" "+extAck(m))
		}
	}
	return client.Extension{
		Outgoing: func(m *client.Message) { record("out", m) },
		Incoming: func(m *client.Message) { record("in", m) },
	}
}

func (l *connectLog) snapshot() (handshake, events []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.handshake...), append([]string(nil), l.events...)
}

// TestAck checks, against Bayou, that the acknowledgement extension is on
// by default (each connect acknowledges the batch of the previous reply)
// and can be turned off, and that messages flow either way over both
// transports.
func TestAck(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		for _, ack := range []bool{true, false} {
			name := string(tr) + "/ack on"
			var opts []client.Option
			if !ack {
				name = string(tr) + "/ack off"
				opts = append(opts, client.WithAck(false))
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				cfg := historyConfig()
				cfg.Timeout = 5 * time.Second // connects held up to 5s
				srv, bs := startInproc(t, cfg, nil)
				log := &connectLog{}
				c := dial(t, srv.url, tr, append(opts, client.WithExtension(log.extension()))...)
				ctx := ctxTimeout(t, 10*time.Second)
				hist, plain := newInbox(), newInbox()
				if _, err := c.Subscribe(ctx, "/h/ack", hist.handler); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Subscribe(ctx, "/plain", plain.handler); err != nil {
					t.Fatal(err)
				}
				// Each message arrives well within the time a connect is
				// held: a delivery releases the held connect, and the
				// client sends the next one at once.
				pub := dial(t, srv.url, tr)
				for _, d := range []string{"1", "2", "3"} {
					if _, err := pub.Publish(ctx, "/h/ack", d); err != nil {
						t.Fatal(err)
					}
					publishAll(t, bs, "/plain", d)
					want := `"` + d + `"`
					for _, b := range []*inbox{hist, plain} {
						if m := b.next(t, 2*time.Second); string(m.Data) != want {
							t.Fatalf("got %s on %s, want %s", m.Data, m.Channel, want)
						}
					}
				}
				// Without the extension a WebSocket's connects are held
				// while messages flow, so one round trip is enough.
				trips := 3
				if !ack {
					trips = 1
				}
				bayeuxtest.Eventually(t, 10*time.Second, func() bool {
					_, ev := log.snapshot()
					return len(ev) >= 2*trips
				}, "connect round trips")

				hs, ev := log.snapshot()
				wantHS := "out true,in true"
				if !ack {
					wantHS = "out none,in none"
				}
				if got := strings.Join(hs, ","); got != wantHS {
					t.Errorf("handshake ext.ack: %s, want %s", got, wantHS)
				}
				// Connects alternate with their replies; each connect
				// acknowledges the batch of the previous reply (0 first).
				prev := "0"
				for i, e := range ev {
					dir, v, _ := strings.Cut(e, " ")
					switch {
					case dir != [2]string{"out", "in"}[i%2]:
						t.Fatalf("connect events out of order: %v", ev)
					case !ack && v != "none":
						t.Errorf("event %d %q with the extension off", i, e)
					case ack && dir == "out" && v != prev:
						t.Errorf("connect %d acknowledged %s, want %s: %v", i/2+1, v, prev, ev)
					case ack && dir == "in":
						if v == "none" || v == prev {
							t.Errorf("connect reply %d carries batch %s after %s", i/2+1, v, prev)
						}
						prev = v
					}
				}
			})
		}
	}
}

// ackStripper passes long-polling responses through, except that it
// removes ext.ack from the first connect reply that comes with a message
// on channel: the client cannot acknowledge it, so the server sends the
// message again.
type ackStripper struct {
	channel string
	done    atomic.Bool
}

type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(code int)        { b.code = code }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

func (s *ackStripper) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		buf := &bufferedResponse{header: w.Header(), code: http.StatusOK}
		h.ServeHTTP(buf, r)
		body := buf.body.Bytes()
		carries := false
		for _, m := range gjson.ParseBytes(body).Array() {
			if m.Get("channel").Str == s.channel && m.Get("data").Exists() {
				carries = true
			}
		}
		if carries && s.done.CompareAndSwap(false, true) {
			var msgs []map[string]any
			d := json.NewDecoder(bytes.NewReader(body))
			d.UseNumber()
			if err := d.Decode(&msgs); err == nil {
				for _, m := range msgs {
					if ext, ok := m["ext"].(map[string]any); ok && m["channel"] == "/meta/connect" {
						delete(ext, "ack")
					}
				}
				body, _ = json.Marshal(msgs)
				w.Header().Del("Content-Length")
			}
		}
		w.WriteHeader(buf.code)
		_, _ = w.Write(body)
	})
}

// TestAckResendDropsCopies makes Bayou send a message again (its connect
// reply loses its batch number, so the client's next connect does not
// acknowledge it): on a channel with history the client drops the copy;
// on another it delivers it twice, the at-least-once contract.
func TestAckResendDropsCopies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		channel string
		want    []string
	}{
		{"/h/dup", []string{`"1"`, `"2"`}},
		{"/plain/dup", []string{`"1"`, `"1"`, `"2"`}},
	}
	for _, tc := range tests {
		t.Run(tc.channel, func(t *testing.T) {
			t.Parallel()
			strip := &ackStripper{channel: tc.channel}
			srv, bs := startInproc(t, historyConfig(), strip.wrap)
			var received atomic.Int32 // copies of "1", before de-duplication
			c := dial(t, srv.url, client.TransportLongPolling, client.WithExtension(client.Extension{
				Incoming: func(m *client.Message) {
					if m.Channel == tc.channel && string(m.Data) == `"1"` {
						received.Add(1)
					}
				},
			}))
			ctx := ctxTimeout(t, 10*time.Second)
			in := newInbox()
			if _, err := c.Subscribe(ctx, tc.channel, in.handler); err != nil {
				t.Fatal(err)
			}
			publishAll(t, bs, tc.channel, "1")
			bayeuxtest.Eventually(t, 10*time.Second, func() bool { return received.Load() == 2 }, "the message sent again")
			publishAll(t, bs, tc.channel, "2")
			for i, want := range tc.want {
				if m := in.next(t, 5*time.Second); string(m.Data) != want {
					t.Fatalf("delivery %d: %s, want %s", i, m.Data, want)
				}
			}
		})
	}
}

// TestDropCopies feeds a client positioned messages from a scripted
// server: copies (same epoch, replay id not above the last) are dropped,
// a new epoch starts over, channels are independent, and messages without
// a position are all delivered.
func TestDropCopies(t *testing.T) {
	t.Parallel()
	msg := func(channel string, id int, epoch string) map[string]any {
		if id < 0 {
			return map[string]any{"channel": channel, "data": channel + " plain"}
		}
		return map[string]any{"channel": channel, "data": fmt.Sprintf("%s %s%d", channel, epoch, id),
			"ext": map[string]any{"replayId": id, "epoch": epoch}}
	}
	tests := []struct {
		name string
		in   []map[string]any
		want string
	}{
		{"in order", []map[string]any{msg("/h/a", 1, "E"), msg("/h/a", 2, "E"), msg("/h/a", 3, "E")},
			"/h/a E1,/h/a E2,/h/a E3"},
		{"copies", []map[string]any{msg("/h/a", 1, "E"), msg("/h/a", 2, "E"), msg("/h/a", 1, "E"), msg("/h/a", 2, "E"), msg("/h/a", 3, "E")},
			"/h/a E1,/h/a E2,/h/a E3"},
		{"older", []map[string]any{msg("/h/a", 5, "E"), msg("/h/a", 3, "E"), msg("/h/a", 6, "E")},
			"/h/a E5,/h/a E6"},
		{"new epoch", []map[string]any{msg("/h/a", 5, "E"), msg("/h/a", 1, "F"), msg("/h/a", 2, "F"), msg("/h/a", 1, "F")},
			"/h/a E5,/h/a F1,/h/a F2"},
		{"per channel", []map[string]any{msg("/h/a", 1, "E"), msg("/h/b", 1, "E"), msg("/h/a", 1, "E"), msg("/h/b", 2, "E")},
			"/h/a E1,/h/b E1,/h/b E2"},
		{"no position", []map[string]any{msg("/h/a", -1, ""), msg("/h/a", -1, "")},
			"/h/a plain,/h/a plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sent atomic.Bool
			f := &fakeServer{}
			f.connect = func(int) (map[string]any, time.Duration, []map[string]any) {
				if len(f.requests("/meta/subscribe")) > 0 && sent.CompareAndSwap(false, true) {
					return nil, 0, append(tc.in, map[string]any{"channel": "/h/end", "data": "end"})
				}
				return nil, 50 * time.Millisecond, nil
			}
			ts := httptest.NewServer(f)
			t.Cleanup(ts.Close)
			c := dial(t, ts.URL+"/bayeux", client.TransportLongPolling)
			var got []string // written by the handler goroutine until end is closed
			end := make(chan struct{})
			if _, err := c.Subscribe(ctxTimeout(t, 5*time.Second), "/h/*", func(m *client.Message) {
				if m.Channel == "/h/end" {
					close(end)
					return
				}
				var s string
				_ = json.Unmarshal(m.Data, &s)
				got = append(got, s)
			}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-end:
			case <-time.After(10 * time.Second):
				t.Fatal("messages not delivered")
			}
			if g := strings.Join(got, ","); g != tc.want {
				t.Errorf("delivered %s, want %s", g, tc.want)
			}
		})
	}
}

// TestAckWire checks the extension's fields against a scripted server:
// the handshake's ext.ack, the batch a handshake reply may start from
// (CometD's {"enabled", "batch"} form), and that only successful connect
// replies set the batch acknowledged.
func TestAckWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		disable   bool
		reply     any    // the handshake reply's ext.ack; nil: absent
		handshake string // ext.ack of the handshake sent
		connects  string // ext.ack of the first three connects
	}{
		{"cometd object", false, map[string]any{"enabled": true, "batch": 5}, "true", "5,10,10"},
		{"true", false, true, "true", "0,10,10"},
		{"not offered", false, nil, "true", "none,none,none"},
		{"disabled", true, true, "none", "none,none,none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{
				handshake: func(int) map[string]any {
					if tc.reply == nil {
						return nil
					}
					return map[string]any{"ext": map[string]any{"ack": tc.reply}}
				},
				connect: func(n int) (map[string]any, time.Duration, []map[string]any) {
					switch n {
					case 1:
						return map[string]any{"ext": map[string]any{"ack": 10}}, 0, nil
					case 2:
						return map[string]any{"successful": false, "error": "500::Try again",
							"advice": map[string]any{"reconnect": "retry"}, "ext": map[string]any{"ack": 99}}, 0, nil
					}
					return map[string]any{"ext": map[string]any{"ack": 10 + n}}, 50 * time.Millisecond, nil
				},
			}
			ts := httptest.NewServer(f)
			t.Cleanup(ts.Close)
			_ = dial(t, ts.URL+"/bayeux", client.TransportLongPolling, client.WithAck(!tc.disable))
			conns := f.waitRequests(t, "/meta/connect", 3)
			hs := f.requests("/meta/handshake")
			if got := rawOr(hs[0].msg.Get("ext.ack")); got != tc.handshake {
				t.Errorf("handshake ext.ack %s, want %s", got, tc.handshake)
			}
			var got []string
			for _, c := range conns[:3] {
				got = append(got, rawOr(c.msg.Get("ext.ack")))
			}
			if g := strings.Join(got, ","); g != tc.connects {
				t.Errorf("connects acknowledged %s, want %s", g, tc.connects)
			}
		})
	}
}

func rawOr(r gjson.Result) string {
	if !r.Exists() {
		return "none"
	}
	return r.Raw
}
