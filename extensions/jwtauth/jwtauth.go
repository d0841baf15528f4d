// Package jwtauth is a Bayou extension that authenticates clients by a JSON
// Web Token in the ext of their messages and authorises their channels by a
// claim of that token.
//
// Tokens are signed with HS256 (a shared secret) or RS256/ES256 (a public
// key), and may be checked for issuer and audience. A valid token at
// handshake becomes the session's identity: User is the "sub" claim, Roles
// come from a roles claim, Claims holds every claim. The token is removed
// from every incoming message, so it is never broadcast.
//
// Expiry is enforced: an expired token is refused at handshake, and once a
// session's token has expired its next /meta/connect is refused with
// "401::Token expired" and advice to handshake again, which faye and CometD
// clients follow at once, presenting the token their extension adds then
// (a fresh one if the application renewed it). A client may also renew a
// token without a handshake by sending a new one, for the same subject, on
// any message. Unless Config.AuthenticateOnly is set, sessions whose token
// expired receive no more messages (except on Config.Public channels).
//
// The channels claim (default "channels") lists the channel patterns the
// token allows, "{sub}" standing for the subject:
//
//	{"sub": "u1", "exp": 1767225600, "channels": ["/users/{sub}/**", "/chat/*"]}
//
// A subscribe is allowed when an allowed pattern covers the requested one
// (channels.Covers: every channel matching the request matches the allowed
// pattern), a publish when an allowed pattern matches its channel. The
// extension is also a bayeux.DeliveryFilter: a message is delivered only to
// sessions whose token allows its channel, whatever subscription it comes
// through. With Config.WideSubscriptions, a wildcard subscribe that is not
// covered but overlaps the allowed patterns (such as /** for a token allowing
// /users/u1/**) is accepted as well, and the filter narrows it to the
// channels the token allows.
package jwtauth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
	"github.com/golang-jwt/jwt/v5"
)

// The error strings sent to clients ("<code>::<text>").
const (
	// ErrAuthRequired rejects a handshake without a token (unless
	// Config.Optional).
	ErrAuthRequired = "401::Authentication required"
	// ErrInvalidToken rejects a token that does not verify (bad signature,
	// issuer, audience, not valid yet); at handshake the rejection is final.
	ErrInvalidToken = "401::Invalid token"
	// ErrTokenExpired rejects an expired token, and the connect of a
	// session whose token has expired (the client then handshakes again).
	ErrTokenExpired = "401::Token expired"
	// ErrChannelNotAllowed rejects a subscribe or publish the token does not
	// allow.
	ErrChannelNotAllowed = "403::Channel not allowed"
)

// Defaults of Config.
const (
	DefaultKey           = "token"
	DefaultRolesClaim    = "roles"
	DefaultChannelsClaim = "channels"
)

// Config configures the extension. Exactly one of Secret and PublicKey must
// be set.
type Config struct {
	// Key is the ext field holding the token. Default "token".
	Key string
	// Secret verifies HS256 (and HS384, HS512) tokens.
	Secret []byte
	// PublicKey verifies RS256/RS384/RS512 tokens (an *rsa.PublicKey) or
	// ES256/ES384/ES512 ones (an *ecdsa.PublicKey on the matching curve);
	// see LoadPublicKey.
	PublicKey crypto.PublicKey
	// Issuer, when set, must equal the token's "iss".
	Issuer string
	// Audience, when set, must be among the token's "aud".
	Audience string
	// RequireExpiry refuses tokens without "exp".
	RequireExpiry bool
	// Leeway tolerates clock skew when checking "exp", "nbf" and "iat" at
	// verification.
	Leeway time.Duration
	// RolesClaim names the claim holding the roles (an array of strings
	// or a space-separated string). Default "roles".
	RolesClaim string
	// ChannelsClaim names the claim listing the allowed channel channels.
	// Default "channels". A token without it allows only Public channels.
	ChannelsClaim string
	// AuthenticateOnly ignores the channels claim: the extension only
	// authenticates (identity, expiry), leaving channel access to other
	// extensions such as acl.
	AuthenticateOnly bool
	// Public lists channel patterns every session may subscribe and publish
	// to, with or without a token.
	Public []string
	// WideSubscriptions accepts wildcard subscribes that overlap the allowed
	// channels without being covered by them (see the package doc).
	WideSubscriptions bool
	// Optional accepts handshakes without a token; such sessions are
	// anonymous and reach only Public channels.
	Optional bool
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives debug logs of refused tokens. Default slog.Default().
	Logger *slog.Logger
}

// Auth is the JWT extension. It is safe for concurrent use.
type Auth struct {
	bayeux.NopExtension
	cfg    Config
	key    any
	parser *jwt.Parser
	public []channels.Pattern
	grants grants
	log    *slog.Logger
}

// New returns the extension configured by cfg.
func New(cfg Config) (*Auth, error) {
	var key any
	switch {
	case len(cfg.Secret) > 0 && cfg.PublicKey != nil:
		return nil, errors.New("jwtauth: set a secret or a public key, not both")
	case len(cfg.Secret) > 0:
		key = cfg.Secret
	case cfg.PublicKey != nil:
		key = cfg.PublicKey
	default:
		return nil, errors.New("jwtauth: a secret or a public key is required")
	}
	methods, err := methodsFor(key)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = DefaultRolesClaim
	}
	if cfg.ChannelsClaim == "" {
		cfg.ChannelsClaim = DefaultChannelsClaim
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Auth{cfg: cfg, key: key, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithTimeFunc(cfg.Now), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.RequireExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	a.parser = jwt.NewParser(opts...)
	for _, s := range cfg.Public {
		p, err := channels.ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: public: %w", err)
		}
		a.public = append(a.public, p)
	}
	return a, nil
}

