package tokenauth

import (
	"context"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/internal/testserver"
)

// A message without a request or a session is not the server's own
// publish: only Message.FromServer says so.
func TestOnlyServerPublishesPass(t *testing.T) {
	a, err := New(Config{Tokens: map[string]string{"t-ana": "ana"}, Protect: []string{"/private/**"}})
	if err != nil {
		t.Fatal(err)
	}
	m := &bayeux.Message{Channel: "/private/x", Data: "1"}
	a.Incoming(context.Background(), m)
	if m.Error != ErrForbidden {
		t.Fatalf("a publish with no request and no session passed: error %q", m.Error)
	}
	ts := testserver.New(t, bayeux.Config{Extensions: []bayeux.Extension{a}})
	if err := ts.Server.Publish(context.Background(), "/private/x", 1); err != nil {
		t.Fatalf("server publish: %v", err)
	}
}
