package bayeux

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestAudienceIncludes(t *testing.T) {
	ana := &Identity{User: "ana", Roles: []string{"staff"}}
	noName := &Identity{Roles: []string{""}}
	tests := []struct {
		name     string
		audience Audience
		clientID string
		identity *Identity
		want     bool
	}{
		{"user named", Audience{Users: []string{"bob", "ana"}}, "c1", ana, true},
		{"user not named", Audience{Users: []string{"bob"}}, "c1", ana, false},
		{"role held", Audience{Roles: []string{"admin", "staff"}}, "c1", ana, true},
		{"role not held", Audience{Roles: []string{"admin"}}, "c1", ana, false},
		{"client named", Audience{ClientIDs: []string{"c1"}}, "c1", ana, true},
		{"empty audience", Audience{}, "c1", ana, false},
		{"anonymous, empty user named", Audience{Users: []string{""}}, "c1", nil, false},
		{"anonymous, users named", Audience{Users: []string{"ana"}}, "c1", nil, false},
		{"anonymous, empty role named", Audience{Roles: []string{""}}, "c1", nil, false},
		{"anonymous, client named", Audience{ClientIDs: []string{"c1"}}, "c1", nil, true},
		{"anonymous, other client named", Audience{ClientIDs: []string{"c2"}}, "c1", nil, false},
		{"empty user, empty user named", Audience{Users: []string{""}}, "c1", noName, false},
		{"empty role, empty role named", Audience{Roles: []string{""}}, "c1", noName, false},
		{"empty clientId named", Audience{ClientIDs: []string{""}}, "", nil, false},
	}
	// Long lists are matched through maps: the answers must not change.
	pad := func(list []string) []string {
		list = slices.Clone(list)
		for i := range nameSetMap {
			list = append(list, fmt.Sprintf("filler-%d", i))
		}
		return list
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newAudienceSet(&tt.audience).includes(tt.clientID, tt.identity); got != tt.want {
				t.Errorf("short sets: includes = %v, want %v", got, tt.want)
			}
			long := Audience{Users: pad(tt.audience.Users), Roles: pad(tt.audience.Roles), ClientIDs: pad(tt.audience.ClientIDs)}
			if got := newAudienceSet(&long).includes(tt.clientID, tt.identity); got != tt.want {
				t.Errorf("long sets: includes = %v, want %v", got, tt.want)
			}
			sess := &Session{id: tt.clientID}
			sess.SetIdentity(tt.identity)
			if got := tt.audience.Includes(sess); got != tt.want {
				t.Errorf("Includes = %v, want %v", got, tt.want)
			}
		})
	}
	if (&Audience{Users: []string{""}}).Includes(nil) {
		t.Error("a nil session is in the audience")
	}
}

// received connects id (without waiting) until a message with data
// "fence" arrives, and returns the data of the messages received on
// channel, fence included.
func (ts *testServer) received(t *testing.T, id, channel string) []string {
	t.Helper()
	return bayeuxtest.UntilFence(t, 5*time.Second, func() gjson.Result {
		return ts.post(t, connectBody(id, `,"advice":{"timeout":0}`))
	}, channel)
}

