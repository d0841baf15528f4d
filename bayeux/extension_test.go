package bayeux

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/channels"
)

// funcExt adapts functions to an Extension.
type funcExt struct {
	in  func(context.Context, *Message)
	out func(context.Context, *Reply)
}

func (f funcExt) Incoming(ctx context.Context, m *Message) {
	if f.in != nil {
		f.in(ctx, m)
	}
}

func (f funcExt) Outgoing(ctx context.Context, r *Reply) {
	if f.out != nil {
		f.out(ctx, r)
	}
}

// filterExt is a DeliveryFilter built from a function.
type filterExt struct {
	NopExtension
	delivery func(context.Context, *Message) func(*Session, *Message) bool
}

func (f filterExt) Delivery(ctx context.Context, m *Message) func(*Session, *Message) bool {
	return f.delivery(ctx, m)
}

// tokenGuard rejects subscribes to /secret/** without ext.token == "t" and
// identifies handshakes carrying ext.user; it strips the token.
func tokenGuard() Extension {
	return funcExt{in: func(_ context.Context, m *Message) {
		switch m.Channel {
		case channels.MetaHandshake:
			if u := m.ExtString("user"); u != "" {
				m.Session.SetIdentity(&Identity{User: u, Roles: []string{"member"}})
			}
			if m.ExtString("user") == "banned" {
				m.Error, m.Final = "403::Banned", true
			}
		case channels.MetaSubscribe:
			for _, ch := range m.Subscriptions() {
				if strings.HasPrefix(ch, "/secret") && m.ExtString("token") != "t" {
					m.Error = "403::Forbidden"
				}
			}
		}
		m.DeleteExt("token")
	}}
}

func TestExtensionRejectsSubscribe(t *testing.T) {
	ts := newTestServer(t, Config{Extensions: []Extension{tokenGuard()}})
	id := ts.handshake(t)
	r := ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/secret/a","id":"1"}`)
	if r.Get("0.successful").Bool() || r.Get("0.error").String() != "403::Forbidden" || r.Get("0.subscription").String() != "/secret/a" {
		t.Fatalf("rejected subscribe: %s", r.Raw)
	}
	if ts.Subscribers("/secret/a") != 0 {
		t.Fatal("a rejected subscribe was recorded")
	}
	r = ts.post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/secret/a","ext":{"token":"t"}}`)
	if !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe with the token: %s", r.Raw)
	}
}

// TestMetaChannelBypass is faye's CVE-2020-11020: a message on
// /meta/subscribe/x must not be handled as a subscribe, so an extension
// that checks channel == "/meta/subscribe" cannot be bypassed.
func TestMetaChannelBypass(t *testing.T) {
	ts := newTestServer(t, Config{Extensions: []Extension{tokenGuard()}})
	id := ts.handshake(t)
	for _, ch := range []string{"/meta/subscribe/x", "/meta/subscribe/", "/meta/Subscribe", "/meta/subscribe/../subscribe"} {
		r := ts.post(t, `{"channel":"`+ch+`","clientId":"`+id+`","subscription":"/secret/a"}`)
		if r.Get("0.successful").Bool() || !strings.HasPrefix(r.Get("0.error").String(), "403:") {
			t.Errorf("%s: %s", ch, r.Raw)
		}
	}
	if n := ts.Subscribers("/secret/a"); n != 0 {
		t.Fatalf("bypass subscribed %d session(s)", n)
	}
}

func TestRejectedHandshakeAdvice(t *testing.T) {
	ts := newTestServer(t, Config{Extensions: []Extension{
		tokenGuard(),
		funcExt{in: func(_ context.Context, m *Message) {
			if m.Channel == channels.MetaHandshake && m.ExtString("user") == "nobody" {
				m.Error = "401::Access denied"
			}
		}},
	}})
	tests := []struct {
		user, reconnect string
	}{
		{"nobody", "handshake"}, // may retry, slowly
		{"banned", "none"},      // final
	}
	for _, tt := range tests {
		r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"user":"`+tt.user+`"}}`)
		if r.Get("0.successful").Bool() || r.Get("0.clientId").Exists() || r.Get("0.advice.reconnect").String() != tt.reconnect ||
			r.Get("0.advice.interval").Int() < 1000 {
			t.Errorf("%s: %s", tt.user, r.Raw)
		}
	}
	if ts.Sessions() != 0 {
		t.Fatalf("rejected handshakes left %d sessions", ts.Sessions())
	}
}

func TestIdentityStaysServerSide(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	ts := newTestServer(t, Config{
		ForwardExt: true, // the token goes even where ext is forwarded
		Extensions: []Extension{tokenGuard(), funcExt{in: func(_ context.Context, m *Message) {
			if m.Channel == "/chat" {
				mu.Lock()
				seen = append(seen, m.Session.Identity().User)
				mu.Unlock()
			}
		}}},
	})
	// The user name cannot occur in a clientId ([0-9a-z]), so finding it in
	// a reply means it leaked.
	r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"user":"User-One","token":"t"}}`)
	id := r.Get("0.clientId").String()
	if strings.Contains(r.Raw, "User-One") || strings.Contains(r.Raw, "member") {
		t.Fatalf("identity leaked into the handshake reply: %s", r.Raw)
	}
	if got := ts.Session(id).Identity(); got == nil || got.User != "User-One" || !got.HasRole("member") {
		t.Fatalf("identity = %+v", got)
	}
	ts.subscribe(t, id, "/chat")
	ts.post(t, `{"channel":"/chat","clientId":"`+id+`","data":1,"ext":{"token":"t","keep":1}}`)
	r = ts.post(t, connectBody(id, `,"advice":{"timeout":0}`))
	msg := r.Get(`#(channel=="/chat")`)
	if msg.Get("ext.token").Exists() || msg.Get("ext.keep").Int() != 1 || strings.Contains(r.Raw, "User-One") {
		t.Fatalf("delivery: %s", r.Raw)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "User-One" {
		t.Fatalf("hooks saw identities %q", seen)
	}
}

