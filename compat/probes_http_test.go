package compat

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

var clientIDRe = regexp.MustCompile(`^[0-9a-z]{20,}$`)

// --- handshake -------------------------------------------------------------

func TestHandshakeReply(t *testing.T) {
	t.Parallel()
	s := startServer(t, 7)

	cases := []struct {
		name, req string
	}{
		{"faye", `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["in-process","websocket","long-polling"],"id":"1"}]`},
		// CometD 9 sends minimumVersion, advice and an empty ext.
		{"cometd", `[{"id":"1","version":"1.0","minimumVersion":"1.0","channel":"/meta/handshake","supportedConnectionTypes":["websocket","long-polling","callback-polling"],"advice":{"timeout":60000,"interval":0},"ext":{}}]`},
		// A bare object (not an array) is a valid message parameter (H4).
		{"bare-object", `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := s.send(t, c.req)
			if len(rs) != 1 {
				t.Fatalf("want 1 reply, got %d: %v", len(rs), rs)
			}
			r := rs[0]
			assertStr(t, r, "id", "1")
			assertStr(t, r, "channel", "/meta/handshake")
			assertBool(t, r, "successful", true)
			assertStr(t, r, "version", "1.0")
			types := r.Get("supportedConnectionTypes")
			if !types.IsArray() {
				t.Fatalf("supportedConnectionTypes not an array: %s", r.Raw)
			}
			for _, want := range []string{"long-polling", "callback-polling", "websocket"} {
				found := false
				for _, ty := range types.Array() {
					if ty.String() == want {
						found = true
					}
				}
				if !found {
					t.Errorf("supportedConnectionTypes %s lacks %q", types.Raw, want)
				}
			}
			// faye: 31 chars of [0-9a-z]; Bayou only promises >=128 bits, URL-safe.
			if cid := r.Get("clientId").String(); !clientIDRe.MatchString(cid) {
				t.Errorf("clientId %q does not match %s", cid, clientIDRe)
			}
			assertJSON(t, r.Get("advice").Raw, `{"reconnect":"retry","interval":0,"timeout":7000}`)
			assertAbsent(t, r, "error")
		})
	}

	t.Run("distinct-ids", func(t *testing.T) {
		a, b := s.handshake(t), s.handshake(t)
		if a == b {
			t.Errorf("two handshakes returned the same clientId %q", a)
		}
	})
}

func TestHandshakeFailures(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cases := []struct {
		name, req, err string
	}{
		{"missing-version", `{"channel":"/meta/handshake","supportedConnectionTypes":["long-polling"],"id":"1"}`,
			"402:version:Missing required parameter"},
		{"missing-types", `{"channel":"/meta/handshake","version":"1.0","id":"1"}`,
			"402:supportedConnectionTypes:Missing required parameter"},
		{"unsupported-types", `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["flash","iframe"],"id":"1"}`,
			"301:flash,iframe:Connection types not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := s.send(t, c.req)
			if len(rs) != 1 {
				t.Fatalf("want 1 reply, got %v", rs)
			}
			r := rs[0]
			assertFailure(t, r, "/meta/handshake", c.err)
			assertStr(t, r, "id", "1")
			assertAbsent(t, r, "clientId")
			assertStr(t, r, "advice.reconnect", "handshake")
			if isBayou() {
				// Deliberate Bayou difference (I2/A13): failure advice carries an
				// interval (>=1000 ms) so rejected clients do not hot-loop; faye
				// sends {reconnect:"handshake"} only.
				if iv := r.Get("advice.interval"); iv.Type != gjson.Number || iv.Num < 1000 {
					t.Errorf("Bayou handshake failure advice.interval = %s, want >= 1000", orMissing(iv))
				}
			}
		})
	}
}

// --- connect ---------------------------------------------------------------

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cid := s.handshake(t)
	cases := []struct {
		name, req, err string
	}{
		{"unknown-client", `{"channel":"/meta/connect","clientId":"nope123","connectionType":"long-polling","id":"c1"}`,
			"401:nope123:Unknown client"},
		{"missing-clientId", `{"channel":"/meta/connect","connectionType":"long-polling","id":"c1"}`,
			"402:clientId:Missing required parameter"},
		{"missing-connectionType", fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"id":"c1"}`, cid),
			"402:connectionType:Missing required parameter"},
		{"bad-connectionType", fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"flash","id":"c1"}`, cid),
			"301:flash:Connection types not supported"},
		// E13: the last applicable check wins, so 301 beats 401.
		{"unknown-client-and-bad-type", `{"channel":"/meta/connect","clientId":"nope123","connectionType":"flash","id":"c1"}`,
			"301:flash:Connection types not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.postJSON(t, c.req)
			if r.took > 2*time.Second {
				t.Errorf("failed connect took %v; must be answered at once", r.took)
			}
			rs := mustReplies(t, r)
			if len(rs) != 1 {
				t.Fatalf("want 1 reply, got %v", rs)
			}
			m := rs[0]
			assertFailure(t, m, "/meta/connect", c.err)
			assertStr(t, m, "id", "c1")
			assertAbsent(t, m, "clientId")
			assertStr(t, m, "advice.reconnect", "handshake")
			if isBayou() {
				// Deliberate Bayou difference (I2/C6b): error advice carries an
				// interval key so clients back off; faye sends reconnect only.
				if !m.Get("advice.interval").Exists() {
					t.Errorf("Bayou connect failure advice lacks interval: %s", m.Raw)
				}
			}
		})
	}
}

// --- subscribe -------------------------------------------------------------

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cid := s.handshake(t)
	sub := func(subscription string) string {
		return fmt.Sprintf(`{"channel":"/meta/subscribe","clientId":%q,"subscription":%s,"id":"s1"}`, cid, subscription)
	}
	cases := []struct {
		name, req, err string
	}{
		{"meta", sub(`"/meta/foo"`), "403:/meta/foo:Forbidden channel"},
		{"invalid-pattern", sub(`"/a/*/b"`), "405:/a/*/b:Invalid channel"},
		{"invalid-name", sub(`"/foo.bar"`), "405:/foo.bar:Invalid channel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := s.send(t, c.req)
			if len(rs) != 1 {
				t.Fatalf("want 1 reply, got %v", rs)
			}
			assertFailure(t, rs[0], "/meta/subscribe", c.err)
			assertStr(t, rs[0], "id", "s1")
			assertStr(t, rs[0], "clientId", cid)
			assertAbsent(t, rs[0], "advice")
		})
	}

	t.Run("missing-subscription", func(t *testing.T) {
		rs := s.send(t, fmt.Sprintf(`{"channel":"/meta/subscribe","clientId":%q,"id":"s1"}`, cid))
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertFailure(t, rs[0], "/meta/subscribe", "402:subscription:Missing required parameter")
		if v := rs[0].Get("subscription"); !v.IsArray() || len(v.Array()) != 0 {
			t.Errorf(`subscription = %s, want []`, orMissing(v))
		}
	})

	t.Run("unknown-client", func(t *testing.T) {
		// G20: a subscribe failure keeps clientId, even an unknown one.
		rs := s.send(t, `{"channel":"/meta/subscribe","clientId":"nope","subscription":"/x","id":"8"}`)
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertFailure(t, rs[0], "/meta/subscribe", "401:nope:Unknown client")
		assertStr(t, rs[0], "clientId", "nope")
		assertStr(t, rs[0], "subscription", "/x")
		assertStr(t, rs[0], "id", "8")
	})

	t.Run("ok-reply-fields", func(t *testing.T) {
		rs := s.send(t, fmt.Sprintf(`{"channel":"/meta/subscribe","clientId":%q,"subscription":"/foo/*","id":"2"}`, cid))
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertJSON(t, rs[0].Raw, fmt.Sprintf(`{"id":"2","clientId":%q,"channel":"/meta/subscribe","successful":true,"subscription":"/foo/*"}`, cid))
	})

	t.Run("service", func(t *testing.T) {
		rs := s.send(t, sub(`"/service/foo"`))
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		if isBayou() {
			// Deliberate Bayou difference (CometD 2.10 #11): subscribing to
			// /service/** succeeds (as a no-op) so CometD apps work; faye 403s.
			assertBool(t, rs[0], "successful", true)
			assertStr(t, rs[0], "subscription", "/service/foo")
		} else {
			assertFailure(t, rs[0], "/meta/subscribe", "403:/service/foo:Forbidden channel")
		}
	})
}

func TestSubscribePartialSuccess(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cid := s.handshake(t)
	rs := s.send(t, fmt.Sprintf(`{"channel":"/meta/subscribe","clientId":%q,"subscription":["/ok1","/meta/x","/ok2"],"id":"s1"}`, cid))
	if len(rs) != 1 {
		t.Fatalf("want 1 reply, got %v", rs)
	}
	assertFailure(t, rs[0], "/meta/subscribe", "403:/meta/x:Forbidden channel")
	// G12: the subscription is echoed verbatim; an array stays an array.
	assertJSON(t, rs[0].Get("subscription").Raw, `["/ok1","/meta/x","/ok2"]`)

	// /ok1 (before the failing entry) is subscribed, /ok2 (after it) is not.
	s.publish(t, "/ok2", `"two"`)
	s.publish(t, "/ok1", `"one"`)
	msgs := s.drain(t, cid)
	if len(msgs) != 1 {
		t.Fatalf("want exactly the /ok1 message, got %s", rawList(msgs))
	}
	assertJSON(t, msgs[0].Raw, `{"channel":"/ok1","data":"one"}`)
}

// --- publish ---------------------------------------------------------------

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cid := s.handshake(t)
	cases := []struct {
		name, req, channel, err string
	}{
		{"no-data", fmt.Sprintf(`{"channel":"/foo/bar","clientId":%q,"id":"p1"}`, cid), "/foo/bar", "402:data:Missing required parameter"},
		{"pattern", fmt.Sprintf(`{"channel":"/foo/*","data":1,"clientId":%q,"id":"p1"}`, cid), "/foo/*", "405:/foo/*:Invalid channel"},
		{"no-slash", fmt.Sprintf(`{"channel":"foo","data":1,"clientId":%q,"id":"p1"}`, cid), "foo", "405:foo:Invalid channel"},
		{"meta", fmt.Sprintf(`{"channel":"/meta/foo","data":1,"clientId":%q,"id":"p1"}`, cid), "/meta/foo", "403:/meta/foo:Forbidden channel"},
		{"missing-channel", fmt.Sprintf(`{"data":1,"clientId":%q,"id":"p1"}`, cid), "", "405::Invalid channel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := s.send(t, c.req)
			if len(rs) != 1 {
				t.Fatalf("want 1 reply, got %v", rs)
			}
			assertFailure(t, rs[0], c.channel, c.err)
			assertStr(t, rs[0], "id", "p1")
			assertAbsent(t, rs[0], "data")
			if c.channel == "" {
				assertAbsent(t, rs[0], "channel") // G24
			}
		})
	}

	t.Run("data-null", func(t *testing.T) {
		rs := s.send(t, fmt.Sprintf(`{"channel":"/foo/bar","data":null,"clientId":%q,"id":"p2"}`, cid))
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertJSON(t, rs[0].Raw, fmt.Sprintf(`{"id":"p2","clientId":%q,"channel":"/foo/bar","successful":true}`, cid))
	})

	t.Run("anonymous", func(t *testing.T) {
		r := s.postJSON(t, `{"channel":"/foo/bar","data":"hi"}`)
		mustReplies(t, r)
		assertJSON(t, string(r.body), `[{"channel":"/foo/bar","successful":true}]`)
	})

	t.Run("service", func(t *testing.T) {
		// G5: publishing to /service/... is allowed.
		rs := s.send(t, `{"channel":"/service/x","data":{"a":1},"id":"p3"}`)
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertBool(t, rs[0], "successful", true)
		assertAbsent(t, rs[0], "data")
	})

	t.Run("unknown-meta-message", func(t *testing.T) {
		rs := s.send(t, fmt.Sprintf(`{"channel":"/meta/ping","clientId":%q,"id":"5"}`, cid))
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertFailure(t, rs[0], "/meta/ping", "403:/meta/ping:Forbidden channel")
		assertAbsent(t, rs[0], "advice")
	})
}

// --- delivery --------------------------------------------------------------

// TestTranscriptLongPolling replays the long-polling transcript of section 11.
func TestTranscriptLongPolling(t *testing.T) {
	t.Parallel()
	s := startServer(t, 10)
	cid := s.handshake(t)

	rs := s.send(t, fmt.Sprintf(`[{"channel":"/meta/subscribe","clientId":%[1]q,"subscription":"/foo/*","id":"2"},
		{"channel":"/meta/subscribe","clientId":%[1]q,"subscription":"/foo/bar","id":"3"}]`, cid))
	if len(rs) != 2 {
		t.Fatalf("want 2 replies, got %v", rs)
	}
	assertJSON(t, byID(rs, "2").Raw, fmt.Sprintf(`{"id":"2","clientId":%q,"channel":"/meta/subscribe","successful":true,"subscription":"/foo/*"}`, cid))
	assertJSON(t, byID(rs, "3").Raw, fmt.Sprintf(`{"id":"3","clientId":%q,"channel":"/meta/subscribe","successful":true,"subscription":"/foo/bar"}`, cid))

	r := s.postJSON(t, fmt.Sprintf(`{"channel":"/foo/bar","data":{"x":1},"clientId":%q,"id":"10","ext":{"tok":"s"}}`, cid))
	mustReplies(t, r)
	assertJSON(t, string(r.body), fmt.Sprintf(`[{"id":"10","clientId":%q,"channel":"/foo/bar","successful":true}]`, cid))
	r = s.postJSON(t, `{"channel":"/foo/bar","data":"hi"}`)
	mustReplies(t, r)
	assertJSON(t, string(r.body), `[{"channel":"/foo/bar","successful":true}]`)

	r = s.postJSON(t, fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","id":"17"}`, cid))
	if r.took > 2*time.Second {
		t.Errorf("connect with a non-empty queue took %v, want immediate", r.took)
	}
	rs = mustReplies(t, r)
	if len(rs) != 3 {
		t.Fatalf("want [connectReply,msg1,msg2], got %s", r.body)
	}
	assertJSON(t, rs[0].Raw, fmt.Sprintf(`{"id":"17","clientId":%q,"channel":"/meta/connect","successful":true,"advice":{"reconnect":"retry","interval":0,"timeout":10000}}`, cid))
	// One copy each despite matching both /foo/* and /foo/bar (S4), in
	// publish order, without clientId, id/ext/data intact (G25). Bayou
	// does not forward the publisher's ext unless configured to
	// (Config.ForwardExt): it may hold credentials.
	if isBayou() {
		assertJSON(t, rs[1].Raw, `{"channel":"/foo/bar","data":{"x":1},"id":"10"}`)
	} else {
		assertJSON(t, rs[1].Raw, `{"channel":"/foo/bar","data":{"x":1},"id":"10","ext":{"tok":"s"}}`)
	}
	assertJSON(t, rs[2].Raw, `{"channel":"/foo/bar","data":"hi"}`)
}

