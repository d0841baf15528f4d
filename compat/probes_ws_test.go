package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Origins used for upgrades: none (Node faye client) and a foreign one
// (cross-origin browser page). Both must upgrade (H17).
var wsOrigins = []struct{ name, origin string }{
	{"no-origin", ""},
	{"foreign-origin", "http://evil.example:1"},
}

// isReply reports whether m is a reply (has "successful"), as clients decide (C7).
func isReply(m gjson.Result) bool { return m.Get("successful").Exists() }

// replyByID finds the reply (not a broadcast) carrying the string id.
func replyByID(ms []gjson.Result, id string) gjson.Result {
	for _, m := range ms {
		if isReply(m) && m.Get("id").Type == gjson.String && m.Get("id").Str == id {
			return m
		}
	}
	return gjson.Result{}
}

// broadcasts returns the delivered messages (no "successful") in order.
func broadcasts(ms []gjson.Result) []gjson.Result {
	var out []gjson.Result
	for _, m := range ms {
		if !isReply(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitReply reads frames until the reply with id arrives.
func (w *wsClient) waitReply(t *testing.T, d time.Duration, id string) (gjson.Result, []gjson.Result) {
	t.Helper()
	all, ok := w.collect(t, d, func(ms []gjson.Result) bool { return replyByID(ms, id).Exists() })
	if !ok {
		t.Fatalf("no reply with id %q within %v; got %s", id, d, rawList(all))
	}
	return replyByID(all, id), all
}

// barrier sends a publish on the socket and reads frames until its reply:
// then the server has read every frame sent before (it reads a socket in
// order). It returns the messages read, the reply included.
func (w *wsClient) barrier(t *testing.T, id string) []gjson.Result {
	t.Helper()
	w.sendText(t, fmt.Sprintf(`[{"channel":"/barrier","data":0,"id":%q}]`, id))
	_, all := w.waitReply(t, 2*time.Second, id)
	return all
}

const wsHandshake = `[{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["websocket","long-polling","callback-polling"],"advice":{"timeout":60000,"interval":0},"id":"1"}]`

func TestWSUpgradeAndHandshake(t *testing.T) {
	t.Parallel()
	for _, o := range wsOrigins {
		t.Run(o.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, 5)
			// H18: the upgrade happens before any handshake and the idle,
			// unauthenticated socket is left open.
			w := s.dialWS(t, o.origin)
			if msgs, _, ok := w.next(t, time.Second); ok || msgs != nil {
				t.Fatalf("server sent something / closed an idle fresh socket: %v ok=%v", msgs, ok)
			}
			// CometD style: handshake over the socket.
			w.sendText(t, wsHandshake)
			hs, _ := w.waitReply(t, 3*time.Second, "1")
			assertStr(t, hs, "channel", "/meta/handshake")
			assertBool(t, hs, "successful", true)
			assertJSON(t, hs.Get("advice").Raw, `{"reconnect":"retry","interval":0,"timeout":5000}`)
			cid := hs.Get("clientId").String()
			if !clientIDRe.MatchString(cid) {
				t.Errorf("clientId %q", cid)
			}
			// CometD's first connect carries advice.timeout 0 and expects an
			// immediate reply.
			w.sendText(t, fmt.Sprintf(`[{"id":"2","channel":"/meta/connect","connectionType":"websocket","advice":{"timeout":0},"clientId":%q}]`, cid))
			start := time.Now()
			c, _ := w.waitReply(t, 2*time.Second, "2")
			if d := time.Since(start); d > time.Second {
				t.Errorf("connect with advice.timeout 0 answered after %v", d)
			}
			assertStr(t, c, "channel", "/meta/connect")
			assertBool(t, c, "successful", true)
			assertStr(t, c, "clientId", cid)
			assertJSON(t, c.Get("advice").Raw, `{"reconnect":"retry","interval":0,"timeout":5000}`)
		})
	}
}

// TestWSTranscript replays the "Raw WebSocket" transcript of section 11 with
// T=2, handshaking over the socket (CometD style) and over HTTP (faye style).
func TestWSTranscript(t *testing.T) {
	t.Parallel()
	const T = 2
	tsec := time.Duration(T) * time.Second
	for _, style := range []string{"ws-handshake", "http-handshake"} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, T)
			w := s.dialWS(t, "")
			var cid string
			if style == "http-handshake" {
				cid = s.handshake(t)
			} else {
				w.sendText(t, `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"1"}]`)
				hs, _ := w.waitReply(t, 3*time.Second, "1")
				assertBool(t, hs, "successful", true)
				cid = hs.Get("clientId").String()
			}

			// Connect (bare object, no advice): held for T.
			w.sendText(t, fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"websocket","id":"2"}`, cid))
			connectAt := time.Now()

			// A batched subscribe frame is answered as one array.
			w.sendText(t, fmt.Sprintf(`[{"channel":"/meta/subscribe","clientId":%[1]q,"subscription":"/a","id":"3"},{"channel":"/meta/subscribe","clientId":%[1]q,"subscription":"/b","id":"4"}]`, cid))
			msgs := w.mustNext(t, 2*time.Second)
			if len(msgs) != 2 {
				t.Fatalf("want the two subscribe replies in one frame, got %s", rawList(msgs))
			}
			assertJSON(t, replyByID(msgs, "3").Raw, fmt.Sprintf(`{"id":"3","clientId":%q,"channel":"/meta/subscribe","successful":true,"subscription":"/a"}`, cid))
			assertJSON(t, replyByID(msgs, "4").Raw, fmt.Sprintf(`{"id":"4","clientId":%q,"channel":"/meta/subscribe","successful":true,"subscription":"/b"}`, cid))

			// Publishes: the messages are pushed (faye: one frame each; Bayou
			// may batch several in one array frame) and the acks arrive.
			w.sendText(t, `[{"channel":"/a","data":1,"id":"5"},{"channel":"/b","data":2,"id":"6"}]`)
			all, ok := w.collect(t, 2*time.Second, func(ms []gjson.Result) bool {
				return replyByID(ms, "5").Exists() && replyByID(ms, "6").Exists() && len(broadcasts(ms)) >= 2
			})
			if !ok {
				t.Fatalf("missing messages or acks within 2s: %s", rawList(all))
			}
			assertJSON(t, replyByID(all, "5").Raw, `{"id":"5","channel":"/a","successful":true}`)
			assertJSON(t, replyByID(all, "6").Raw, `{"id":"6","channel":"/b","successful":true}`)
			bs := broadcasts(all)
			if len(bs) != 2 {
				t.Fatalf("want exactly 2 messages, got %s", rawList(bs))
			}
			assertJSON(t, bs[0].Raw, `{"channel":"/a","data":1,"id":"5"}`)
			assertJSON(t, bs[1].Raw, `{"channel":"/b","data":2,"id":"6"}`)
			if c := replyByID(all, "2"); c.Exists() {
				t.Fatalf("held connect answered early: %s", c.Raw)
			}

			// The held connect is answered at ≈T, alone in its frame.
			ms, at, ok := w.next(t, 2*tsec)
			if !ok {
				t.Fatal("held WebSocket connect not answered")
			}
			within(t, "held WebSocket connect", at.Sub(connectAt), tsec*8/10, tsec*12/10)
			if len(ms) != 1 {
				t.Fatalf("want [connectReply], got %s", rawList(ms))
			}
			assertJSON(t, ms[0].Raw, fmt.Sprintf(`{"id":"2","clientId":%q,"channel":"/meta/connect","successful":true,"advice":{"reconnect":"retry","interval":0,"timeout":2000}}`, cid))
		})
	}
}

func TestWSFrameShapes(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	w := s.dialWS(t, "http://evil.example:1")

	t.Run("bare-object", func(t *testing.T) {
		w.sendText(t, `{"channel":"/bare","data":"x","id":"b1"}`)
		r, _ := w.waitReply(t, 2*time.Second, "b1")
		assertBool(t, r, "successful", true)
	})
	t.Run("empty-array", func(t *testing.T) {
		w.sendText(t, `[]`)
		w.sendText(t, `[{"channel":"/bare","data":"y","id":"b2"}]`)
		r, all := w.waitReply(t, 2*time.Second, "b2")
		assertBool(t, r, "successful", true)
		if len(all) != 1 {
			t.Errorf("unexpected extra messages: %s", rawList(all))
		}
	})
	t.Run("unparseable", func(t *testing.T) {
		w.sendText(t, `{"channel":`)
		w.sendText(t, `1`)
		if !isBayou() {
			// faye logs the parse error and sends nothing back.
			if ms, _, ok := w.next(t, 500*time.Millisecond); ok {
				t.Errorf("faye answered an unparseable frame: %s", rawList(ms))
			}
		}
		// The socket stays usable.
		w.sendText(t, `[{"channel":"/bare","data":"z","id":"b3"}]`)
		r, _ := w.waitReply(t, 2*time.Second, "b3")
		assertBool(t, r, "successful", true)
	})
}

// TestWSRebind: a client that re-handshakes over HTTP keeps using the same
// socket and sends a connect with the new clientId; the socket then serves
// the new session (H19 binding).
func TestWSRebind(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	w := s.dialWS(t, "")
	old := s.handshake(t)
	w.sendText(t, fmt.Sprintf(`[{"channel":"/meta/connect","clientId":%q,"connectionType":"websocket","id":"1"}]`, old))
	early := w.barrier(t, "b1") // the server has read the old session's connect

	cid := s.handshake(t)
	s.subscribe(t, cid, "/r")
	w.sendText(t, fmt.Sprintf(`[{"channel":"/meta/connect","clientId":%q,"connectionType":"websocket","id":"2"}]`, cid))
	early = append(early, w.barrier(t, "b2")...) // and bound the socket to the new session
	s.publish(t, "/r", `{"to":"new"}`)
	all, ok := w.collect(t, 3*time.Second, func(ms []gjson.Result) bool { return len(broadcasts(ms)) > 0 })
	all = append(early, all...)
	if !ok {
		t.Fatalf("message for the new session did not arrive on the socket: %s", rawList(all))
	}
	bs := broadcasts(all)
	if len(bs) != 1 {
		t.Fatalf("want one message, got %s", rawList(bs))
	}
	assertJSON(t, bs[0].Raw, `{"channel":"/r","data":{"to":"new"}}`)
	for _, m := range all {
		if isReply(m) && m.Get("id").String() == "2" {
			t.Errorf("new session's connect answered early: %s", m.Raw)
		}
	}
}

// TestWSReload: CometD reconnects a WebSocket with a known clientId and no
// new handshake (cometd-dialect 2.6, reload extension).
func TestWSReload(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	w1 := s.dialWS(t, "")
	w1.sendText(t, wsHandshake)
	hs, _ := w1.waitReply(t, 3*time.Second, "1")
	cid := hs.Get("clientId").String()
	w1.sendText(t, fmt.Sprintf(`[{"id":"2","channel":"/meta/connect","connectionType":"websocket","advice":{"timeout":0},"clientId":%q}]`, cid))
	w1.waitReply(t, 2*time.Second, "2")
	w1.sendText(t, fmt.Sprintf(`[{"id":"3","channel":"/meta/subscribe","subscription":"/rl","clientId":%q}]`, cid))
	sub, _ := w1.waitReply(t, 2*time.Second, "3")
	assertBool(t, sub, "successful", true)
	_ = w1.conn.Close()

	w2 := s.dialWS(t, "")
	w2.sendText(t, fmt.Sprintf(`[{"id":"4","channel":"/meta/connect","connectionType":"websocket","advice":{"timeout":0},"clientId":%q}]`, cid))
	start := time.Now()
	c, _ := w2.waitReply(t, 2*time.Second, "4")
	if d := time.Since(start); d > time.Second {
		t.Errorf("reload connect answered after %v", d)
	}
	assertBool(t, c, "successful", true)
	assertStr(t, c, "clientId", cid)

	s.publish(t, "/rl", `"after-reload"`)
	all, ok := w2.collect(t, 3*time.Second, func(ms []gjson.Result) bool { return len(broadcasts(ms)) > 0 })
	if !ok {
		t.Fatalf("publish did not arrive on the new socket: %s", rawList(all))
	}
	assertJSON(t, broadcasts(all)[0].Raw, `{"channel":"/rl","data":"after-reload"}`)
}

func TestWSPing(t *testing.T) {
	t.Parallel()
	if !isBayou() {
		t.Skip("Bayou only: compat/node/faye-server.mjs has no --ping option")
	}
	s := startServerOpts(t, serverOpts{timeout: 5, ping: 1})
	w := s.dialWS(t, "")
	cid := s.handshake(t)
	w.sendText(t, fmt.Sprintf(`[{"channel":"/meta/connect","clientId":%q,"connectionType":"websocket","id":"1"}]`, cid))
	start := time.Now()
	go func() {
		// Drain frames so the reader goroutine keeps processing control frames.
		for range w.frames {
		}
	}()
	select {
	case at := <-w.pings:
		t.Logf("first ping after %v", at.Sub(start).Round(time.Millisecond))
	case <-time.After(2500 * time.Millisecond):
		t.Fatal("no WebSocket ping within 2.5s with --ping 1")
	}
}
