package bayeux

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func historyServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.History == nil {
		cfg.History = []HistoryRule{{Pattern: "/h/**", Size: 5}}
	}
	return newTestServer(t, cfg)
}

// subscribeWith sends a subscribe with ext and returns its reply.
func (ts *testServer) subscribeWith(t *testing.T, id, channel, ext string) gjson.Result {
	t.Helper()
	return ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"`+channel+`","ext":`+ext+`}`).Get("0")
}

// poll sends an immediate connect and returns the data of its messages on
// channel, with their positions.
func (ts *testServer) poll(t *testing.T, id, channel string) (data []string, offsets []uint64) {
	t.Helper()
	r := ts.post(t, connectBody(id, `,"advice":{"timeout":0}`))
	for _, m := range r.Array() {
		if m.Get("channel").String() == channel && m.Get("data").Exists() {
			data = append(data, m.Get("data").String())
			offsets = append(offsets, m.Get("ext.replayId").Uint())
		}
	}
	return data, offsets
}

func TestMemHistory(t *testing.T) {
	h := newMemHistory(1 << 20)
	rule := &HistoryRule{Pattern: "/h/*", Size: 3}
	var got []Position
	deliver := func(p *Publication) { got = append(got, p.Position) }
	for i := range 5 {
		h.publish(&Publication{Channel: "/h/a", Message: []byte(strconv.Itoa(i)), History: rule}, deliver)
	}
	if len(got) != 5 || got[0].Offset != 1 || got[4].Offset != 5 || got[0].Epoch == "" || got[4].Epoch != got[0].Epoch {
		t.Fatalf("positions %v", got)
	}
	tests := []struct {
		since uint64
		limit int
		want  []uint64
	}{
		{0, 0, []uint64{3, 4, 5}},
		{3, 0, []uint64{4, 5}},
		{1, 0, []uint64{3, 4, 5}}, // 2 is gone: the caller sees the gap
		{5, 0, nil},
		{9, 0, nil},
		{0, 2, []uint64{3, 4}},
	}
	for _, tc := range tests {
		pubs, pos := h.history("/h/a", tc.since, tc.limit)
		var offs []uint64
		for _, p := range pubs {
			offs = append(offs, p.Position.Offset)
		}
		if fmt.Sprint(offs) != fmt.Sprint(tc.want) || pos.Offset != 5 {
			t.Errorf("history(since %d, limit %d) = %v at %v, want %v at 5", tc.since, tc.limit, offs, pos, tc.want)
		}
	}
	epoch := got[0].Epoch
	h.remove("/h/a")
	if pubs, pos := h.history("/h/a", 0, 0); pubs != nil || pos != (Position{}) {
		t.Fatalf("after remove: %v %v", pubs, pos)
	}
	h.publish(&Publication{Channel: "/h/a", Message: []byte("x"), History: rule}, deliver)
	if p := got[len(got)-1]; p.Offset != 1 || p.Epoch == epoch {
		t.Fatalf("after remove, position %v (old epoch %s)", p, epoch)
	}
}

func TestMemHistoryBudgetAndTTL(t *testing.T) {
	h := newMemHistory(4096)
	rule := &HistoryRule{Pattern: "/**", Size: 1000}
	msg := make([]byte, 100)
	for i := range 1000 {
		h.publish(&Publication{Channel: "/c/" + strconv.Itoa(i%50), Message: msg, History: rule}, func(*Publication) {})
		if h.bytes > h.budget+int64(len(msg))+entryOverhead+streamOverhead+8 {
			t.Fatalf("after %d publishes: %d bytes over a budget of %d", i+1, h.bytes, h.budget)
		}
	}
	if pending := len(h.fifo) - h.head; pending > 2*h.entries+64 {
		t.Fatalf("fifo holds %d references for %d entries", pending, h.entries)
	}
	ttl := &HistoryRule{Pattern: "/**", Size: 10, TTL: time.Millisecond}
	h = newMemHistory(1 << 20)
	h.publish(&Publication{Channel: "/t", Message: msg, History: ttl}, func(*Publication) {})
	bayeuxtest.Eventually(t, 2*time.Second, func() bool {
		pubs, pos := h.history("/t", 0, 0)
		return len(pubs) == 0 && pos.Offset == 1
	}, "the publication to expire, the position to stay")
}

// TestMemHistoryReentrant publishes from a subscriber of the same channel:
// the nested publication is delivered after the one being handled.
func TestMemHistoryReentrant(t *testing.T) {
	h := newMemHistory(1 << 20)
	rule := &HistoryRule{Pattern: "/**", Size: 10}
	var order []uint64
	var deliver func(p *Publication)
	deliver = func(p *Publication) {
		order = append(order, p.Position.Offset)
		if p.Position.Offset < 3 {
			h.publish(&Publication{Channel: "/r", Message: []byte("n"), History: rule}, deliver)
		}
	}
	h.publish(&Publication{Channel: "/r", Message: []byte("n"), History: rule}, deliver)
	if fmt.Sprint(order) != "[1 2 3]" {
		t.Fatalf("order %v", order)
	}
}

func TestPositionOnDeliveries(t *testing.T) {
	ts := historyServer(t, Config{})
	id := ts.handshake(t)
	ts.subscribe(t, id, "/h/a")
	ts.subscribe(t, id, "/plain")
	ts.post(t, `{"channel":"/h/a","data":1,"ext":{"replayId":99,"epoch":"forged","k":"v"}}`)
	ts.publish(t, "/plain", "2")
	r := ts.post(t, connectBody(id, `,"advice":{"timeout":0}`))
	h := r.Get(`#(channel=="/h/a")`)
	// The position is the server's; the publisher's ext is not forwarded
	// (Config.ForwardExt).
	if h.Get("ext.replayId").Int() != 1 || h.Get("ext.epoch").String() == "forged" || h.Get("ext.k").Exists() {
		t.Fatalf("history delivery: %s", h.Raw)
	}
	if p := r.Get(`#(channel=="/plain")`); p.Get("ext").Exists() {
		t.Fatalf("plain delivery has ext: %s", p.Raw)
	}
}