func TestQueuedDelivery(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cid := s.handshake(t)
	pub := s.handshake(t)
	s.subscribe(t, cid, "/q")
	for i := 1; i <= 5; i++ {
		rs := s.send(t, fmt.Sprintf(`{"channel":"/q","data":{"n":%d},"clientId":%q,"id":"q%d"}`, i, pub, i))
		if len(rs) != 1 || !rs[0].Get("successful").Bool() {
			t.Fatalf("publish %d failed: %v", i, rs)
		}
	}
	r := s.postJSON(t, fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","id":"c1"}`, cid))
	if r.took > 2*time.Second {
		t.Errorf("connect with a queue took %v, want immediate", r.took)
	}
	rs := mustReplies(t, r)
	if len(rs) != 6 {
		t.Fatalf("want connect reply + 5 messages in one reply, got %s", r.body)
	}
	assertStr(t, rs[0], "channel", "/meta/connect")
	for i := 1; i <= 5; i++ {
		assertJSON(t, rs[i].Raw, fmt.Sprintf(`{"channel":"/q","data":{"n":%d},"id":"q%d"}`, i, i))
	}
}

func TestHeldConnect(t *testing.T) {
	t.Parallel()
	const T = 2
	tsec := time.Duration(T) * time.Second

	t.Run("held-for-timeout", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, T)
		cid := s.handshake(t)
		r := s.postJSON(t, fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","id":"c1"}`, cid))
		within(t, "held connect", r.took, tsec*8/10, tsec*12/10)
		rs := mustReplies(t, r)
		if len(rs) != 1 {
			t.Fatalf("want [connectReply], got %s", r.body)
		}
		assertJSON(t, rs[0].Raw, fmt.Sprintf(`{"id":"c1","clientId":%q,"channel":"/meta/connect","successful":true,"advice":{"reconnect":"retry","interval":0,"timeout":2000}}`, cid))
	})

	t.Run("advice-timeout-0-batched", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, T)
		cid := s.handshake(t)
		r := s.postJSON(t, fmt.Sprintf(`[{"channel":"/meta/connect","clientId":%[1]q,"connectionType":"long-polling","advice":{"timeout":0},"id":"2"},
			{"channel":"/meta/subscribe","clientId":%[1]q,"subscription":"/b","id":"3"}]`, cid))
		if r.took > 500*time.Millisecond {
			t.Errorf("connect with advice.timeout 0 took %v, want immediate", r.took)
		}
		rs := mustReplies(t, r)
		if len(rs) != 2 {
			t.Fatalf("want 2 replies, got %s", r.body)
		}
		c := byID(rs, "2")
		assertStr(t, c, "channel", "/meta/connect")
		assertBool(t, c, "successful", true)
		assertJSON(t, c.Get("advice").Raw, `{"reconnect":"retry","interval":0,"timeout":2000}`)
		assertBool(t, byID(rs, "3"), "successful", true)
	})

	t.Run("early-return-on-publish", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, T)
		cid := s.handshake(t)
		pub := s.handshake(t)
		s.subscribe(t, cid, "/early")
		type result struct {
			r   *httpResp
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			r, err := s.doErr(context.Background(), http.MethodPost, mount, map[string]string{"Content-Type": "application/json"},
				fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","id":"c1"}`, cid))
			done <- result{r, err, time.Now()}
		}()
		// The connect is held: not answered for 500ms (a bounded wait
		// for something that must not happen).
		select {
		case res := <-done:
			t.Fatalf("connect returned before any publish: %v %v", res.r, res.err)
		case <-time.After(500 * time.Millisecond):
		}
		pubAt := time.Now()
		rs := s.send(t, fmt.Sprintf(`{"channel":"/early","data":{"v":"é"},"clientId":%q,"id":"e1"}`, pub))
		if !rs[0].Get("successful").Bool() {
			t.Fatalf("publish failed: %v", rs)
		}
		var res result
		select {
		case res = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("held connect not answered")
		}
		if res.err != nil {
			t.Fatal(res.err)
		}
		if d := res.at.Sub(pubAt); d > 300*time.Millisecond {
			t.Errorf("held connect answered %v after the publish, want < 300ms", d)
		}
		crs := mustReplies(t, res.r)
		if len(crs) != 2 {
			t.Fatalf("want [connectReply, message], got %s", res.r.body)
		}
		assertStr(t, crs[0], "channel", "/meta/connect")
		assertStr(t, crs[0], "id", "c1")
		assertBool(t, crs[0], "successful", true)
		assertJSON(t, crs[1].Raw, `{"channel":"/early","data":{"v":"é"},"id":"e1"}`)
	})
}

