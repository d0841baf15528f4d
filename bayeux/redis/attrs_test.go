package redis

import (
	"context"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// gradeExt keeps the handshake's ext.grade on the session (Session.Set) and
// allows subscribes to /graded/<grade> only, reading it back (Get).
type gradeExt struct{ bayeux.NopExtension }

func (gradeExt) Incoming(_ context.Context, m *bayeux.Message) {
	switch {
	case m.Channel == channels.MetaHandshake && m.Session != nil:
		m.Session.Set("grade", m.ExtString("grade"))
	case m.Channel == channels.MetaSubscribe && m.Session != nil:
		g, _ := m.Session.Get("grade")
		for _, ch := range m.Subscriptions() {
			if ch != "/graded/"+g.(string) {
				m.RejectChannel(ch, "")
			}
		}
	}
}

// TestSessionAttributesOnEveryNode: the attributes an extension keeps on a
// session are seen by the hooks of its requests whichever node they reach,
// since every request is handled by the session's owner.
func TestSessionAttributesOnEveryNode(t *testing.T) {
	rs := startRedis(t)
	nodes := startCluster(t, rs, 3, 2*time.Second, func(_ int, c *bayeux.Config) {
		c.Extensions = []bayeux.Extension{gradeExt{}}
	})
	r := nodes[0].mustPost(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"grade":"gold"}}`)
	id := r.Get("0.clientId").String()
	for i, n := range nodes {
		for _, tt := range []struct {
			channel string
			ok      bool
		}{{"/graded/gold", true}, {"/graded/silver", false}} {
			got := n.mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"`+tt.channel+`"}`)
			if got.Get("0.successful").Bool() != tt.ok {
				t.Errorf("node %d, subscribe %s: %s", i, tt.channel, got.Raw)
			}
		}
	}
}
