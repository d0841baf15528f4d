package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// options are the command-line settings. Each flag --name may also be set by
// the environment variable BAYOU_NAME (upper case, dashes as underscores); a
// flag given on the command line wins over the environment.
type options struct {
	addr           string
	mount          string
	timeout        float64
	ping           float64
	allowedOrigins string
	maxMessageSize int64
	maxQueueBytes  int
	clientJS       string
	logLevel       string
}

// envName returns the environment variable that sets flag name.
func envName(name string) string {
	return "BAYOU_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseOptions reads args and the environment (getenv).
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bayou", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `bayou: a Bayeux (faye and CometD compatible) pub/sub server.

Usage: bayou [flags]

Every flag can also be set with an environment variable, shown in brackets;
the flag wins when both are given.

Flags:
`)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(stderr, "  --%s (%s)\n    \t%s (default %q)\n", f.Name, envName(f.Name), f.Usage, f.DefValue)
		})
	}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8000", "address to listen on, host:port (port 0 picks a free port)")
	fs.StringVar(&o.mount, "mount", "/bayeux", "path of the Bayeux endpoint; every transport is served under it")
	fs.Float64Var(&o.timeout, "timeout", 25, "seconds a /meta/connect is held waiting for messages (advice.timeout); keep it below your proxies' idle timeout")
	fs.Float64Var(&o.ping, "ping", 25, "seconds between WebSocket pings and EventSource keep-alives; 0 disables them")
	fs.StringVar(&o.allowedOrigins, "allowed-origins", "", "comma-separated browser origins allowed to connect (e.g. https://app.example.com); empty allows any origin")
	fs.Int64Var(&o.maxMessageSize, "max-message-size", 1<<20, "largest WebSocket frame or HTTP request body accepted, in bytes")
	fs.IntVar(&o.maxQueueBytes, "max-queue-bytes", 4<<20, "bytes that may wait for one client before it is dropped as a slow consumer")
	fs.StringVar(&o.clientJS, "client-js", "", "path of a browser bundle to serve at <mount>.js and <mount>/client.js (e.g. node_modules/faye/client/faye-browser-min.js)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")

	// Environment values become the flags' values before the command line
	// is parsed, so that the command line overrides them.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, got %v", o.timeout)
	}
	if o.ping < 0 {
		return nil, fmt.Errorf("--ping must not be negative, got %v", o.ping)
	}
	if !strings.HasPrefix(o.mount, "/") {
		return nil, fmt.Errorf("--mount must start with /, got %q", o.mount)
	}
	return o, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// config turns the options into the server's configuration.
func (o *options) config(log *slog.Logger) bayeux.Config {
	c := bayeux.Config{
		Mount:          o.mount,
		Timeout:        seconds(o.timeout),
		Ping:           seconds(o.ping),
		MaxMessageSize: o.maxMessageSize,
		MaxQueueBytes:  o.maxQueueBytes,
		ClientScript:   o.clientJS,
		Logger:         log,
	}
	if o.ping == 0 {
		c.Ping = -1 // disabled
	}
	for _, origin := range strings.Split(o.allowedOrigins, ",") {
		if origin = strings.TrimSpace(origin); origin != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, origin)
		}
	}
	return c
}

// logger returns a text logger on w at the options' level.
func (o *options) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}
