// Command listen subscribes to a Bayeux channel or pattern and prints the
// messages that arrive, one line each, until interrupted.
//
//	go run ./examples/publisher/cmd/listen '/chat/**'
//
// A line is the channel and the message's JSON data, or with -json the
// whole message as JSON. See examples/publisher/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/channels"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "listen:", err)
		}
		os.Exit(1)
	}
}

// run prints the messages of the pattern the command line names to
// stdout until ctx ends (or -count messages have arrived).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8000/bayeux", "Bayeux endpoint")
	transport := fs.String("transport", "", `transport: "websocket" or "long-polling" (default: websocket when the server offers it)`)
	asJSON := fs.Bool("json", false, "print whole messages as JSON")
	count := fs.Int("count", 0, "exit after this many messages (0: run until interrupted)")
	token := fs.String("token", "", "add ext.token to the subscription (for servers that require one)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: listen [flags] PATTERN")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return flag.ErrHelp
	}
	pattern := fs.Arg(0)

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := []client.Option{
		client.WithLogger(logger),
		client.WithStateFunc(func(sc client.StateChange) {
			switch sc.State {
			case client.StateConnected:
				fmt.Fprintf(stderr, "connected (clientId %s, %s)\n", sc.ClientID, sc.Transport)
			case client.StateDisconnected:
				fmt.Fprintf(stderr, "disconnected: %v; reconnecting\n", sc.Err)
			}
		}),
	}
	if *transport != "" {
		opts = append(opts, client.WithTransports(*transport))
	}
	if *token != "" {
		opts = append(opts, client.WithExtension(client.Extension{
			Outgoing: func(m *client.Message) {
				if m.Channel == channels.MetaSubscribe {
					m.SetExt("token", *token)
				}
			},
		}))
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.Dial(dialCtx, *url, opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	received := 0
	sub, err := c.Subscribe(ctx, pattern, func(m *client.Message) {
		if *asJSON {
			b, _ := json.Marshal(m)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintf(stdout, "%s %s\n", m.Channel, m.Data)
		}
		received++
		if *count > 0 && received >= *count {
			stop()
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "listening on %s\n", pattern)
	select {
	case <-ctx.Done():
	case <-sub.Done():
		return sub.Err()
	}
	return nil
}