func TestConcurrentConnects(t *testing.T) {
	t.Parallel()
	if !isBayou() {
		// faye orphans the first held connect (A11); Bayou answers it.
		t.Skip("Bayou only: faye never answers the first of two concurrent connects (A11)")
	}
	s := startServer(t, 5)
	cid := s.handshake(t)
	connect := func(id string) (*httpResp, error) {
		return s.doErr(context.Background(), http.MethodPost, mount, map[string]string{"Content-Type": "application/json"},
			fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","id":%q}`, cid, id))
	}
	type result struct {
		r   *httpResp
		err error
		at  time.Time
	}
	first := make(chan result, 1)
	go func() {
		r, err := connect("c1")
		first <- result{r, err, time.Now()}
	}()
	// The first connect is held before the second is sent: not answered
	// for 400ms (a bounded wait for something that must not happen).
	select {
	case res := <-first:
		t.Fatalf("first connect answered before the second was sent: %v %v", res.r, res.err)
	case <-time.After(400 * time.Millisecond):
	}
	second := make(chan result, 1)
	secondAt := time.Now()
	go func() {
		r, err := connect("c2")
		second <- result{r, err, time.Now()}
	}()
	select {
	case res := <-first:
		if res.err != nil {
			t.Fatal(res.err)
		}
		if d := res.at.Sub(secondAt); d > time.Second {
			t.Errorf("first connect answered %v after the second arrived, want < 1s", d)
		}
		rs := mustReplies(t, res.r)
		c := byID(rs, "c1")
		assertStr(t, c, "channel", "/meta/connect")
		assertBool(t, c, "successful", true)
	case <-time.After(3 * time.Second):
		t.Fatal("first connect not answered within 3s of the second")
	}
	// The second one is now the held connect; it ends at ≈T.
	select {
	case res := <-second:
		if res.err != nil {
			t.Fatal(res.err)
		}
		assertBool(t, byID(mustReplies(t, res.r), "c2"), "successful", true)
	case <-time.After(8 * time.Second):
		t.Fatal("second connect not answered")
	}
}

func TestBroadcastHygiene(t *testing.T) {
	t.Parallel()
	if !isBayou() {
		// faye forwards the whole published message (I1), and treats a
		// client-supplied "error" field as an extension rejection.
		t.Skip("Bayou only: faye forwards advice/successful/custom fields to subscribers (I1)")
	}
	s := startServer(t, 5)
	cid := s.handshake(t)
	s.subscribe(t, cid, "/x", "/y")
	rs := s.send(t, `{"channel":"/x","data":1,"id":"7","advice":{"reconnect":"none"},"successful":true,"clientId":"zzz","custom":"c","error":"e"}`)
	if len(rs) != 1 || !rs[0].Get("successful").Bool() {
		t.Fatalf("publish failed: %v", rs)
	}
	rs = s.send(t, `{"channel":"/y","data":{"k":[1,2]},"id":"8","ext":{"tok":"s"},"subscription":"/z","connectionType":"long-polling"}`)
	if len(rs) != 1 || !rs[0].Get("successful").Bool() {
		t.Fatalf("publish failed: %v", rs)
	}
	msgs := s.drain(t, cid)
	if len(msgs) != 2 {
		t.Fatalf("want 2 messages, got %s", rawList(msgs))
	}
	// Deliberate Bayou difference (I1): broadcasts are built from a
	// whitelist (channel, data, id, and ext as extensions set it);
	// faye forwards everything but clientId.
	assertJSON(t, msgs[0].Raw, `{"channel":"/x","data":1,"id":"7"}`)
	assertJSON(t, msgs[1].Raw, `{"channel":"/y","data":{"k":[1,2]},"id":"8"}`)
}

// --- batches and ids -------------------------------------------------------

func TestBatchReplies(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cid := s.handshake(t)

	t.Run("every-id-answered", func(t *testing.T) {
		rs := s.send(t, fmt.Sprintf(`[
			{"channel":"/meta/subscribe","clientId":%[1]q,"subscription":"/m1","id":"1"},
			{"channel":"/m2","data":"x","clientId":%[1]q,"id":"2"},
			{"channel":"/foo/*","data":"x","clientId":%[1]q,"id":"3"},
			{"channel":"/meta/unsubscribe","clientId":%[1]q,"subscription":"/m1","id":"4"},
			{"channel":"/meta/connect","clientId":%[1]q,"connectionType":"long-polling","advice":{"timeout":0},"id":"5"}]`, cid))
		counts := map[string]int{}
		for _, r := range rs {
			if r.Get("successful").Exists() {
				counts[r.Get("id").String()]++
			}
		}
		for _, id := range []string{"1", "2", "3", "4", "5"} {
			if counts[id] != 1 {
				t.Errorf("id %q answered %d times in %s", id, counts[id], rawList(rs))
			}
		}
		assertBool(t, byID(rs, "1"), "successful", true)
		assertBool(t, byID(rs, "2"), "successful", true)
		assertFailure(t, byID(rs, "3"), "/foo/*", "405:/foo/*:Invalid channel")
		assertBool(t, byID(rs, "4"), "successful", true)
		assertStr(t, byID(rs, "4"), "subscription", "/m1")
		assertBool(t, byID(rs, "5"), "successful", true)
		assertStr(t, byID(rs, "5"), "channel", "/meta/connect")
	})

	t.Run("id-json-types", func(t *testing.T) {
		rs := s.send(t, `[{"channel":"/n","data":1,"id":7},{"channel":"/n","data":2,"id":"7"},{"channel":"/n","data":3,"id":"x-9"}]`)
		if len(rs) != 3 {
			t.Fatalf("want 3 replies, got %s", rawList(rs))
		}
		var num, str int
		for _, r := range rs {
			id := r.Get("id")
			switch {
			case id.Type == gjson.Number && id.Raw == "7":
				num++
			case id.Type == gjson.String && id.Str == "7":
				str++
			case id.Type == gjson.String && id.Str == "x-9":
			default:
				t.Errorf("unexpected id %s in %s", orMissing(id), r.Raw)
			}
		}
		if num != 1 || str != 1 {
			t.Errorf("numeric id 7 echoed %d times, string id \"7\" %d times; want 1 each: %s", num, str, rawList(rs))
		}
	})

	t.Run("empty-batch", func(t *testing.T) {
		r := s.postJSON(t, `[]`)
		mustReplies(t, r)
		assertJSON(t, string(r.body), `[]`)
	})

	t.Run("json-charset", func(t *testing.T) {
		r := s.do(t, http.MethodPost, mount, map[string]string{"Content-Type": "application/json; charset=utf-8"},
			`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]`)
		rs := mustReplies(t, r)
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %s", r.body)
		}
		assertBool(t, rs[0], "successful", true)
	})
}

