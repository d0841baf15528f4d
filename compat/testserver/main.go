// Command testserver is Bayou as a library, with the server-side pieces the
// compatibility suites need and the stock binary does not have: a
// /service/echo handler (CometD remoteCall). It prints
// "testserver serving Bayeux at <URL>" once listening and logs each request
// (with its transport) at debug level.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	mount := flag.String("mount", "/bayeux", "mount path")
	timeout := flag.Float64("timeout", 5, "connect hold, seconds")
	clientJS := flag.String("client-js", "", "browser bundle to serve at <mount>.js and <mount>/client.js")
	level := flag.String("log-level", "info", "log level")
	flag.Parse()

	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	srv, err := bayeux.New(bayeux.Config{
		Mount:        *mount,
		Timeout:      time.Duration(*timeout * float64(time.Second)),
		ClientScript: *clientJS,
		Logger:       log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// /service/echo answers a remoteCall with the data it was sent.
	if err := srv.HandleService("/service/echo", func(_ context.Context, m *bayeux.Message) (any, error) {
		return map[string]any{"echo": rawOrNil(m.Data)}, nil
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("testserver serving Bayeux at http://%s%s\n", ln.Addr(), *mount)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	drain, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(drain)
	_ = hs.Shutdown(drain)
}

// rawOrNil wraps raw JSON so that it is embedded, not quoted.
func rawOrNil(raw string) any {
	if raw == "" {
		return nil
	}
	return jsonRaw(raw)
}

type jsonRaw string

func (r jsonRaw) MarshalJSON() ([]byte, error) { return []byte(r), nil }
