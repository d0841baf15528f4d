package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// The example's channels.
const (
	// notifications is where each client receives the notifications
	// addressed to its user; only the server publishes there.
	notifications = "/notifications"
	// usersChannels are the users' own channels, /users/<user>/**.
	usersChannels = "/users/**"
)

// guide:begin errors
// The errors the extension refuses a handshake with. faye's client parses
// "<code>::<text>" into {code, message}.
const (
	errTokenRequired = "401::Token required"
	errInvalidToken  = "401::Invalid token"
)

// guide:end errors

// sentKey is the session attribute counting the notifications a session
// sent (see notifier.send).
const sentKey = "notify.sent"

// validUser is the form of a user name: one channel segment, so that
// /users/<user>/** is a valid pattern.
var validUser = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// guide:begin auth-type
// tokenAuth is the example's extension. At handshake it reads the token a
// client sends in ext.auth.token, refuses the handshake when the token
// names no user, and attaches the user to the session. Afterwards it keeps
// every session within the user's rights: /users/<user>/** is the user's
// own, /notifications is the server's.
type tokenAuth struct {
	users map[[sha256.Size]byte]string // the SHA-256 of each token → its user
}

// guide:end auth-type

// newTokenAuth returns the extension accepting tokens, a map from each
// token to the user it names.
func newTokenAuth(tokens map[string]string) (*tokenAuth, error) {
	a := &tokenAuth{users: make(map[[sha256.Size]byte]string, len(tokens))}
	for tok, user := range tokens {
		if tok == "" {
			return nil, fmt.Errorf("an empty token (for %q)", user)
		}
		if !validUser.MatchString(user) {
			return nil, fmt.Errorf("user %q: a user name is 1 to 64 of a-z 0-9 _ -", user)
		}
		a.users[sha256.Sum256([]byte(tok))] = user
	}
	return a, nil
}

// guide:begin incoming
// Incoming checks every message a client sends.
func (a *tokenAuth) Incoming(_ context.Context, m *bayeux.Message) {
	if m.FromServer() {
		return // the server's own publishes: PublishTo on /notifications
	}
	if m.Channel == channels.MetaHandshake {
		a.handshake(m)
		return
	}
	user := userOf(m.Session)
	switch {
	case m.Channel == channels.MetaSubscribe && user != "":
		subscribe(m, user)
	case channels.IsMeta(m.Channel):
		// The other meta messages, and those of unknown clients, which
		// the server answers "401::Unknown client" (they handshake again).
	case user == "":
		m.Error = errTokenRequired // a publish without a session
	case m.Channel == notifications || !allowed(user, m.Channel):
		m.Error = bayeux.ErrorForbidden(m.Channel)
	}
}

// guide:end incoming

// guide:begin handshake
// handshake identifies the client by its token, or refuses it for good.
func (a *tokenAuth) handshake(m *bayeux.Message) {
	token := m.ExtString("auth", "token") // ext: {"auth": {"token": "..."}}
	if token == "" {
		m.Error, m.Final = errTokenRequired, true
		return
	}
	user, ok := a.users[sha256.Sum256([]byte(token))]
	if !ok {
		m.Error, m.Final = errInvalidToken, true // retrying will not help
		return
	}
	m.Session.SetIdentity(&bayeux.Identity{User: user})
	m.Session.Set(sentKey, new(atomic.Int64))
}

// guide:end handshake

// guide:begin subscribe
// subscribe refuses, one by one, the channels of a subscribe that reach
// another user's channels; the others are subscribed.
func subscribe(m *bayeux.Message, user string) {
	for _, ch := range m.Subscriptions() {
		if !allowed(user, ch) {
			m.RejectChannel(ch, bayeux.ErrorForbidden(ch))
		}
	}
}

// allowed reports whether user may use pattern, a channel or a
// subscription with wildcards: a pattern that reaches any user's channels
// must stay within the user's own. So /users/ana/** is ana's, and /** or
// /users/* are nobody's: they reach bob's channels too.
func allowed(user, pattern string) bool {
	if !channels.Reaches(pattern, usersChannels) {
		return true
	}
	return channels.Covers("/users/"+user+"/**", pattern)
}

// guide:end subscribe

// guide:begin outgoing
// Outgoing tells a client who it is, in the ext of its handshake reply.
func (a *tokenAuth) Outgoing(_ context.Context, r *bayeux.Reply) {
	if r.Channel != channels.MetaHandshake || !r.Successful {
		return
	}
	if user := userOf(r.Session); user != "" {
		name, _ := json.Marshal(user)
		r.Ext = withExtField(r.Ext, "user", string(name))
	}
}

// withExtField returns the ext object ext (maybe "", or {"ack":true} when
// the client asked for acknowledgements) with the field key set to raw:
// an Outgoing hook adds to ext, never replaces it.
func withExtField(ext, key, raw string) string {
	field, _ := json.Marshal(key)
	if len(ext) < 2 || ext == "{}" {
		return "{" + string(field) + ":" + raw + "}"
	}
	return ext[:len(ext)-1] + "," + string(field) + ":" + raw + "}"
}

// guide:end outgoing

// guide:begin delivery
// Delivery keeps the messages of /users/<user>/** for user's sessions,
// whatever subscription reached them: a second lock behind subscribe's.
// For every other channel it returns nil, and the publication keeps the
// fast path (one encoding for all its subscribers).
func (a *tokenAuth) Delivery(_ context.Context, m *bayeux.Message) func(*bayeux.Session, *bayeux.Message) bool {
	if !channels.Match(usersChannels, m.Channel) {
		return nil
	}
	owner := strings.Clone(userSegment(m.Channel)) // m's strings are not ours to keep
	return func(to *bayeux.Session, _ *bayeux.Message) bool {
		return userOf(to) == owner
	}
}

// guide:end delivery

// userSegment returns the user of a channel /users/<user>/...
func userSegment(channel string) string {
	user, _, _ := strings.Cut(strings.TrimPrefix(channel, "/users/"), "/")
	return user
}

// guide:begin user-of
// userOf returns the user of a session: "" for none (a nil session, as
// for a publish without a clientId; or one without an identity).
func userOf(s *bayeux.Session) string {
	if id := s.Identity(); id != nil { // Identity accepts a nil session
		return id.User
	}
	return ""
}

// guide:end user-of