// TestPaths: CometD posts to {mount}/handshake, /connect, /disconnect and
// {mount}/ (cometd-dialect 2.2).
func TestPaths(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	hs := `[{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["long-polling","callback-polling"],"advice":{"timeout":60000,"interval":0},"id":"1"}]`
	for _, p := range []string{mount, mount + "/", mount + "/handshake"} {
		t.Run("handshake"+strings.TrimPrefix(p, mount), func(t *testing.T) {
			rs := mustReplies(t, s.postJSONTo(t, p, hs))
			if len(rs) != 1 {
				t.Fatalf("want 1 reply, got %v", rs)
			}
			assertStr(t, rs[0], "id", "1")
			assertBool(t, rs[0], "successful", true)
		})
	}
	t.Run("connect", func(t *testing.T) {
		cid := s.handshake(t)
		rs := mustReplies(t, s.postJSONTo(t, mount+"/connect",
			fmt.Sprintf(`[{"id":"2","channel":"/meta/connect","connectionType":"long-polling","advice":{"timeout":0},"clientId":%q}]`, cid)))
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertStr(t, rs[0], "id", "2")
		assertBool(t, rs[0], "successful", true)
	})
	t.Run("slash-publish", func(t *testing.T) {
		cid := s.handshake(t)
		rs := mustReplies(t, s.postJSONTo(t, mount+"/",
			fmt.Sprintf(`[{"id":"3","channel":"/meta/subscribe","subscription":"/p","clientId":%[1]q},{"id":"4","channel":"/p","data":{},"clientId":%[1]q}]`, cid)))
		assertBool(t, byID(rs, "3"), "successful", true)
		assertBool(t, byID(rs, "4"), "successful", true)
	})
	t.Run("disconnect", func(t *testing.T) {
		cid := s.handshake(t)
		rs := mustReplies(t, s.postJSONTo(t, mount+"/disconnect",
			fmt.Sprintf(`[{"id":"5","channel":"/meta/disconnect","clientId":%q}]`, cid)))
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertStr(t, rs[0], "id", "5")
		assertBool(t, rs[0], "successful", true)
	})
}

