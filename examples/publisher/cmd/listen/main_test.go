package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestListenPrintsMessages(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	srv, err := bayeux.New(bayeux.Config{Timeout: 2 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	url := bayeuxtest.Serve(t, srv, srv.Shutdown).URL + "/bayeux"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var stdout, stderr bayeuxtest.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-url", url, "-count", "2", "/chat/**"}, &stdout, &stderr) }()

	pub, err := client.Dial(ctx, url, client.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	// Publish until the listener has subscribed and exits after two
	// messages.
	for i := 0; ; i++ {
		if _, err := pub.Publish(ctx, "/chat/room-1", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], `/chat/room-1 {"n":`) {
				t.Errorf("stdout %q", stdout.String())
			}
			if !strings.Contains(stderr.String(), "connected (clientId") {
				t.Errorf("stderr %q", stderr.String())
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("listen did not exit")
		}
	}
}
