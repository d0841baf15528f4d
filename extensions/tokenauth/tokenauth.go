// Package tokenauth is a Bayou extension that authenticates clients by a
// token they put in the ext of their messages: one shared secret, or a list
// of tokens each naming a user.
//
// A faye client adds the token with an outgoing extension:
//
//	client.addExtension({outgoing(message, callback) {
//	  message.ext = message.ext || {}; message.ext.token = TOKEN; callback(message);
//	}});
//
// The token is removed from every incoming message before anything else
// sees it, so it is never broadcast. A valid token at handshake attaches an
// identity to the session, which authenticates its later messages; a valid
// token on any other message authenticates that message alone.
//
// Subscribing and publishing to protected channels (Config.Protect) needs an
// authenticated session or message. A subscribe to a wildcard pattern that
// could match a protected channel (such as /** when /private/** is
// protected) needs it too, so wide patterns cannot open protected channels.
package tokenauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// The error strings sent to clients ("<code>::<text>", which faye parses
// as {code, message}).
const (
	// ErrAuthRequired rejects an unauthenticated handshake (when
	// Config.RequireHandshake is set).
	ErrAuthRequired = "401::Authentication required"
	// ErrForbidden rejects an unauthenticated subscribe or publish on a
	// protected channel.
	ErrForbidden = "403::Authentication required"
)

// DefaultKey is the ext field that carries the token by default.
const DefaultKey = "token"

// Config configures the extension. At least one of Secret and Tokens must
// be set.
type Config struct {
	// Key is the ext field holding the token. Default "token".
	Key string
	// Secret is a shared secret: a session presenting it gets an identity
	// with no user and Claims {"auth": "token"}.
	Secret string
	// Tokens maps each accepted token to the user it identifies (see
	// LoadTokens); a session presenting one gets Identity{User: user}.
	Tokens map[string]string
	// Protect lists the channel patterns (names, /x/* or /x/**) that need
	// authentication to subscribe or publish. Empty protects every channel
	// outside /meta.
	Protect []string
	// RequireHandshake rejects handshakes without a valid token
	// ("401::Authentication required"); with a wrong token the rejection is
	// final (the client does not retry).
	RequireHandshake bool
	// Logger receives debug logs of refused messages. Default
	// slog.Default().
	Logger *slog.Logger
}

// Auth is the token extension. It is safe for concurrent use.
type Auth struct {
	bayeux.NopExtension
	key       string
	secret    []byte
	tokens    map[[sha256.Size]byte]string // token digest → user
	protect   []channels.Pattern
	requireHS bool
	log       *slog.Logger
}

// New returns the extension configured by cfg.
func New(cfg Config) (*Auth, error) {
	if cfg.Secret == "" && len(cfg.Tokens) == 0 {
		return nil, errors.New("tokenauth: a secret or a token list is required")
	}
	a := &Auth{
		key:       cfg.Key,
		secret:    []byte(cfg.Secret),
		tokens:    make(map[[sha256.Size]byte]string, len(cfg.Tokens)),
		requireHS: cfg.RequireHandshake,
		log:       cfg.Logger,
	}
	if a.key == "" {
		a.key = DefaultKey
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	for tok, user := range cfg.Tokens {
		if tok == "" {
			return nil, errors.New("tokenauth: empty token in the token list")
		}
		a.tokens[sha256.Sum256([]byte(tok))] = user
	}
	for _, s := range cfg.Protect {
		p, err := channels.ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("tokenauth: protect: %w", err)
		}
		a.protect = append(a.protect, p)
	}
	return a, nil
}

// identify returns the identity a token grants, or nil. Tokens are compared
// in constant time (the secret directly, list tokens through their SHA-256
// digests, so that a map lookup reveals nothing about the token).
func (a *Auth) identify(token string) *bayeux.Identity {
	if token == "" {
		return nil
	}
	if len(a.secret) > 0 && subtle.ConstantTimeCompare([]byte(token), a.secret) == 1 {
		return &bayeux.Identity{Claims: map[string]any{"auth": "token"}}
	}
	if user, ok := a.tokens[sha256.Sum256([]byte(token))]; ok {
		return &bayeux.Identity{User: user}
	}
	return nil
}

// Protected reports whether subscribing to pattern (a channel name or a
// wildcard pattern) needs authentication: whether some channel it matches
// is protected. A pattern that does not parse is treated as protected.
func (a *Auth) Protected(pattern string) bool {
	if channels.IsMeta(pattern) {
		return false
	}
	if len(a.protect) == 0 {
		return true
	}
	p, err := channels.ParsePattern(pattern)
	if err != nil {
		return true // the server refuses it anyway
	}
	for _, q := range a.protect {
		if q.Overlaps(p) {
			return true
		}
	}
	return false
}

// Incoming strips the token from every message, identifies handshakes, and
// refuses unauthenticated subscribes and publishes on protected channels.
func (a *Auth) Incoming(_ context.Context, m *bayeux.Message) {
	_, present := m.ExtField(a.key)
	var id *bayeux.Identity
	if present {
		id = a.identify(m.ExtString(a.key))
		m.DeleteExt(a.key)
	}
	if m.Error != "" {
		return // an earlier extension refused it
	}
	if id == nil && m.Session != nil && m.Channel != channels.MetaHandshake {
		id = m.Session.Identity()
	}
	switch m.Channel {
	case channels.MetaHandshake:
		if id != nil {
			m.Session.SetIdentity(id)
			return
		}
		if a.requireHS {
			m.Error, m.Final = ErrAuthRequired, present
			a.log.Debug("tokenauth: handshake refused", "tokenGiven", present)
		}
	case channels.MetaSubscribe:
		if id != nil {
			return
		}
		for _, ch := range m.Subscriptions() {
			if a.Protected(ch) {
				m.RejectChannel(ch, ErrForbidden) // the other channels may pass
				a.log.Debug("tokenauth: subscribe refused", "clientId", m.ClientID, "subscription", ch)
			}
		}
	default:
		if id != nil || channels.IsMeta(m.Channel) || m.FromServer() {
			return // authenticated, a protocol message, or the server's own publish
		}
		if a.Protected(m.Channel) {
			m.Error = ErrForbidden
			a.log.Debug("tokenauth: publish refused", "clientId", m.ClientID, "channel", m.Channel)
		}
	}
}