// --- HTTP-level behaviour ----------------------------------------------------

func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	js := map[string]string{"Content-Type": "application/json"}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	cases := []struct {
		name, method, target string
		hdr                  map[string]string
		body                 string
	}{
		{"malformed-json", http.MethodPost, mount, js, `[{"channel":`},
		{"primitive-json", http.MethodPost, mount, js, `1`},
		{"primitive-string", http.MethodPost, mount, js, `"x"`},
		{"missing-message-field", http.MethodPost, mount, form, `foo=bar`},
		{"malformed-form-message", http.MethodPost, mount, form, "message=" + url.QueryEscape(`{"channel"`)},
		{"put", http.MethodPut, mount, js, `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`},
		{"get-without-message", http.MethodGet, mount, nil, ""},
		{"jsonp-numeric-callback", http.MethodGet, mount + "?message=%5B%5D&jsonp=42", nil, ""},
		{"jsonp-call-callback", http.MethodGet, mount + "?message=%5B%5D&jsonp=" + url.QueryEscape("alert(1)"), nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(t, c.method, c.target, c.hdr, c.body)
			if r.status != 400 {
				t.Errorf("status %d, want 400 (%s)", r.status, r)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q, want text/plain; charset=utf-8", ct)
			}
			if string(r.body) != "Bad request" {
				t.Errorf("body %q, want %q", r.body, "Bad request")
			}
			// The next request on the same server is served normally.
			s.handshake(t)
		})
	}
}