func TestReplayOnSubscribe(t *testing.T) {
	ts := historyServer(t, Config{})
	for i := 1; i <= 7; i++ {
		ts.publish(t, "/h/a", strconv.Itoa(i))
	}
	first := historyPosition(t, ts, "/h/a")
	tests := []struct {
		name, replay string
		want         string // data received, in order
		err          string // error prefix of the reply
		recovered    bool
	}{
		{"all retained", `-2`, "[3 4 5 6 7]", "", true},
		{"new only", `-1`, "[]", "", true},
		{"after 5", `5`, "[6 7]", "", true},
		{"after 5 in its epoch", `{"replayId":5,"epoch":"` + first.Epoch + `"}`, "[6 7]", "", true},
		{"up to date", `7`, "[]", "", true},
		{"lost", `1`, "", "400:/h/a:", false},
		{"other epoch", `{"replayId":5,"epoch":"zzz"}`, "", "400:/h/a:", false},
		{"ahead", `9`, "", "400:/h/a:", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := ts.handshake(t)
			r := ts.subscribeWith(t, id, "/h/a", `{"replay":{"/h/a":`+tc.replay+`}}`)
			if tc.err != "" {
				if r.Get("successful").Bool() || r.Get("error").String()[:len(tc.err)] != tc.err {
					t.Fatalf("reply %s, want error %s", r.Raw, tc.err)
				}
				if got, _ := ts.poll(t, id, "/h/a"); len(got) != 0 {
					t.Fatalf("refused replay delivered %v", got)
				}
				return
			}
			if !r.Get("successful").Bool() || r.Get(`ext.replay.\/h\/a.replayId`).Int() != 7 ||
				r.Get(`ext.replay.\/h\/a.recovered`).Bool() != tc.recovered {
				t.Fatalf("reply %s", r.Raw)
			}
			got, _ := ts.poll(t, id, "/h/a")
			if fmt.Sprint(got) != tc.want && !(tc.want == "[]" && len(got) == 0) {
				t.Fatalf("replayed %v, want %s", got, tc.want)
			}
		})
	}
	t.Run("report", func(t *testing.T) {
		id := ts.handshake(t)
		r := ts.subscribeWith(t, id, "/h/a", `{"replay":{"/h/a":1},"replayLost":"report"}`)
		if !r.Get("successful").Bool() || r.Get(`ext.replay.\/h\/a.recovered`).Bool() {
			t.Fatalf("reply %s", r.Raw)
		}
		if got, _ := ts.poll(t, id, "/h/a"); len(got) != 0 {
			t.Fatalf("not recovered, yet replayed %v", got)
		}
		ts.publish(t, "/h/a", "8")
		if got, _ := ts.poll(t, id, "/h/a"); fmt.Sprint(got) != "[8]" {
			t.Fatalf("live after a lost replay: %v", got)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		id := ts.handshake(t)
		for _, ext := range []string{`{"replay":{"/h/a":"x"}}`, `{"replay":{"/h/a":-3}}`, `{"replay":{"/h/*":-2}}`} {
			sub := "/h/a"
			if ext == `{"replay":{"/h/*":-2}}` {
				sub = "/h/*"
			}
			if r := ts.subscribeWith(t, id, sub, ext); r.Get("successful").Bool() {
				t.Errorf("%s: %s", ext, r.Raw)
			}
		}
	})
}

