package presence_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/internal/testserver"
	"github.com/bayou-pubsub/bayou/extensions/presence"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// nick sets the identity's user from the handshake's ext.nick.
type nick struct{ bayeux.NopExtension }

func (nick) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel == "/meta/handshake" && m.Session != nil {
		if n := m.ExtString("nick"); n != "" {
			m.Session.SetIdentity(&bayeux.Identity{User: n})
		}
	}
}

func newServer(t *testing.T, cfg presence.Config) (*testserver.Server, *presence.Presence) {
	t.Helper()
	p, err := presence.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{nick{}, p}}), p
}

// events collects the presence events that client id receives, until the
// one cond accepts, and returns them as "action:user" strings ("members"
// events list their users: "members:ana,bob").
func events(t *testing.T, ts *testserver.Server, id string, cond func(got []string) bool) []string {
	t.Helper()
	var got []string
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		for _, m := range ts.Deliveries(t, id) {
			if !strings.HasPrefix(m.Get("channel").String(), "/presence/") {
				continue
			}
			got = append(got, describe(m.Get("data")))
		}
		return cond(got)
	}, "presence events")
	return got
}

func describe(d gjson.Result) string {
	action := d.Get("action").String()
	if action == "members" {
		var users []string
		for _, m := range d.Get("members").Array() {
			users = append(users, m.Get("user").String())
		}
		return "members:" + strings.Join(users, ",")
	}
	return action + ":" + d.Get("member.user").String()
}

func has(want ...string) func([]string) bool {
	return func(got []string) bool {
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false
			}
		}
		return true
	}
}

func TestJoinLeaveAndMembers(t *testing.T) {
	ts, p := newServer(t, presence.Config{
		Channels: []string{"/chat/*"},
		Info:     func(s *bayeux.Session, _ string) any { return map[string]string{"color": "blue"} },
	})
	ana := ts.Connect(t, testserver.Ext("nick", "ana"))
	ts.Subscribe(t, ana, "/chat/lobby", "")
	// Once ana's join is recorded (and published), a new watcher's first
	// event is the members (an earlier watcher could get the join first).
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		ms, err := p.Members(context.Background(), "/chat/lobby")
		return err == nil && len(ms) == 1
	}, "ana recorded")

	// A watcher is sent the members at once, then joins and leaves.
	watcher := ts.Connect(t, "")
	if r := ts.Subscribe(t, watcher, "/presence/chat/lobby", ""); !r.Get("successful").Bool() {
		t.Fatalf("companion subscribe: %s", r.Raw)
	}
	if got := events(t, ts, watcher, has("members:ana")); got[0] != "members:ana" {
		t.Fatalf("first event %q, want the members", got)
	}

	bob := ts.Connect(t, testserver.Ext("nick", "bob"))
	ts.Subscribe(t, bob, "/chat/lobby", "")
	events(t, ts, watcher, has("join:bob"))
	ts.Post(t, `{"channel":"/meta/unsubscribe","clientId":"`+ana+`","subscription":"/chat/lobby"}`)
	events(t, ts, watcher, has("leave:ana"))
	ts.Post(t, `{"channel":"/meta/disconnect","clientId":"`+bob+`"}`)
	events(t, ts, watcher, has("leave:bob"))

	// Members, and the info the configuration exposes.
	carol := ts.Connect(t, testserver.Ext("nick", "carol"))
	ts.Subscribe(t, carol, "/chat/lobby", "")
	ts.Subscribe(t, carol, "/chat/*", "")  // a pattern: no presence
	ts.Subscribe(t, carol, "/other/x", "") // not tracked
	var members []presence.Member
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		var err error
		members, err = p.Members(context.Background(), "/chat/lobby")
		return err == nil && len(members) == 1
	}, "carol alone in the lobby")
	if m := members[0]; m.ClientID != carol || m.User != "carol" || string(m.Info) != `{"color":"blue"}` {
		t.Fatalf("member %+v", m)
	}
	for _, ch := range []string{"/chat/*", "/other/x"} {
		if got, _ := p.Members(context.Background(), ch); len(got) != 0 {
			t.Fatalf("members of %s: %+v", ch, got)
		}
	}
}

