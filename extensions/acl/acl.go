// Package acl is a Bayou extension that controls who may subscribe and
// publish to which channels, by rules on channel channels.
//
//	acl.New(acl.Config{Rules: []acl.Rule{
//		{Pattern: "/users/{sub}/**", Subscribe: "identified", Publish: "identified"},
//		{Pattern: "/admin/**", Subscribe: "role:admin", Publish: "role:admin"},
//		{Pattern: "/news/*", Subscribe: "anyone", Publish: "role:editor"},
//	}})
//
// The most specific matching rule governs a channel: the one with more
// literal segments; then a channel name before /* before /**; then the one
// with more template segments; then the first listed. A channel no rule
// matches is governed by Config.Default (default "anyone").
//
// A subscribe is checked against the rule governing the requested pattern,
// the most specific rule that covers it (every channel the pattern matches
// matches the rule). A subscribe to a pattern wider than every rule, such as
// /**, is checked against the default. The extension is also a
// bayeux.DeliveryFilter: each message delivered is checked for each
// recipient against the rule governing its concrete channel, so a wide
// subscription never opens a channel that a narrower rule closes.
//
// Identities come from an authentication extension (tokenauth, jwtauth,
// callback) listed before this one in bayeux.Config.Extensions.
package acl

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// The error strings of refusals.
const (
	// ErrAuthRequired refuses an anonymous session.
	ErrAuthRequired = "403::Authentication required"
	// ErrForbidden refuses a session with an identity.
	ErrForbidden = "403::Forbidden"
)

// Config configures the extension.
type Config struct {
	// Rules are the access rules, in any order (see the package doc for
	// which one governs a channel).
	Rules []Rule `json:"rules"`
	// Default governs the channels no rule matches, for subscribe and
	// publish. Default "anyone".
	Default Access `json:"default"`
	// Logger receives debug logs of refusals. Default slog.Default().
	Logger *slog.Logger `json:"-"`
}

// ACL is the extension. It is safe for concurrent use.
type ACL struct {
	bayeux.NopExtension
	rules []*rule // most specific first
	def   access
	log   *slog.Logger
}

// New compiles cfg's rules.
func New(cfg Config) (*ACL, error) {
	a := &ACL{log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	def := cfg.Default
	if def == "" {
		def = Anyone
	}
	var err error
	if a.def, err = parseAccess(def); err != nil {
		return nil, fmt.Errorf("acl: default: %w", err)
	}
	for i, r := range cfg.Rules {
		c, err := compileRule(r, i)
		if err != nil {
			return nil, fmt.Errorf("acl: %w", err)
		}
		if channels.IsMeta(r.Pattern) {
			return nil, fmt.Errorf("acl: rule %q: /meta channels are the protocol's, not subject to rules", r.Pattern)
		}
		a.rules = append(a.rules, c)
	}
	slices.SortStableFunc(a.rules, moreSpecific)
	return a, nil
}

// govern returns the most specific rule covering target, or nil for the
// default.
func (a *ACL) govern(target channels.Pattern) *rule {
	for _, r := range a.rules {
		if r.pat.Covers(target) {
			return r
		}
	}
	return nil
}

// check reports whether id may subscribe (publish false) or publish to
// target.
func (a *ACL) check(id *bayeux.Identity, target channels.Pattern, publish bool) bool {
	r := a.govern(target)
	if r == nil {
		return a.def.allows(id)
	}
	acc := r.sub
	if publish {
		acc = r.pub
	}
	return acc.allows(id) && r.bound(id, target)
}

// CanSubscribe reports whether a session with identity id (nil:
// anonymous) may subscribe to pattern. Deliveries through the subscription
// are still checked channel by channel (CanReceive).
func (a *ACL) CanSubscribe(id *bayeux.Identity, pattern string) bool {
	p, err := channels.ParsePattern(pattern)
	return err == nil && a.check(id, p, false)
}

// CanReceive reports whether a session with identity id may receive a
// message published on channel: the subscribe access of the rule governing
// the channel.
func (a *ACL) CanReceive(id *bayeux.Identity, channel string) bool {
	p, err := channels.ParsePattern(channel)
	return err == nil && p.IsName() && a.check(id, p, false)
}

// CanPublish reports whether a session with identity id may publish on
// channel.
func (a *ACL) CanPublish(id *bayeux.Identity, channel string) bool {
	p, err := channels.ParsePattern(channel)
	return err == nil && p.IsName() && a.check(id, p, true)
}

// refusal returns the error string for refusing id.
func refusal(id *bayeux.Identity) string {
	if id == nil {
		return ErrAuthRequired
	}
	return ErrForbidden
}

// Incoming checks subscribes and publishes.
func (a *ACL) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Error != "" || m.FromServer() {
		return // refused already, or the server's own publish
	}
	var id *bayeux.Identity
	if m.Session != nil {
		id = m.Session.Identity()
	}
	switch {
	case m.Channel == channels.MetaSubscribe:
		for _, ch := range m.Subscriptions() {
			if channels.IsService(ch) || channels.IsMeta(ch) {
				continue // never broadcast; the server answers these itself
			}
			if !a.CanSubscribe(id, ch) {
				m.RejectChannel(ch, refusal(id)) // the other channels may pass
				a.log.Debug("acl: subscribe refused", "clientId", m.ClientID, "subscription", ch)
			}
		}
	case channels.IsMeta(m.Channel):
	default:
		if p, err := channels.ParsePattern(m.Channel); err == nil && !a.check(id, p, true) {
			m.Error = refusal(id)
			a.log.Debug("acl: publish refused", "clientId", m.ClientID, "channel", m.Channel)
		}
	}
}

// Delivery withholds a message from the recipients the rule governing its
// channel does not let subscribe. Channels open to anyone take the fast
// path.
func (a *ACL) Delivery(_ context.Context, m *bayeux.Message) func(*bayeux.Session, *bayeux.Message) bool {
	p, err := channels.ParsePattern(m.Channel)
	if err != nil {
		return nil // not a channel the server publishes on
	}
	r := a.govern(p)
	if r == nil {
		if a.def.open() {
			return nil
		}
		return func(to *bayeux.Session, _ *bayeux.Message) bool { return a.def.allows(to.Identity()) }
	}
	if r.sub.open() && len(r.templates) == 0 {
		return nil
	}
	return func(to *bayeux.Session, _ *bayeux.Message) bool {
		id := to.Identity()
		return r.sub.allows(id) && r.bound(id, p)
	}
}
