package bayeux

import (
	"context"
	"slices"
)

// Audience names the sessions that a publish made with Server.PublishTo
// reaches, among the subscribers of its channel. A session is in the
// audience when its identity's User is one of Users, or its identity holds
// one of Roles, or its clientId is one of ClientIDs. Anonymous sessions
// (without an Identity) are never in it unless ClientIDs names them, and
// an empty string in any list names no one: an anonymous session does not
// pass for a user whose name is empty.
//
// An Audience is data, not code, so that it travels with the publication
// to every node of a cluster; each node applies it to its own sessions.
type Audience struct {
	// Users are user names (Identity.User).
	Users []string
	// Roles are roles (Identity.Roles).
	Roles []string
	// ClientIDs are clientIds of sessions.
	ClientIDs []string
}

// Includes reports whether sess is in the audience. A nil session is not.
func (a *Audience) Includes(sess *Session) bool {
	if sess == nil {
		return false
	}
	as := audienceSet{users: nameSet{list: a.Users}, roles: nameSet{list: a.Roles}, ids: nameSet{list: a.ClientIDs}}
	return as.includes(sess.id, sess.Identity())
}

// audienceSet is an Audience prepared for matching many sessions: long
// lists become sets.
type audienceSet struct {
	users, roles, ids nameSet
}

func newAudienceSet(a *Audience) *audienceSet {
	return &audienceSet{users: newNameSet(a.Users), roles: newNameSet(a.Roles), ids: newNameSet(a.ClientIDs)}
}

// includes reports whether the session clientID, of identity id (nil when
// anonymous), is in the audience.
func (as *audienceSet) includes(clientID string, id *Identity) bool {
	if as.ids.has(clientID) {
		return true
	}
	if id == nil {
		return false
	}
	if as.users.has(id.User) {
		return true
	}
	for _, r := range id.Roles {
		if as.roles.has(r) {
			return true
		}
	}
	return false
}

// nameSetMap is the length from which a nameSet is a map.
const nameSetMap = 16

// nameSet is a set of names: the list itself while short, a map beyond.
// The empty name is never in it.
type nameSet struct {
	list []string
	m    map[string]struct{}
}

func newNameSet(names []string) nameSet {
	if len(names) < nameSetMap {
		return nameSet{list: names}
	}
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return nameSet{m: m}
}

func (n *nameSet) has(name string) bool {
	if name == "" {
		return false
	}
	if n.m != nil {
		_, ok := n.m[name]
		return ok
	}
	return slices.Contains(n.list, name)
}

// PublishTo publishes like Publish but delivers only to the subscribers in
// to (see Audience), on every node of a cluster: the audience travels with
// the message and each node applies it to its own sessions. In-process
// subscribers (Subscribe) get the message as they get any publish. Like
// every publish that is not for all subscribers, it is not kept in the
// channel's history.
func (s *Server) PublishTo(ctx context.Context, channel string, data any, to Audience, opts ...PublishOption) error {
	return s.Publish(ctx, channel, data, append(opts, func(o *publishOptions) { o.audience = &to })...)
}

// PublishLocal reaches only this node's sessions: in a cluster, the
// subscribers on other nodes never get the message. It publishes like
// Publish, to the local subscribers that filter accepts (all of them when
// filter is nil), and to this node's in-process subscribers. filter sees
// each recipient's Session (Session.Identity is nil for an anonymous one)
// and runs on the publisher's goroutine; it must not block. The message is
// not kept in the channel's history. Use PublishTo to reach users
// wherever they are connected.
func (s *Server) PublishLocal(ctx context.Context, channel string, data any, filter func(*Session) bool, opts ...PublishOption) error {
	if filter == nil {
		filter = func(*Session) bool { return true }
	}
	return s.Publish(ctx, channel, data, append(opts, func(o *publishOptions) { o.local = filter })...)
}
