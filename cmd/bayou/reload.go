package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// extensionChain is the server's one extension: it runs, in order, the
// extensions of the current chain (the authentication extension of --auth,
// then the ACL of the config file), which SIGHUP replaces without
// disturbing the connected clients: their sessions keep the identity they
// were given, and each new message meets the new chain.
type extensionChain struct {
	current atomic.Pointer[[]bayeux.Extension]
}

func newExtensionChain(exts []bayeux.Extension) *extensionChain {
	c := &extensionChain{}
	c.set(exts)
	return c
}

// set replaces the chain.
func (c *extensionChain) set(exts []bayeux.Extension) { c.current.Store(&exts) }

// Incoming runs the chain's incoming hooks.
func (c *extensionChain) Incoming(ctx context.Context, m *bayeux.Message) {
	for _, e := range *c.current.Load() {
		e.Incoming(ctx, m)
	}
}

// Outgoing runs the chain's outgoing hooks.
func (c *extensionChain) Outgoing(ctx context.Context, r *bayeux.Reply) {
	for _, e := range *c.current.Load() {
		e.Outgoing(ctx, r)
	}
}

// filteringChain is an extensionChain that also runs the delivery filters
// of its chain (jwtauth's, the ACL's). It is used when the chain may hold
// one, now or after a reload; otherwise the plain chain spares the server
// reading every publication back for a delivery filter.
type filteringChain struct{ *extensionChain }

// Delivery combines the delivery filters of the chain: a recipient gets
// the message when every filter lets it through.
func (c filteringChain) Delivery(ctx context.Context, m *bayeux.Message) func(*bayeux.Session, *bayeux.Message) bool {
	var fns []func(*bayeux.Session, *bayeux.Message) bool
	for _, e := range *c.current.Load() {
		if f, ok := e.(bayeux.DeliveryFilter); ok {
			if fn := f.Delivery(ctx, m); fn != nil {
				fns = append(fns, fn)
			}
		}
	}
	switch len(fns) {
	case 0:
		return nil
	case 1:
		return fns[0]
	}
	return func(to *bayeux.Session, m *bayeux.Message) bool {
		for _, fn := range fns {
			if !fn(to, m) {
				return false
			}
		}
		return true
	}
}

// reloader reloads, on SIGHUP, what can change under a running server:
// the token file (or the JWT public key), the ACL of the config file and
// the TLS certificate. Other settings need a restart.
type reloader struct {
	opts  *options
	log   *slog.Logger
	chain *extensionChain // nil when the server has no extensions to reload
	cert  *certificate    // nil without TLS
}

// serverExtensions returns the server's extensions for opts (a chain that
// reload can replace), and the chain; none when there is nothing to
// reload (no --auth, no config file).
func serverExtensions(opts *options, log *slog.Logger) ([]bayeux.Extension, *extensionChain, error) {
	exts, err := opts.extensions(log)
	if err != nil {
		return nil, nil, err
	}
	if len(exts) == 0 && opts.configFile == "" {
		return nil, nil, nil
	}
	chain := newExtensionChain(exts)
	filters := opts.configFile != "" // a reload may bring ACL rules
	for _, e := range exts {
		if _, ok := e.(bayeux.DeliveryFilter); ok {
			filters = true
		}
	}
	if filters {
		return []bayeux.Extension{filteringChain{chain}}, chain, nil
	}
	return []bayeux.Extension{chain}, chain, nil
}

// reload reloads everything it can; what fails to load is kept as it was,
// and the errors are returned together.
func (r *reloader) reload() error {
	var errs []error
	if r.chain != nil {
		if err := r.reloadExtensions(); err != nil {
			errs = append(errs, err)
		}
	}
	if r.cert != nil {
		if err := r.cert.reload(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reloadExtensions builds the extensions again from the files they read.
func (r *reloader) reloadExtensions() error {
	o := *r.opts
	if o.configFile != "" {
		rules, err := readACL(o.configFile)
		if err != nil {
			return err
		}
		o.acl = rules
	}
	exts, err := o.extensions(r.log)
	if err != nil {
		return err
	}
	r.chain.set(exts)
	r.opts.acl = o.acl
	return nil
}
