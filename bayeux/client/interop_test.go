package client_test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// fayeReport is a line printed by testdata/faye-subscriber.mjs.
type fayeReport struct {
	Event      string `json:"event"`
	Transport  string `json:"transport"`
	Error      string `json:"error"`
	Received   int    `json:"received"`
	Duplicates int    `json:"duplicates"`
	OutOfOrder int    `json:"outOfOrder"`
	Missing    int    `json:"missing"`
}

// TestFayeSubscriber10k publishes 10,000 messages from this client, with
// many in flight, to a faye 1.4.3 Node subscriber through a live Bayou,
// and checks that the subscriber got every one, once, in order.
func TestFayeSubscriber10k(t *testing.T) {
	t.Parallel()
	requireNode(t)
	srv := startProcess(t, "bayou", 5)
	const n = 10000
	const window = 256 // publishes in flight
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			channel := "/seq/" + string(tr)
			cmd := exec.Command("node", "testdata/faye-subscriber.mjs", "--url", srv.url, "--channel", channel,
				"--count", "10000", "--timeout", "40", "--transport", string(tr))
			setPdeathsig(cmd)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bayeuxtest.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			reports := make(chan fayeReport, 4)
			go func() {
				defer close(reports)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					var r fayeReport
					if json.Unmarshal(sc.Bytes(), &r) == nil {
						reports <- r
					}
				}
			}()
			next := func(d time.Duration) fayeReport {
				t.Helper()
				select {
				case r, ok := <-reports:
					if !ok {
						t.Fatalf("faye subscriber exited: %s", stderr.String())
					}
					return r
				case <-time.After(d):
					t.Fatalf("no report from the faye subscriber within %v: %s", d, stderr.String())
				}
				return fayeReport{}
			}
			if r := next(15 * time.Second); r.Event != "ready" {
				t.Fatalf("faye subscriber: %+v", r)
			}

			c := dial(t, srv.url, tr)
			ctx := ctxTimeout(t, 45*time.Second)
			start := time.Now()
			sem := make(chan struct{}, window)
			failed := make(chan error, n)
			for i := range n {
				sem <- struct{}{}
				res := c.PublishAsync(ctx, channel, map[string]int{"seq": i})
				go func() {
					if r := <-res; r.Err != nil {
						failed <- r.Err
					}
					<-sem
				}()
			}
			for range window {
				sem <- struct{}{}
			}
			published := time.Since(start)
			close(failed)
			for err := range failed {
				t.Fatalf("publish failed: %v", err)
			}

			r := next(45 * time.Second)
			t.Logf("%d messages published (acknowledged) in %v over %s; faye subscriber done after %v over %s: %+v",
				n, published.Round(time.Millisecond), c.Transport(), time.Since(start).Round(time.Millisecond), r.Transport, r)
			if r.Event != "done" || r.Received != n || r.Duplicates != 0 || r.OutOfOrder != 0 || r.Missing != 0 {
				t.Errorf("faye subscriber report %+v: want all %d messages once and in order", r, n)
			}
			if r.Transport != string(tr) {
				t.Errorf("faye subscriber used %q, want %q", r.Transport, tr)
			}
			if c.Transport() != client.TransportWebSocket && c.Transport() != client.TransportLongPolling {
				t.Errorf("publisher transport %q", c.Transport())
			}
		})
	}
}