func TestOutgoingExtensionChangesReplies(t *testing.T) {
	ts := newTestServer(t, Config{Extensions: []Extension{funcExt{out: func(_ context.Context, r *Reply) {
		if r.Channel == channels.MetaHandshake && r.Successful {
			r.Ext = `{"welcome":true}`
		}
	}}}})
	r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`)
	if !r.Get("0.ext.welcome").Bool() {
		t.Fatalf("handshake reply: %s", r.Raw)
	}
}

func TestDeliveryFilter(t *testing.T) {
	// Per recipient: withhold from "bob", add the recipient's name to ext.
	ts := newTestServer(t, Config{Extensions: []Extension{tokenGuard(), filterExt{delivery: func(_ context.Context, m *Message) func(*Session, *Message) bool {
		if !strings.HasPrefix(m.Channel, "/private") {
			return nil // fast path
		}
		return func(to *Session, c *Message) bool {
			u := to.Identity().User
			c.SetExt("to", `"`+u+`"`)
			return u != "bob"
		}
	}}}})
	ids := map[string]string{}
	for _, u := range []string{"ana", "bob"} {
		r := ts.post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"user":"`+u+`"}}`)
		ids[u] = r.Get("0.clientId").String()
		ts.subscribe(t, ids[u], "/**")
	}
	ts.publish(t, "/private/x", `1`)
	ts.publish(t, "/public", `2`)
	drainOf := func(id string) gjson.Result { return ts.post(t, connectBody(id, `,"advice":{"timeout":0}`)) }
	ana, bob := drainOf(ids["ana"]), drainOf(ids["bob"])
	if ana.Get(`#(channel=="/private/x").ext.to`).String() != "ana" || !ana.Get(`#(channel=="/public")`).Exists() ||
		ana.Get(`#(channel=="/public").ext`).Exists() {
		t.Fatalf("ana got %s", ana.Raw)
	}
	if bob.Get(`#(channel=="/private/x")`).Exists() || !bob.Get(`#(channel=="/public")`).Exists() {
		t.Fatalf("bob got %s", bob.Raw)
	}
}

