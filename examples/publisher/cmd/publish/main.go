// Command publish publishes the lines of its standard input to a Bayeux
// channel, one message per line, and exits when the input ends and every
// message has been acknowledged.
//
//	printf 'hello\nworld\n' | go run ./examples/publisher/cmd/publish /chat/room-1
//
// Each line is sent as a JSON string, or with -json as the JSON value it
// holds. See examples/publisher/README.md.
package main

import (
	"bufio"
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "publish:", err)
		}
		os.Exit(1)
	}
}

// run publishes the lines of in as the command line args say; it reports
// on stderr.
func run(ctx context.Context, args []string, in io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8000/bayeux", "Bayeux endpoint")
	transport := fs.String("transport", "", `transport: "websocket" or "long-polling" (default: websocket when the server offers it)`)
	asJSON := fs.Bool("json", false, "send each line as the JSON value it holds instead of as a string")
	window := fs.Int("window", 64, "messages in flight, waiting for their acknowledgement")
	token := fs.String("token", "", "add ext.token to every message (for servers that require one)")
	verbose := fs.Bool("v", false, "log connection events")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on a message not acknowledged within this time")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: publish [flags] CHANNEL < lines")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *window < 1 {
		fs.Usage()
		return flag.ErrHelp
	}
	channel := fs.Arg(0)

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	opts := []client.Option{client.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))}
	if *transport != "" {
		opts = append(opts, client.WithTransports(*transport))
	}
	if *token != "" {
		opts = append(opts, client.WithExtension(client.Extension{
			Outgoing: func(m *client.Message) { m.SetExt("token", *token) },
		}))
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.Dial(dialCtx, *url, opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	// Up to window messages in flight; PublishAsync keeps them in line
	// order.
	sem := make(chan struct{}, *window)
	errs := make(chan error, 1)
	sent := 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		var data any = line
		if *asJSON {
			if !json.Valid([]byte(line)) {
				return fmt.Errorf("line %d is not valid JSON: %q", sent+1, line)
			}
			data = json.RawMessage(line)
		}
		select {
		case sem <- struct{}{}:
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		msgCtx, cancel := context.WithTimeout(ctx, *timeout)
		res := c.PublishAsync(msgCtx, channel, data)
		go func() {
			defer cancel()
			if r := <-res; r.Err != nil {
				select {
				case errs <- r.Err:
				default:
				}
			}
			<-sem
		}()
		sent++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	for range *window { // wait for the last acknowledgements
		sem <- struct{}{}
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Fprintf(stderr, "published %d messages to %s\n", sent, channel)
	return nil
}