func TestPostResponseHeaders(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	hs := `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]`
	common := func(t *testing.T, r *httpResp) {
		t.Helper()
		mustReplies(t, r)
		for k, want := range map[string]string{
			"Content-Type":           "application/json; charset=utf-8",
			"Cache-Control":          "no-cache, no-store",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
	}
	t.Run("with-origin", func(t *testing.T) {
		const origin = "http://evil.example:1"
		r := s.do(t, http.MethodPost, mount, map[string]string{"Content-Type": "application/json", "Origin": origin}, hs)
		common(t, r)
		if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
		}
		if got := r.header.Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("Access-Control-Allow-Credentials = %q, want true", got)
		}
	})
	t.Run("without-origin", func(t *testing.T) {
		r := s.postJSON(t, hs)
		common(t, r)
		if got, ok := r.header["Access-Control-Allow-Origin"]; ok {
			t.Errorf("Access-Control-Allow-Origin present without Origin: %q", got)
		}
	})
}

func TestFormBodies(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain;charset=UTF-8", ""} {
		name := ct
		if name == "" {
			name = "no-content-type"
		}
		t.Run(strings.NewReplacer("/", "_", ";", "_").Replace(name), func(t *testing.T) {
			cid := s.handshake(t)
			// A browser CORS batch: connect (advice.timeout 0) + subscribe, with
			// a space in the data to check '+' / %20 decoding.
			r := s.postForm(t, ct, fmt.Sprintf(`[{"channel":"/meta/connect","clientId":%[1]q,"connectionType":"cross-origin-long-polling","advice":{"timeout":0},"id":"1"},
				{"channel":"/meta/subscribe","clientId":%[1]q,"subscription":"/f","id":"2"},
				{"channel":"/f","data":"a b+c","clientId":%[1]q,"id":"3"}]`, cid))
			if r.took > time.Second {
				t.Errorf("form batch took %v", r.took)
			}
			rs := mustReplies(t, r)
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, id := range []string{"1", "2", "3"} {
				assertBool(t, byID(rs, id), "successful", true)
			}
			// The message may come back in this very reply (faye appends it to
			// the connect reply, which it builds after the publish) or in the
			// next connect; either way exactly once.
			msgs := append(broadcasts(rs), s.drain(t, cid)...)
			if len(msgs) != 1 {
				t.Fatalf("want the published message once, got %s", rawList(msgs))
			}
			assertJSON(t, msgs[0].Raw, `{"channel":"/f","data":"a b+c","id":"3"}`)
		})
	}
}

// --- JSON-P ------------------------------------------------------------------