func TestService(t *testing.T) {
	ts, _ := newServer(t, presence.Config{Channels: []string{"/chat/*"}})
	ana := ts.Connect(t, testserver.Ext("nick", "ana"))
	ts.Subscribe(t, ana, "/chat/lobby", "")
	asker := ts.Connect(t, "")
	tests := []struct {
		data    string
		ok      bool
		members string // users, comma-separated
	}{
		{`{"channel":"/chat/lobby"}`, true, "ana"},
		{`{"channel":"/chat/empty"}`, true, ""},
		{`{"channel":"/other"}`, false, ""},
		{`"nonsense"`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			var r gjson.Result
			bayeuxtest.Eventually(t, 5*time.Second, func() bool {
				r = serviceAnswer(t, ts, asker, tt.data)
				return !tt.ok || r.Get("data.members.#").Int() == int64(len(strings.Split(tt.members, ","))) || tt.members == ""
			}, "the answer")
			if r.Get("successful").Bool() != tt.ok || r.Get("id").String() != "q" {
				t.Fatalf("answer %s", r.Raw)
			}
			if !tt.ok {
				return
			}
			var users []string
			for _, m := range r.Get("data.members").Array() {
				users = append(users, m.Get("user").String())
			}
			if got := strings.Join(users, ","); got != tt.members || !r.Get("data.members").IsArray() {
				t.Fatalf("members %s, want %q", r.Get("data").Raw, tt.members)
			}
		})
	}
}

func TestClientsCannotFakePresence(t *testing.T) {
	ts, _ := newServer(t, presence.Config{Channels: []string{"/chat/*"}})
	id := ts.Connect(t, "")
	for _, ch := range []string{"/presence/chat/lobby", "/presence"} {
		r := ts.Publish(t, id, ch, `{"action":"join","member":{"user":"admin"}}`, "")
		if r.Get("successful").Bool() || r.Get("error").String() != bayeux.ErrorForbidden(ch) {
			t.Fatalf("publish on %s: %s", ch, r.Raw)
		}
	}
}

func TestAllow(t *testing.T) {
	ts, _ := newServer(t, presence.Config{
		Channels: []string{"/chat/*"},
		Allow: func(s *bayeux.Session, ch string) bool {
			return s.Identity() != nil && ch == "/chat/lobby"
		},
	})
	anon := ts.Connect(t, "")
	ana := ts.Connect(t, testserver.Ext("nick", "ana"))
	tests := []struct {
		who, channel string
		ok           bool
	}{
		{anon, "/presence/chat/lobby", false},
		{ana, "/presence/chat/lobby", true},
		{ana, "/presence/chat/secret", false},
	}
	for _, tt := range tests {
		r := ts.Subscribe(t, tt.who, tt.channel, "")
		if r.Get("successful").Bool() != tt.ok {
			t.Errorf("subscribe %s: %s", tt.channel, r.Raw)
		}
		q := serviceAnswer(t, ts, tt.who, `{"channel":"`+strings.TrimPrefix(tt.channel, "/presence")+`"}`)
		if q.Get("successful").Bool() != tt.ok {
			t.Errorf("service for %s: %s", tt.channel, q.Raw)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  presence.Config
		err  string
	}{
		{"no channels", presence.Config{}, "empty"},
		{"meta", presence.Config{Channels: []string{"/meta/*"}}, "broadcast"},
		{"reaches the companions", presence.Config{Channels: []string{"/**"}}, "companion"},
		{"bad prefix", presence.Config{Channels: []string{"/a/*"}, Prefix: "/service/p"}, "prefix"},
		{"bad service", presence.Config{Channels: []string{"/a/*"}, Service: "/p"}, "service"},
		{"good", presence.Config{Channels: []string{"/a/*", "/b"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := presence.New(tt.cfg)
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err %v, want one with %q", err, tt.err)
			}
		})
	}
}

// serviceAnswer asks the presence service with data and returns its answer:
// the message of the reply array that carries data.
func serviceAnswer(t *testing.T, ts *testserver.Server, id, data string) gjson.Result {
	t.Helper()
	for _, m := range ts.Post(t, `{"clientId":"`+id+`","channel":"/service/presence","id":"q","data":`+data+`}`).Array() {
		if m.Get("data").Exists() {
			return m
		}
	}
	t.Fatal("no answer")
	return gjson.Result{}
}

// clusterEngine is an engine that spans nodes but keeps no presence.
type clusterEngine struct{ bayeux.Engine }

func (clusterEngine) NodeID() string                                            { return "n1" }
func (clusterEngine) ClaimSession(context.Context, string, time.Duration) error { return nil }
func (clusterEngine) ReleaseSession(context.Context, string) error              { return nil }
func (clusterEngine) SessionOwner(context.Context, string) (string, error)      { return "n1", nil }
func (clusterEngine) Send(context.Context, string, []byte) error                { return nil }
func (clusterEngine) HandleNodeMessages(func([]byte))                           {}
func (clusterEngine) ReportCounts(context.Context, int, map[string]int) error   { return nil }
func (clusterEngine) Counts(context.Context) (int, map[string]int, error)       { return 0, nil, nil }

func TestClusterNeedsAStore(t *testing.T) {
	p, err := presence.New(presence.Config{Channels: []string{"/a/*"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bayeux.New(bayeux.Config{Engine: clusterEngine{bayeux.NewMemoryEngine()}, Extensions: []bayeux.Extension{p}})
	if err == nil || !strings.Contains(err.Error(), "presence.Store") {
		t.Fatalf("a cluster without a presence store: %v", err)
	}
}
