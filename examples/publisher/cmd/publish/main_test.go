package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

func TestPublishLines(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	srv, err := bayeux.New(bayeux.Config{Timeout: 2 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	url := bayeuxtest.Serve(t, srv, srv.Shutdown).URL + "/bayeux"

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tests := []struct {
		name  string
		args  []string
		input string
		want  []string
	}{
		{"strings over websocket", []string{"-transport", "websocket"}, "hello\n\nworld\n", []string{`"hello"`, `"world"`}},
		{"json over long-polling", []string{"-transport", "long-polling", "-json"}, "{\"n\":1}\n[2]\n", []string{`{"n":1}`, `[2]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.Dial(ctx, url, client.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got := make(chan string, 10)
			if _, err := c.Subscribe(ctx, "/lines", func(m *client.Message) { got <- string(m.Data) }); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			args := append([]string{"-url", url}, append(tc.args, "/lines")...)
			if err := run(ctx, args, strings.NewReader(tc.input), &stderr); err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			for _, want := range tc.want {
				select {
				case g := <-got:
					if g != want {
						t.Errorf("received %s, want %s", g, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s not received", want)
				}
			}
			if !strings.Contains(stderr.String(), "published 2 messages to /lines") {
				t.Errorf("stderr: %s", stderr.String())
			}
		})
	}
	var stderr bytes.Buffer
	if err := run(ctx, []string{"-url", url, "-json", "/lines"}, strings.NewReader("not json\n"), &stderr); err == nil {
		t.Error("invalid JSON line accepted with -json")
	}
	if err := run(ctx, []string{"-url", url, "/meta/x"}, strings.NewReader("x\n"), &stderr); err == nil ||
		!strings.Contains(err.Error(), "403") {
		t.Errorf("publish to /meta/x: %v, want a 403", err)
	}
}