func TestJSONP(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	hs := `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["callback-polling"],"id":"1"}]`

	check := func(t *testing.T, r *httpResp, callback string) []gjson.Result {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r)
		}
		for k, want := range map[string]string{
			"Content-Type":           "text/javascript; charset=utf-8",
			"Content-Disposition":    "attachment; filename=f.txt",
			"X-Content-Type-Options": "nosniff",
			"Cache-Control":          "no-cache, no-store",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		body := string(r.body)
		prefix, suffix := "/**/"+callback+"(", ");"
		if !strings.HasPrefix(body, prefix) || !strings.HasSuffix(body, suffix) {
			t.Fatalf("body %q is not %s...%s", body, prefix, suffix)
		}
		return mustArray(t, []byte(strings.TrimSuffix(strings.TrimPrefix(body, prefix), suffix)))
	}

	t.Run("callback", func(t *testing.T) {
		rs := check(t, s.getJSONP(t, hs, "__jsonp1__"), "__jsonp1__")
		if len(rs) != 1 {
			t.Fatalf("want 1 reply, got %v", rs)
		}
		assertBool(t, rs[0], "successful", true)
		assertStr(t, rs[0], "id", "1")
	})
	t.Run("default-callback", func(t *testing.T) {
		rs := check(t, s.getJSONP(t, hs, ""), "jsonpcallback")
		assertBool(t, rs[0], "successful", true)
	})
	t.Run("dotted-callback", func(t *testing.T) {
		rs := check(t, s.getJSONP(t, hs, "a.b_c$"), "a.b_c$")
		assertBool(t, rs[0], "successful", true)
	})
	t.Run("empty-batch", func(t *testing.T) {
		r := s.getJSONP(t, `[]`, "cb")
		rs := check(t, r, "cb")
		if len(rs) != 0 {
			t.Errorf("want [], got %s", r.body)
		}
	})
	t.Run("with-origin", func(t *testing.T) {
		q := url.Values{"message": {hs}, "jsonp": {"cb"}}
		r := s.do(t, http.MethodGet, mount+"?"+q.Encode(), map[string]string{"Origin": "http://o.example"}, "")
		check(t, r, "cb")
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "http://o.example" {
			t.Errorf("Access-Control-Allow-Origin = %q", got)
		}
	})

	t.Run("bad-callback-not-processed", func(t *testing.T) {
		cid := s.handshake(t)
		s.subscribe(t, cid, "/jp")
		for _, cb := range []string{"42", "alert(1)", "a..b", "a-b"} {
			r := s.getJSONP(t, `[{"channel":"/jp","data":"x"}]`, cb)
			if r.status != 400 || string(r.body) != "Bad request" {
				t.Errorf("jsonp=%q: %s, want 400 Bad request", cb, r)
			}
		}
		if msgs := s.drain(t, cid); len(msgs) != 0 {
			t.Errorf("a rejected JSONP request was processed: %s", rawList(msgs))
		}
	})

	t.Run("u2028-escaped", func(t *testing.T) {
		cid := s.handshake(t)
		s.subscribe(t, cid, "/ls")
		s.publish(t, "/ls", `"a\u2028b\u2029c"`)
		s.publish(t, "/ls", "\"raw\u2028sep\"")
		r := s.getJSONP(t, fmt.Sprintf(`[{"channel":"/meta/connect","clientId":%q,"connectionType":"callback-polling","advice":{"timeout":0},"id":"c"}]`, cid), "__jsonp2__")
		rs := check(t, r, "__jsonp2__")
		if strings.ContainsAny(string(r.body), "\u2028\u2029") {
			t.Errorf("JSONP body contains a raw U+2028/U+2029: %q", r.body)
		}
		if !strings.Contains(string(r.body), `\u2028`) || !strings.Contains(string(r.body), `\u2029`) {
			t.Errorf("JSONP body lacks escaped \\u2028/\\u2029: %q", r.body)
		}
		var datas []string
		for _, m := range rs {
			if m.Get("channel").String() == "/ls" {
				datas = append(datas, m.Get("data").String())
			}
		}
		if len(datas) != 2 || datas[0] != "a\u2028b\u2029c" || datas[1] != "raw\u2028sep" {
			t.Errorf("delivered data %q", datas)
		}
	})
}

// --- CORS ------------------------------------------------------------------

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	const origin = "http://localhost:8031"
	r := s.do(t, http.MethodOptions, mount, map[string]string{
		"Origin":                         origin,
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "pragma, x-foo",
	}, "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r)
	}
	if len(r.body) != 0 {
		t.Errorf("preflight body %q, want empty", r.body)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":      origin,
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "POST, GET",
		"Access-Control-Max-Age":           "86400",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	allowed := map[string]bool{}
	for _, h := range strings.Split(r.header.Get("Access-Control-Allow-Headers"), ",") {
		allowed[strings.ToLower(strings.TrimSpace(h))] = true
	}
	for _, h := range []string{"Accept", "Authorization", "Content-Type", "Pragma", "X-Requested-With"} {
		if !allowed[strings.ToLower(h)] {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", r.header.Get("Access-Control-Allow-Headers"), h)
		}
	}
	if isBayou() {
		// Deliberate Bayou difference (H13/I9): requested custom headers are
		// allowed too; faye's list is fixed.
		if !allowed["x-foo"] {
			t.Errorf("Access-Control-Allow-Headers %q lacks the requested x-foo", r.header.Get("Access-Control-Allow-Headers"))
		}
	}
}

// --- EventSource -----------------------------------------------------------

// sseStream reads an EventSource response line by line.
type sseStream struct {
	lines  chan string
	cancel context.CancelFunc
}

func (s *server) openEventSource(t *testing.T, cid string) (*http.Response, *sseStream) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/"+cid, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Pragma", "no-cache")
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	type result struct {
		res *http.Response
		err error
	}
	got := make(chan result, 1)
	go func() {
		res, err := hc.Do(req)
		got <- result{res, err}
	}()
	var res *http.Response
	select {
	case r := <-got:
		if r.err != nil {
			cancel()
			t.Fatalf("EventSource GET: %v", r.err)
		}
		res = r.res
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("EventSource GET: no response headers within 5s")
	}
	st := &sseStream{lines: make(chan string, 256), cancel: cancel}
	go func() {
		defer close(st.lines)
		rd := bufio.NewReader(res.Body)
		for {
			line, err := rd.ReadString('\n')
			if line != "" {
				st.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
	})
	return res, st
}

// nextData returns the payload of the next "data:" line within d.
func (st *sseStream) nextData(t *testing.T, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case line, ok := <-st.lines:
			if !ok {
				t.Fatal("EventSource stream closed")
			}
			line = strings.TrimRight(line, "\r\n")
			if strings.HasPrefix(line, "data:") {
				return strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			}
		case <-deadline:
			t.Fatalf("no data event within %v", d)
		}
	}
}