// TestPublishToAcrossNodes: on three nodes, each with ana, bob (staff)
// and an anonymous session, PublishTo reaches the sessions of its audience
// on every node and nobody else; PublishLocal reaches only the sessions of
// its node that its filter accepts.
func TestPublishToAcrossNodes(t *testing.T) {
	nodes := newTestCluster(t, 3, Config{Timeout: 2 * time.Second})
	type member struct {
		node int
		id   string
		who  string
	}
	var members []member
	for i, n := range nodes {
		for _, who := range []string{"ana", "bob", "anon"} {
			id := n.handshake(t)
			switch who {
			case "ana":
				n.Session(id).SetIdentity(&Identity{User: "ana"})
			case "bob":
				n.Session(id).SetIdentity(&Identity{User: "bob", Roles: []string{"staff"}})
			}
			n.subscribe(t, id, "/n")
			members = append(members, member{i, id, who})
		}
	}
	anon2 := members[8].id
	ctx := context.Background()
	steps := []func() error{
		func() error { return nodes[1].PublishTo(ctx, "/n", "users", Audience{Users: []string{"ana"}}) },
		func() error { return nodes[2].PublishTo(ctx, "/n", "roles", Audience{Roles: []string{"staff"}}) },
		func() error { return nodes[0].PublishTo(ctx, "/n", "ids", Audience{ClientIDs: []string{anon2}}) },
		func() error { return nodes[0].PublishTo(ctx, "/n", "empty user", Audience{Users: []string{""}}) },
		func() error {
			return nodes[0].PublishLocal(ctx, "/n", "local", func(s *Session) bool { return s.Identity() == nil })
		},
		func() error { return nodes[1].Publish(ctx, "/n", "fence") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range members {
		var want []string
		switch {
		case m.who == "ana":
			want = []string{"users"}
		case m.who == "bob":
			want = []string{"roles"}
		case m.id == anon2:
			want = []string{"ids"}
		case m.node == 0:
			want = []string{"local"}
		}
		want = append(want, "fence")
		// The publishes came from several nodes: only the fence, last
		// from every publisher's view, is ordered after them all.
		got := nodes[m.node].received(t, m.id, "/n")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s on node %d received %q, want %q", m.who, m.node, got, want)
		}
	}
}

// TestAudiencePublishNotKept: a PublishTo on a channel with history is
// delivered but not kept, so that a replay does not show it to everyone.
func TestAudiencePublishNotKept(t *testing.T) {
	ts := newTestServer(t, Config{History: []HistoryRule{{Pattern: "/h/**", Size: 10}}})
	id := ts.handshake(t)
	ts.Session(id).SetIdentity(&Identity{User: "ana"})
	ts.subscribe(t, id, "/h/x")
	ctx := context.Background()
	if err := ts.PublishTo(ctx, "/h/x", "secret", Audience{Users: []string{"ana"}}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Publish(ctx, "/h/x", "fence"); err != nil {
		t.Fatal(err)
	}
	if got := ts.received(t, id, "/h/x"); !slices.Equal(got, []string{"secret", "fence"}) {
		t.Fatalf("ana received %q", got)
	}
	pubs, _, err := ts.History(ctx, "/h/x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 1 || !strings.Contains(string(pubs[0].Message), "fence") {
		t.Fatalf("history holds %d publications, want the fence only", len(pubs))
	}
}

func TestLocalSessionsAndSessionsOf(t *testing.T) {
	t.Run("one node", func(t *testing.T) {
		ts := newTestServer(t, Config{})
		ana, _ := ts.handshake(t), ts.handshake(t)
		ts.Session(ana).SetIdentity(&Identity{User: "ana"})
		if all := ts.LocalSessions(nil); len(all) != 2 {
			t.Fatalf("LocalSessions(nil): %d sessions, want 2", len(all))
		}
		anon := ts.LocalSessions(func(s *Session) bool { return s.Identity() == nil })
		if len(anon) != 1 || anon[0].ID() == ana {
			t.Fatalf("anonymous sessions: %v", anon)
		}
		got, err := ts.SessionsOf(t.Context(), "ana")
		if err != nil || !slices.Equal(got, []SessionInfo{{ID: ana, User: "ana"}}) {
			t.Fatalf("SessionsOf(ana) = %v, %v", got, err)
		}
		if got, err := ts.SessionsOf(t.Context(), ""); err != nil || len(got) != 0 {
			t.Fatalf(`SessionsOf("") = %v, %v; want none: anonymous sessions have no user`, got, err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		nodes := newTestCluster(t, 3, Config{})
		var want []SessionInfo
		for i, n := range nodes {
			n.handshake(t) // anonymous
			bob := n.handshake(t)
			n.Session(bob).SetIdentity(&Identity{User: "bob"})
			if i != 1 {
				ana := n.handshake(t)
				n.Session(ana).SetIdentity(&Identity{User: "ana"})
				want = append(want, SessionInfo{ID: ana, User: "ana", Node: fmt.Sprintf("node%d", i)})
			}
		}
		for _, n := range nodes {
			got, err := n.SessionsOf(t.Context(), "ana")
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("SessionsOf(ana) = %v, %v; want %v", got, err, want)
			}
		}
		if got, err := nodes[0].SessionsOf(t.Context(), "bob"); err != nil || len(got) != 3 {
			t.Fatalf("SessionsOf(bob) = %v, %v; want 3 sessions", got, err)
		}
		if got, err := nodes[0].SessionsOf(t.Context(), "nobody"); err != nil || len(got) != 0 {
			t.Fatalf("SessionsOf(nobody) = %v, %v", got, err)
		}
	})
}