func TestEvents(t *testing.T) {
	var mu sync.Mutex
	var log []string
	add := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	ts := newTestServer(t, Config{Events: Events{
		Handshake:   func(s *Session) { add("handshake") },
		Subscribe:   func(s *Session, ch string) { add("subscribe " + ch) },
		Unsubscribe: func(s *Session, ch string) { add("unsubscribe " + ch) },
		Publish: func(s *Session, ch string, data []byte) {
			add("publish " + ch + " " + string(data) + " anonymous=" + map[bool]string{true: "yes", false: "no"}[s == nil])
		},
		Disconnect: func(s *Session, why EndReason) { add("disconnect " + why.String()) },
	}})
	id := ts.handshake(t)
	ts.subscribe(t, id, "/a")
	ts.subscribe(t, id, "/a") // no second event
	ts.subscribe(t, id, "/b")
	ts.post(t, `{"channel":"/a","clientId":"`+id+`","data":{"x":1}}`)
	ts.publish(t, "/a", `2`)
	ts.post(t, `{"channel":"/meta/unsubscribe","clientId":"`+id+`","subscription":"/a"}`)
	ts.post(t, `{"channel":"/meta/disconnect","clientId":"`+id+`"}`)
	want := []string{"handshake", "subscribe /a", "subscribe /b", `publish /a {"x":1} anonymous=no`, "publish /a 2 anonymous=yes",
		"unsubscribe /a", "unsubscribe /b", "disconnect disconnect"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(log, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
}

func TestServerPublishAPI(t *testing.T) {
	ts := newTestServer(t, Config{Extensions: []Extension{funcExt{in: func(_ context.Context, m *Message) {
		if m.Channel == "/blocked" {
			m.Error = "403::Blocked"
		}
	}}}})
	ctx := context.Background()
	ana, bob := ts.handshake(t), ts.handshake(t)
	ts.Session(ana).SetIdentity(&Identity{User: "ana", Roles: []string{"admin"}})
	for _, id := range []string{ana, bob} {
		ts.subscribe(t, id, "/news/*")
	}
	if err := ts.Publish(ctx, "/news/all", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := ts.PublishTo(ctx, "/news/admins", "for admins", Audience{Roles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Publish(ctx, "/news/not-bob", 3, Excluding(bob)); err != nil {
		t.Fatal(err)
	}
	if err := ts.Deliver(t.Context(), bob, "/direct", "just bob"); err != nil {
		t.Fatal(err)
	}
	var rejected *RejectedError
	for _, ch := range []string{"/blocked", "/meta/handshake", "/bad channel"} {
		if err := ts.Publish(ctx, ch, 1); err == nil || !asRejected(err, &rejected) {
			t.Errorf("Publish(%s) = %v, want a RejectedError", ch, err)
		}
	}
	if err := ts.Deliver(t.Context(), "nope", "/x", 1); err == nil {
		t.Error("Deliver to an unknown client succeeded")
	}
	if err := ts.Deliver(t.Context(), bob, "/meta/connect", 1); !asRejected(err, &rejected) {
		t.Errorf("Deliver to a meta channel = %v, want a RejectedError", err)
	}
	got := func(id string) string {
		r := ts.post(t, connectBody(id, `,"advice":{"timeout":0}`))
		var chans []string
		r.ForEach(func(_, v gjson.Result) bool {
			if v.Get("data").Exists() {
				chans = append(chans, v.Get("channel").String())
			}
			return true
		})
		return strings.Join(chans, " ")
	}
	if g := got(ana); g != "/news/all /news/admins /news/not-bob" {
		t.Errorf("ana received %q", g)
	}
	if g := got(bob); g != "/news/all /direct" {
		t.Errorf("bob received %q", g)
	}
}

func asRejected(err error, target **RejectedError) bool {
	r, ok := err.(*RejectedError)
	if ok {
		*target = r
	}
	return ok
}

func TestExcludeSender(t *testing.T) {
	ts := newTestServer(t, Config{ExcludeSender: []string{"/chat/**"}, Timeout: 5 * time.Second})
	a, b := ts.handshake(t), ts.handshake(t)
	for _, id := range []string{a, b} {
		ts.subscribe(t, id, "/chat/**")
		ts.subscribe(t, id, "/echo")
	}
	ts.post(t, `{"channel":"/chat/room","clientId":"`+a+`","data":"from a"}`)
	ts.post(t, `{"channel":"/echo","clientId":"`+a+`","data":"echo"}`)
	ra := ts.post(t, connectBody(a, `,"advice":{"timeout":0}`))
	rb := ts.post(t, connectBody(b, `,"advice":{"timeout":0}`))
	if ra.Get(`#(channel=="/chat/room")`).Exists() || !ra.Get(`#(channel=="/echo")`).Exists() {
		t.Fatalf("sender got %s", ra.Raw)
	}
	if !rb.Get(`#(channel=="/chat/room")`).Exists() {
		t.Fatalf("other subscriber got %s", rb.Raw)
	}
}

func TestInProcessSubscribeAndServices(t *testing.T) {
	ts := newTestServer(t, Config{})
	var mu sync.Mutex
	var got []string
	record := func(m *Message) { mu.Lock(); got = append(got, m.Channel+" "+m.Data); mu.Unlock() }
	for _, p := range []string{"/chat/**", "/service/**", "/meta/subscribe"} {
		cancel, err := ts.Subscribe(p, record)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
	}
	if err := ts.HandleService("/service/echo", func(_ context.Context, m *Message) (any, error) {
		return map[string]string{"echo": m.Data}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := ts.HandleService("/chat/x", nil); err == nil {
		t.Fatal("HandleService accepted a non-service channel")
	}
	id := ts.handshake(t)
	ts.subscribe(t, id, "/x")
	ts.publish(t, "/chat/a/b", `"hi"`)
	r := ts.post(t, `{"channel":"/service/echo","clientId":"`+id+`","data":"ping","id":"42"}`)
	// The publish ack, then the service's answer with the same id and data.
	if r.Get("#").Int() != 2 || !r.Get("0.successful").Bool() || r.Get("0.data").Exists() ||
		r.Get("1.id").String() != "42" || r.Get("1.data.echo").String() != `"ping"` || !r.Get("1.successful").Bool() {
		t.Fatalf("remote call: %s", r.Raw)
	}
	mu.Lock()
	defer mu.Unlock()
	want := `/meta/subscribe |/chat/a/b "hi"|/service/echo "ping"`
	if strings.Join(got, "|") != want {
		t.Fatalf("in-process subscribers saw %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestCountsAndDisconnect(t *testing.T) {
	ts := newTestServer(t, Config{})
	var ids []string
	for i := range 100 {
		id := ts.handshake(t)
		ids = append(ids, id)
		ts.subscribe(t, id, "/all")
		if i%2 == 0 {
			ts.subscribe(t, id, "/even/*")
		}
	}
	counts := map[string]int{}
	ts.Channels(func(p string, n int) bool { counts[p] = n; return true })
	if ts.Sessions() != 100 || counts["/all"] != 100 || counts["/even/*"] != 50 || len(counts) != 2 {
		t.Fatalf("sessions %d, channels %v", ts.Sessions(), counts)
	}
	if n := len(ts.Recipients("/even/x")); n != 50 {
		t.Fatalf("recipients of /even/x: %d", n)
	}
	if err := ts.Disconnect(t.Context(), ids[0]); err != nil {
		t.Fatal(err)
	}
	if ts.Sessions() != 99 || ts.Subscribers("/all") != 99 || ts.Subscribers("/even/*") != 49 {
		t.Fatalf("after a disconnect: sessions %d, /all %d, /even/* %d", ts.Sessions(), ts.Subscribers("/all"), ts.Subscribers("/even/*"))
	}
	r := ts.post(t, connectBody(ids[0], ""))
	if r.Get("0.advice.reconnect").String() != "handshake" {
		t.Fatalf("connect after a server disconnect: %s", r.Raw)
	}
}

func TestExtHelpers(t *testing.T) {
	tests := []struct {
		ext, del, setKey, setRaw, want string
	}{
		{`{"a":1,"token":"x"}`, "token", "", "", `{"a":1}`},
		{`{"token":"x"}`, "token", "", "", ``},
		{``, "token", "b", `true`, `{"b":true}`},
		{`{"a":{"n":[1,2]}}`, "zz", "a", `2`, `{"a":2}`},
		{`{"a.b":1,"c":2}`, "a.b", "", "", `{"c":2}`},
	}
	for _, tt := range tests {
		m := Message{Ext: tt.ext}
		m.DeleteExt(tt.del)
		if tt.setKey != "" {
			m.SetExt(tt.setKey, tt.setRaw)
		}
		if m.Ext != tt.want {
			t.Errorf("ext %s: got %s, want %s", tt.ext, m.Ext, tt.want)
		}
	}
	m := Message{Ext: `{"token":"s3","n":5,"a.b":"dot"}`}
	if m.ExtString("token") != "s3" || m.ExtString("n") != "" || m.ExtString("a.b") != "dot" {
		t.Error("ExtString")
	}
	if raw, ok := m.ExtField("n"); !ok || raw != "5" {
		t.Error("ExtField")
	}
}

// TestExcludeSenderOverWebSocket: a client publishing over its WebSocket
// on an excluded pattern does not get its message back; a long-polling
// subscriber does.
func TestExcludeSenderOverWebSocket(t *testing.T) {
	ts := newTestServer(t, Config{ExcludeSender: []string{"/chat/**"}, Timeout: 5 * time.Second})
	other := ts.handshake(t)
	ts.subscribe(t, other, "/chat/**")
	ws := ts.dial(t)
	id := ts.handshake(t)
	send := func(s string) {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","id":"1","advice":{"timeout":0}},` +
		`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/chat/**","id":"2"},` +
		`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/echo","id":"3"}]`)
	if r := readFrame(t, ws, 2*time.Second); r.Get("#").Int() != 3 {
		t.Fatalf("replies: %s", r.Raw)
	}
	send(`[{"channel":"/chat/room","clientId":"` + id + `","data":"mine","id":"4"},{"channel":"/echo","clientId":"` + id + `","data":"back","id":"5"}]`)
	var got []string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && !strings.Contains(strings.Join(got, " "), "/echo"); {
		readFrame(t, ws, 2*time.Second).ForEach(func(_, v gjson.Result) bool {
			if v.Get("data").Exists() {
				got = append(got, v.Get("channel").String())
			}
			return true
		})
	}
	if strings.Join(got, " ") != "/echo" {
		t.Fatalf("the WebSocket publisher received %q, want only /echo", got)
	}
	r := ts.post(t, connectBody(other, `,"advice":{"timeout":0}`))
	if r.Get(`#(channel=="/chat/room").data`).String() != "mine" {
		t.Fatalf("the other subscriber got %s", r.Raw)
	}
}