func TestEventSource(t *testing.T) {
	t.Parallel()
	const T = 3
	s := startServer(t, T)
	cid := s.handshake(t)
	s.subscribe(t, cid, "/es")

	res, st := s.openEventSource(t, cid)
	if res.StatusCode != 200 {
		t.Fatalf("EventSource status %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	select {
	case first, ok := <-st.lines:
		if !ok || !strings.HasPrefix(first, "retry: 5000") {
			t.Errorf("first line %q, want retry: 5000", first)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no retry line within 3s")
	}

	// The eventsource connect is answered at once with interval T*1000, timeout 0 (A3).
	r := s.postJSON(t, fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"eventsource","id":"c1"}`, cid))
	if r.took > time.Second {
		t.Errorf("eventsource connect took %v, want immediate", r.took)
	}
	rs := mustReplies(t, r)
	c := byID(rs, "c1")
	assertBool(t, c, "successful", true)
	assertJSON(t, c.Get("advice").Raw, fmt.Sprintf(`{"reconnect":"retry","interval":%d,"timeout":0}`, T*1000))

	s.publish(t, "/es", `{"n":2}`)
	payload := st.nextData(t, 3*time.Second)
	msgs := mustArray(t, []byte(payload))
	if len(msgs) != 1 {
		t.Fatalf("data event %q, want one message", payload)
	}
	assertJSON(t, msgs[0].Raw, `{"channel":"/es","data":{"n":2}}`)
}

func TestEventSourceUnknownClient(t *testing.T) {
	t.Parallel()
	if !isBayou() {
		// faye binds a stream to any id without checking it (I8).
		t.Skip("Bayou only: faye accepts EventSource streams for unknown clientIds (I8)")
	}
	s := startServer(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/nosuchclient0000000000000000000", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// Deliberate Bayou difference (I8): unknown ids are refused.
	if res.StatusCode == 200 {
		t.Errorf("EventSource for an unknown clientId got 200, want refusal")
	}
}

// --- disconnect and GC -------------------------------------------------------

func TestDisconnect(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cid := s.handshake(t)
	rs := s.send(t, fmt.Sprintf(`{"channel":"/meta/disconnect","clientId":%q,"id":"d1"}`, cid))
	if len(rs) != 1 {
		t.Fatalf("want 1 reply, got %v", rs)
	}
	assertJSON(t, rs[0].Raw, fmt.Sprintf(`{"id":"d1","clientId":%q,"channel":"/meta/disconnect","successful":true}`, cid))

	rs = s.send(t, fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","id":"c1"}`, cid))
	assertFailure(t, rs[0], "/meta/connect", "401:"+cid+":Unknown client")
	assertStr(t, rs[0], "advice.reconnect", "handshake")

	rs = s.send(t, fmt.Sprintf(`{"channel":"/meta/disconnect","clientId":%q,"id":"d2"}`, cid))
	assertFailure(t, rs[0], "/meta/disconnect", "401:"+cid+":Unknown client")
	assertAbsent(t, rs[0], "clientId")
	assertStr(t, rs[0], "id", "d2")

	rs = s.send(t, `{"channel":"/meta/disconnect","id":"d3"}`)
	assertFailure(t, rs[0], "/meta/disconnect", "402:clientId:Missing required parameter")
}

func TestDisconnectAnswersHeldConnect(t *testing.T) {
	t.Parallel()
	s := startServer(t, 5)
	cid := s.handshake(t)
	done := make(chan struct{})
	var held *httpResp
	var heldErr error
	go func() {
		defer close(done)
		held, heldErr = s.doErr(context.Background(), http.MethodPost, mount, map[string]string{"Content-Type": "application/json"},
			fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","id":"c1"}`, cid))
	}()
	// The connect is held: not answered for 300ms (a bounded wait for
	// something that must not happen).
	select {
	case <-done:
		t.Fatalf("connect answered before the disconnect: %v %v", held, heldErr)
	case <-time.After(300 * time.Millisecond):
	}
	s.send(t, fmt.Sprintf(`{"channel":"/meta/disconnect","clientId":%q,"id":"d1"}`, cid))
	start := time.Now()
	<-done
	if heldErr != nil {
		t.Fatal(heldErr)
	}
	// S8: disconnect answers the held connect (faye does so at once).
	if d := time.Since(start); d > time.Second {
		t.Errorf("held connect answered %v after the disconnect", d)
	}
	if c := byID(mustReplies(t, held), "c1"); !c.Exists() {
		t.Errorf("held connect reply missing: %s", held.body)
	}
}

func TestSessionGC(t *testing.T) {
	t.Parallel()
	const T = 1
	s := startServer(t, T)
	alive := s.handshake(t)
	idle := s.handshake(t)
	start := time.Now()

	// Still alive at 1.5T (subscribe does not count as a ping in faye, A8).
	// The sleeps here are the subject: the session's lifetime in time,
	// which no request may observe without extending it.
	time.Sleep(1500 * time.Millisecond)
	rs := s.send(t, fmt.Sprintf(`{"channel":"/meta/subscribe","clientId":%q,"subscription":"/gc","id":"s1"}`, alive))
	assertBool(t, rs[0], "successful", true)

	// Gone by 4T.
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	rs = s.send(t, fmt.Sprintf(`{"channel":"/meta/connect","clientId":%q,"connectionType":"long-polling","advice":{"timeout":0},"id":"c1"}`, idle))
	assertFailure(t, rs[0], "/meta/connect", "401:"+idle+":Unknown client")
	assertStr(t, rs[0], "advice.reconnect", "handshake")
}