// verify checks a raw token and returns the identity and grant it gives,
// or the error string for the client and whether the failure is final.
func (a *Auth) verify(raw string) (*bayeux.Identity, *grant, string, bool) {
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return a.key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, nil, ErrTokenExpired, false
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, nil, ErrInvalidToken, false // may become valid: let the client retry
	case err != nil:
		a.log.Debug("jwtauth: token refused", "err", err)
		return nil, nil, ErrInvalidToken, true
	}
	sub, _ := claims.GetSubject()
	id := &bayeux.Identity{User: sub, Roles: stringList(claims[a.cfg.RolesClaim]), Claims: claims}
	g := &grant{user: sub, digest: sha256.Sum256([]byte(raw))}
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		g.exp = exp.Add(a.cfg.Leeway)
	}
	if !a.cfg.AuthenticateOnly {
		var dropped []string
		g.allowed, dropped = allowedPatterns(claims[a.cfg.ChannelsClaim], sub)
		if len(dropped) > 0 {
			a.log.Debug("jwtauth: unusable channel patterns in token", "sub", sub, "dropped", dropped)
		}
	}
	return id, g, "", false
}

// Incoming strips the token from every message, verifies it, identifies
// handshakes, refuses connects of expired sessions, and checks subscribes
// and publishes against the allowed channels.
func (a *Auth) Incoming(_ context.Context, m *bayeux.Message) {
	_, present := m.ExtField(a.cfg.Key)
	raw := ""
	if present {
		raw = m.ExtString(a.cfg.Key)
		m.DeleteExt(a.cfg.Key)
	}
	if m.Error != "" {
		return // an earlier extension refused it
	}
	handshake := m.Channel == channels.MetaHandshake
	now := a.cfg.Now()
	// session is the grant behind the session's identity; g the one that
	// authorises this message: the message's own token, else the session's.
	var session, g *grant
	if m.Session != nil && !handshake {
		session = a.grants.get(m.Session.Identity())
	}
	g = session
	var id *bayeux.Identity
	if present {
		if session != nil && session.digest == sha256.Sum256([]byte(raw)) {
			g = session // the token the session already presented
		} else {
			var final bool
			if id, g, m.Error, final = a.verify(raw); g == nil {
				m.Final = final && handshake
				return
			}
			if session != nil && g.user == session.user {
				// A renewed token for the same subject replaces the old one.
				m.Session.SetIdentity(id)
				a.grants.put(id, g)
				session = g
			}
		}
	}
	switch m.Channel {
	case channels.MetaUnsubscribe, channels.MetaDisconnect:
		return // always allowed, expired or not
	case channels.MetaConnect:
		g = session // the session's own token keeps it alive, not another one
	}
	if g != nil && g.expired(now) {
		m.Error = ErrTokenExpired
		return
	}
	switch {
	case handshake:
		if g != nil {
			m.Session.SetIdentity(id)
			a.grants.put(id, g)
		} else if !a.cfg.Optional {
			m.Error = ErrAuthRequired
		}
	case a.cfg.AuthenticateOnly:
	case m.Channel == channels.MetaSubscribe:
		for _, ch := range m.Subscriptions() {
			if !a.maySubscribe(g, ch) {
				m.RejectChannel(ch, ErrChannelNotAllowed) // the other channels may pass
				a.log.Debug("jwtauth: subscribe refused", "clientId", m.ClientID, "subscription", ch)
			}
		}
	case channels.IsMeta(m.Channel), m.FromServer():
		// A protocol message, or the server's own publish.
	default:
		if !a.mayPublish(g, m.Channel) {
			m.Error = ErrChannelNotAllowed
			a.log.Debug("jwtauth: publish refused", "clientId", m.ClientID, "channel", m.Channel)
		}
	}
}

// maySubscribe reports whether g (nil: no token) may subscribe to pattern.
func (a *Auth) maySubscribe(g *grant, pattern string) bool {
	p, err := channels.ParsePattern(pattern)
	if err != nil {
		return false // the server refuses it anyway
	}
	var allowed []channels.Pattern
	if g != nil {
		allowed = g.allowed
	}
	for _, set := range [][]channels.Pattern{a.public, allowed} {
		for _, q := range set {
			if q.Covers(p) {
				return true
			}
		}
	}
	if !a.cfg.WideSubscriptions || p.IsName() {
		return false
	}
	for _, set := range [][]channels.Pattern{a.public, allowed} {
		for _, q := range set {
			if q.Overlaps(p) {
				return true
			}
		}
	}
	return false
}

// mayPublish reports whether g (nil: no token) may publish on channel.
func (a *Auth) mayPublish(g *grant, channel string) bool {
	return a.isPublic(channel) || (g != nil && g.matches(channel))
}

func (a *Auth) isPublic(channel string) bool {
	for _, p := range a.public {
		if p.Match(channel) {
			return true
		}
	}
	return false
}

// Delivery withholds a message from every recipient whose token does not
// allow its channel or has expired. Messages on Public channels, and every
// message with AuthenticateOnly, go to all subscribers (the fast path).
func (a *Auth) Delivery(_ context.Context, m *bayeux.Message) func(*bayeux.Session, *bayeux.Message) bool {
	if a.cfg.AuthenticateOnly || a.isPublic(m.Channel) {
		return nil
	}
	now := a.cfg.Now()
	return func(to *bayeux.Session, c *bayeux.Message) bool {
		g := a.grants.get(to.Identity())
		return g != nil && !g.expired(now) && g.matches(c.Channel)
	}
}
