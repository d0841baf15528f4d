package jwtauth

import (
	"context"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// A message without a request or a session is not the server's own
// publish: only Message.FromServer says so.
func TestOnlyServerPublishesPass(t *testing.T) {
	ts, a := newServer(t, Config{})
	m := &bayeux.Message{Channel: "/users/u1/x", Data: "1"}
	a.Incoming(context.Background(), m)
	if m.Error != ErrChannelNotAllowed {
		t.Fatalf("a publish with no request and no session passed: error %q", m.Error)
	}
	if err := ts.Server.Publish(context.Background(), "/users/u1/x", 1); err != nil {
		t.Fatalf("server publish: %v", err)
	}
}
