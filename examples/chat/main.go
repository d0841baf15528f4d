// Command chat is a small chat room built on Bayou: the bayeux package is
// used as a library and mounted on a gorilla/mux router next to the page.
//
// Every room is a channel, /chat/<room>; a message is {"nick","text"}
// published by the browser's faye client. The server keeps a member count
// per room: when a session subscribes to or leaves /chat/<room> it publishes
// {"members": N} on /members/<room>, and a page that subscribes to
// /members/<room> is sent the current count at once.
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

	"github.com/gorilla/mux"

	"github.com/bayou-pubsub/bayou/bayeux"
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
	debug := flag.Bool("debug", false, "log every request")
	flag.Parse()

	lv := slog.LevelInfo
	if *debug {
		lv = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))

	script, err := findBundle(*clientJS)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}

	rooms := newRooms()
	srv, err := bayeux.New(bayeux.Config{
		Mount:        "/bayeux",
		Timeout:      *timeout,
		ClientScript: script,
		Logger:       log,
		Events: bayeux.Events{
			// These run on the request's goroutine: they only note which
			// room changed; the counts are published by rooms.run.
			Subscribe: func(s *bayeux.Session, ch string) {
				if room, ok := roomOf(ch, "/chat/"); ok {
					rooms.changed(room)
				} else if room, ok := roomOf(ch, "/members/"); ok {
					rooms.welcome(s.ID(), room)
				}
			},
			Unsubscribe: func(_ *bayeux.Session, ch string) {
				if room, ok := roomOf(ch, "/chat/"); ok {
					rooms.changed(room)
				}
			},
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}

	r := mux.NewRouter()
	r.PathPrefix("/bayeux").Handler(srv) // the mount, everything below it, and /bayeux.js
	r.Methods(http.MethodGet, http.MethodHead).Path("/").HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(indexHTML)
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go rooms.run(ctx, srv, log)
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
	_ = hs.Shutdown(drain)
}

// roomOf returns the room of a channel such as /chat/lobby; wildcard
// subscriptions (/chat/*) and deeper channels are not rooms.
func roomOf(channel, prefix string) (string, bool) {
	room, ok := strings.CutPrefix(channel, prefix)
	if !ok || room == "" || strings.ContainsAny(room, "/*") {
		return "", false
	}
	return room, true
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

// rooms publishes member counts. Events only post to its channels, so a
// request never waits for a publish, and a burst of joins to one room is
// coalesced into one count.
type rooms struct {
	dirty chan string
	greet chan welcome
}

type welcome struct{ clientID, room string }

func newRooms() *rooms {
	return &rooms{dirty: make(chan string, 1024), greet: make(chan welcome, 1024)}
}

// changed notes that the members of room changed.
func (rs *rooms) changed(room string) {
	select {
	case rs.dirty <- room:
	default: // full: counts are published often enough that one may be skipped
	}
}

// welcome asks for the current count of room to be sent to one client.
func (rs *rooms) welcome(clientID, room string) {
	select {
	case rs.greet <- welcome{clientID, room}:
	default:
	}
}

type count struct {
	Members int `json:"members"`
}

func (rs *rooms) run(ctx context.Context, srv *bayeux.Server, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case room := <-rs.dirty:
			pending := map[string]bool{room: true}
			for more := true; more; {
				select {
				case r := <-rs.dirty:
					pending[r] = true
				default:
					more = false
				}
			}
			for room := range pending {
				n := srv.Subscribers("/chat/" + room)
				if err := srv.Publish(ctx, "/members/"+room, count{n}); err != nil {
					log.Warn("publishing member count", "room", room, "err", err)
				}
			}
		case w := <-rs.greet:
			n := srv.Subscribers("/chat/" + w.room)
			if err := srv.Deliver(ctx, w.clientID, "/members/"+w.room, count{n}); err != nil {
				log.Debug("sending member count", "room", w.room, "err", err)
			}
		}
	}
}
