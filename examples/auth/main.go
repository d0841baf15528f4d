// Command auth is a runnable example of a Bayou server with authentication:
// clients present a JWT (HS256) in the ext of their messages, and each user
// may use the channels below /users/<their own id>/ only.
//
//	go run ./examples/auth                   # serves http://127.0.0.1:8000/bayeux
//	go run ./examples/auth -print-token u1   # prints a demo token for user u1
//
// The rules, with jwtauth authenticating and acl authorising:
//
//	/users/{sub}/**   subscribe and publish: the user named by the segment
//	/users/**         nobody else (so /users/* and /users/** are refused)
//	anything else     anyone, with or without a token
//
// A subscribe to /** is accepted, but delivers nothing from other users'
// channels. See README.md for a faye client that adds the token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/acl"
	"github.com/bayou-pubsub/bayou/extensions/jwtauth"
)

// demoSecret signs and verifies the demo's tokens. Use your own (-secret)
// for anything but a demo.
const demoSecret = "bayou-demo-secret"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "auth example:", err)
		os.Exit(2)
	}
}

// run serves until ctx is done, or prints a token with -print-token.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8000", "address to listen on")
	secret := fs.String("secret", demoSecret, "HS256 secret of the tokens")
	printToken := fs.String("print-token", "", "print a token for this user id and exit")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of printed tokens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *printToken != "" {
		tok, err := Token([]byte(*secret), *printToken, *ttl, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := NewServer([]byte(*secret), log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "serving Bayeux at http://%s/bayeux\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	drain, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(drain)
	if err := hs.Shutdown(drain); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// NewServer returns the example's Bayeux server: tokens signed with secret
// authenticate, and /users/{sub}/** is each user's own.
func NewServer(secret []byte, log *slog.Logger) (*bayeux.Server, error) {
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:           secret,
		AuthenticateOnly: true, // channel access is the ACL's
		Optional:         true, // clients without a token may use the open channels
		Logger:           log,
	})
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	rules, err := acl.New(acl.Config{Rules: []acl.Rule{
		{Pattern: "/users/{sub}/**", Subscribe: acl.Identified, Publish: acl.Identified},
		{Pattern: "/users/**", Subscribe: acl.None, Publish: acl.None},
	}, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	return bayeux.New(bayeux.Config{
		Extensions: []bayeux.Extension{auth, rules},
		Events: bayeux.Events{Handshake: func(s *bayeux.Session) {
			if id := s.Identity(); id != nil {
				log.Info("user connected", "user", id.User, "clientId", s.ID())
			}
		}},
		Logger: log,
	})
}
