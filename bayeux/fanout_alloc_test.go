//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts are only meaningful without it.

package bayeux

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// TestFanoutAllocatesNothingPerRecipient: delivering a publication to 500
// subscribed sessions allocates nothing in the steady state.
func TestFanoutAllocatesNothingPerRecipient(t *testing.T) {
	srv, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxQueueBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	sessions := make([]*Session, 500)
	for i := range sessions {
		sessions[i] = srv.allocSession()
		srv.register(sessions[i])
		if err := srv.subscribeSession(context.Background(), sessions[i], "/a/*"); err != nil {
			t.Fatal(err)
		}
	}
	p := &Publication{Channel: "/a/b", Message: []byte(`{"channel":"/a/b","data":1}`)}
	allocs := testing.AllocsPerRun(200, func() {
		srv.fanout(p, nil)
		for _, s := range sessions {
			s.drain(discard)
		}
	})
	if allocs != 0 {
		t.Fatalf("fan-out to 500 sessions: %v allocations per publish, want 0", allocs)
	}
}