// historyPosition returns channel's position through the server API.
func historyPosition(t *testing.T, ts *testServer, channel string) Position {
	t.Helper()
	_, pos, err := ts.History(context.Background(), channel, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// TestReplayRacesPublishes subscribes with a replay while a publisher is
// publishing: every message arrives once, in order, across the switch from
// replayed to live.
func TestReplayRacesPublishes(t *testing.T) {
	const n = 3000
	ts := historyServer(t, Config{History: []HistoryRule{{Pattern: "/h/**", Size: n}}, MaxQueueBytes: 64 << 20})
	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= n; i++ {
			if i == n/10 {
				close(started)
			}
			if err := ts.Publish(context.Background(), "/h/race", i); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	<-started
	var ids []string
	for range 5 {
		id := ts.handshake(t)
		if r := ts.subscribeWith(t, id, "/h/race", `{"replay":{"/h/race":-2}}`); !r.Get("successful").Bool() {
			t.Fatal(r.Raw)
		}
		ids = append(ids, id)
	}
	wg.Wait()
	for _, id := range ids {
		var all []uint64
		bayeuxtest.Eventually(t, 10*time.Second, func() bool {
			_, offs := ts.poll(t, id, "/h/race")
			all = append(all, offs...)
			return len(all) >= n
		}, "every message")
		for i, off := range all {
			if off != uint64(i+1) {
				t.Fatalf("message %d has offset %d (of %d received)", i, off, len(all))
			}
		}
	}
}

func TestHandshakeExt(t *testing.T) {
	tests := []struct {
		cfg       Config
		ext, want string
	}{
		{Config{}, `{"ack":true}`, `{"ack":true}`},
		{Config{NoAck: true}, `{"ack":true}`, ``},
		{Config{}, `{"replay":true}`, `{"replay":true}`},
		{Config{}, `{"ack":true,"replay":true}`, `{"ack":true,"replay":true}`},
		{Config{}, `{"ack":false}`, ``},
	}
	for _, tc := range tests {
		ts := newTestServer(t, tc.cfg)
		r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":`+tc.ext+`}`).Get("0")
		if got := r.Get("ext").Raw; got != tc.want {
			t.Errorf("NoAck %v, ext %s: reply ext %q, want %q", tc.cfg.NoAck, tc.ext, got, tc.want)
		}
	}
}

// TestAckResendsUnacknowledged plays CometD's AckExtension over
// long-polling: a batch the client did not acknowledge is sent again.
func TestAckResendsUnacknowledged(t *testing.T) {
	ts := newTestServer(t, Config{})
	r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"ack":true}}`)
	id := r.Get("0.clientId").String()
	ts.subscribe(t, id, "/a")
	connect := func(ack int) (batch int64, data []string) {
		r := ts.post(t, connectBody(id, `,"advice":{"timeout":0},"ext":{"ack":`+strconv.Itoa(ack)+`}`))
		for _, m := range r.Array() {
			if m.Get("channel").String() == "/meta/connect" {
				batch = m.Get("ext.ack").Int()
			} else {
				data = append(data, m.Get("data").String())
			}
		}
		return batch, data
	}
	b1, _ := connect(0)
	ts.publish(t, "/a", "1")
	ts.publish(t, "/a", "2")
	b2, d := connect(int(b1))
	if b2 != b1+1 || fmt.Sprint(d) != "[1 2]" {
		t.Fatalf("batch %d (after %d), data %v", b2, b1, d)
	}
	// The reply of b2 was "lost": the client acknowledges b1 again.
	ts.publish(t, "/a", "3")
	b3, d := connect(int(b1))
	if fmt.Sprint(d) != "[1 2 3]" {
		t.Fatalf("after a lost batch: %v", d)
	}
	b4, d := connect(int(b3))
	if len(d) != 0 || b4 != b3+1 {
		t.Fatalf("after acknowledging: batch %d, data %v", b4, d)
	}
	if s := ts.sessions.get(id); s.pendBytes != 0 {
		t.Fatalf("%d bytes still kept", s.pendBytes)
	}
}

// TestAckOverWebSocket: messages for an acknowledging session travel with
// the connect reply, in one frame, messages first.
func TestAckOverWebSocket(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := ts.dial(t)
	send := func(s string) {
		if err := c.WriteMessage(1, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"ext":{"ack":true}}]`)
	id := readFrame(t, c, 5*time.Second).Get("0.clientId").String()
	send(`[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/a"}]`)
	readFrame(t, c, 5*time.Second)
	send(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","advice":{"timeout":0},"ext":{"ack":0}}]`)
	b1 := readFrame(t, c, 5*time.Second).Get("0.ext.ack").Int()
	send(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","ext":{"ack":` + strconv.FormatInt(b1, 10) + `}}]`)
	bayeuxtest.Eventually(t, 5*time.Second, ts.sessions.get(id).waiting, "the connect held")
	ts.publish(t, "/a", `"x"`)
	f := readFrame(t, c, 5*time.Second)
	if f.Get("0.data").String() != "x" || f.Get("1.channel").String() != "/meta/connect" || f.Get("1.ext.ack").Int() != b1+1 {
		t.Fatalf("frame %s", f.Raw)
	}
}

// TestAckOverEventSource: the messages of an acknowledging session with an
// EventSource stream travel with its connect replies, which are held like
// long-polls, so that they can be acknowledged.
func TestAckOverEventSource(t *testing.T) {
	ts := newTestServer(t, Config{})
	r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["eventsource"],"ext":{"ack":true}}`)
	id := r.Get("0.clientId").String()
	ts.subscribe(t, id, "/a")
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/"+id, nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	bayeuxtest.Eventually(t, 5*time.Second, ts.sessions.get(id).bound, "the stream bound")
	ts.publish(t, "/a", `"x"`)
	c := ts.post(t, `{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"eventsource","ext":{"ack":0}}`)
	if c.Get(`#(channel=="/a").data`).String() != "x" || c.Get(`#(channel=="/meta/connect").ext.ack`).Int() != 1 {
		t.Fatalf("connect reply %s", c.Raw)
	}
}

// TestReplayRetried: a subscribe retried (its reply was lost) is answered
// as the first one was, without replaying again.
func TestReplayRetried(t *testing.T) {
	ts := historyServer(t, Config{})
	for i := 1; i <= 7; i++ {
		ts.publish(t, "/h/a", strconv.Itoa(i))
	}
	for _, tc := range []struct {
		replay    string
		recovered bool
	}{{`5`, true}, {`1`, false}} {
		id := ts.handshake(t)
		ext := `{"replay":{"/h/a":` + tc.replay + `},"replayLost":"report"}`
		first := ts.subscribeWith(t, id, "/h/a", ext)
		again := ts.subscribeWith(t, id, "/h/a", ext)
		for _, r := range []gjson.Result{first, again} {
			if !r.Get("successful").Bool() || r.Get(`ext.replay.\/h\/a.recovered`).Bool() != tc.recovered {
				t.Fatalf("replay %s: reply %s", tc.replay, r.Raw)
			}
		}
		if got, _ := ts.poll(t, id, "/h/a"); tc.recovered && fmt.Sprint(got) != "[6 7]" {
			t.Fatalf("replay %s: got %v", tc.replay, got)
		}
	}
}
