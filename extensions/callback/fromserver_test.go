package callback

import (
	"context"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// A message without a request or a session is not the server's own
// publish: only Message.FromServer says so.
func TestOnlyServerPublishesPass(t *testing.T) {
	be := newBackend(t, rules)
	ts, c := newServer(t, Config{URL: be.URL})
	m := &bayeux.Message{Channel: "/private", Data: "1"}
	c.Incoming(context.Background(), m)
	if m.Error != ErrForbidden || be.count("publish") != 1 {
		t.Fatalf("a publish with no request and no session was not checked: error %q", m.Error)
	}
	if err := ts.Server.Publish(context.Background(), "/private", 1); err != nil {
		t.Fatalf("server publish: %v", err)
	}
	if be.count("publish") != 1 {
		t.Fatal("the server's own publish was sent to the back end")
	}
}
