package main

import (
	"context"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// command is the command run in process by a test.
type command struct {
	stdout, stderr *bayeuxtest.Buffer
	hup            chan os.Signal
	stop           context.CancelFunc // starts the drain
	done           chan error         // run's result
}

// startCommand runs the command with args (on free ports: pass --addr
// and --api-addr 127.0.0.1:0) until the end of the test, which stops it
// and checks that it returned without error.
func startCommand(t *testing.T, args ...string) *command {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &command{stdout: &bayeuxtest.Buffer{}, stderr: &bayeuxtest.Buffer{}, hup: make(chan os.Signal, 1), stop: cancel,
		done: make(chan error, 1)}
	go func() { c.done <- run(ctx, args, noEnv, c.stdout, c.stderr, c.hup) }()
	t.Cleanup(func() {
		cancel()
		if err := c.wait(t); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return c
}

// wait returns run's result, once it returned.
func (c *command) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // for a later wait
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
		return nil
	}
}

// url returns the URL printed for the listener what ("Bayeux", "the HTTP
// API").
func (c *command) url(t *testing.T, what string) string {
	t.Helper()
	re := regexp.MustCompile(`serving ` + what + ` at (https?://\S+)`)
	var url string
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		if m := re.FindStringSubmatch(c.stdout.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	}, "the URL of "+what+" printed; stderr: "+c.stderr.String())
	return url
}
