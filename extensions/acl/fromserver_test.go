package acl

import (
	"context"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/internal/testserver"
)

// A message without a request or a session is not the server's own
// publish: only Message.FromServer says so.
func TestOnlyServerPublishesPass(t *testing.T) {
	a := newACL(t, Config{Rules: testRules})
	m := &bayeux.Message{Channel: "/admin/x", Data: "1"}
	a.Incoming(context.Background(), m)
	if m.Error != ErrAuthRequired {
		t.Fatalf("a publish with no request and no session passed: error %q", m.Error)
	}
	ts := testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}})
	if err := ts.Server.Publish(context.Background(), "/admin/x", 1); err != nil {
		t.Fatalf("server publish: %v", err)
	}
}
