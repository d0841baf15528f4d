// Command chat is a small chat room built on Bayou: the bayeux package is
// used as a library and mounted on a gorilla/mux router next to the page.
//
// Every room is a channel, /chat/<room>; a message is {"nick","text"}
// published by the browser's faye client. The presence extension
// (extensions/presence) keeps the members of each room: the page
// subscribes to /presence/chat/<room> and is sent the members, then their
// joins and leaves. A tiny extension of this file records the nickname the
// page sends with its subscribes, and presence shows it.
//
// With -redis, several chat servers share their rooms and members: run two
// and open a page on each.
//
// Run it (see README.md):
//
//	go run . -client-js /path/to/node_modules/faye/client/faye-browser-min.js
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/redis"
	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/extensions/presence"
)

//go:embed index.html
var indexHTML []byte

// bundleCandidates are where -client-js is looked for when it is not given,
// relative to the working directory: an `npm install faye@1.4.3` made here
// (as the README says), or the copies the repository's test suites install.
var bundleCandidates = []string{
	"node_modules/faye/client/faye-browser-min.js",
	"../../compat/browser/node_modules/faye/client/faye-browser-min.js",
	"../../compat/node/node_modules/faye/client/faye-browser-min.js",
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (port 0 picks a free port)")
	clientJS := flag.String("client-js", "", "faye's browser bundle (node_modules/faye/client/faye-browser-min.js); default: the first of "+strings.Join(bundleCandidates, ", ")+" that exists")
	timeout := flag.Duration("timeout", 25*time.Second, "how long a /meta/connect is held")
	redisURL := flag.String("redis", "", "Redis URL (redis://127.0.0.1:6379/0) shared by several chat servers; empty runs one in memory")
	debug := flag.Bool("debug", false, "log every request")
	flag.Parse()

	lv := slog.LevelInfo
	if *debug {
		lv = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))

	if err := run(*addr, *clientJS, *timeout, *redisURL, log); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run serves the chat until SIGINT or SIGTERM.
func run(addr, clientJS string, timeout time.Duration, redisURL string, log *slog.Logger) error {
	script, err := findBundle(clientJS)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Who is in which room: the members of /chat/<room> show the nickname
	// their page last sent.
	members, err := presence.New(presence.Config{
		Channels: []string{"/chat/*"},
		Info: func(s *bayeux.Session, _ string) any {
			n, _ := s.Get("nick")
			return map[string]any{"nick": n}
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	cfg := bayeux.Config{
		Mount:        "/bayeux",
		Timeout:      timeout,
		ClientScript: script,
		Logger:       log,
		Extensions:   []bayeux.Extension{nicknames{}, members},
	}
	if redisURL != "" {
		engine, err := redis.New(ctx, redis.Config{URL: redisURL, Namespace: "chat", Logger: log})
		if err != nil {
			return err
		}
		cfg.Engine = engine // presence keeps its members in Redis too
	}
	srv, err := bayeux.New(cfg)
	if err != nil {
		return err
	}

	r := mux.NewRouter()
	r.PathPrefix("/bayeux").Handler(srv) // the mount, everything below it, and /bayeux.js
	r.Methods(http.MethodGet, http.MethodHead).Path("/").HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(indexHTML)
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", "err", err)
			stop()
		}
	}()
	fmt.Printf("chat serving at http://%s/ (faye client from %s)\n", ln.Addr(), script)

	<-ctx.Done()
	drain, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(drain)
	return hs.Shutdown(drain)
}

// nicknames keeps the nickname a page sends in the ext of its subscribes
// ({"nick": "ana"}) on its session, for presence to show.
type nicknames struct{ bayeux.NopExtension }

// Incoming records ext.nick of a subscribe.
func (nicknames) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel != channels.MetaSubscribe || m.Session == nil {
		return
	}
	if n := strings.TrimSpace(m.ExtString("nick")); n != "" && utf8.RuneCountInString(n) <= 24 {
		m.Session.Set("nick", n)
	}
	m.DeleteExt("nick")
}

// findBundle returns the faye browser bundle to serve.
func findBundle(flagValue string) (string, error) {
	if flagValue != "" {
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("-client-js: %w", err)
		}
		return flagValue, nil
	}
	for _, c := range bundleCandidates {
		if _, err := os.Stat(c); err == nil {
			return filepath.Abs(c)
		}
	}
	return "", errors.New("faye's browser bundle was not found: run `npm install faye@1.4.3` in this directory, " +
		"or pass -client-js PATH/TO/node_modules/faye/client/faye-browser-min.js")
}
