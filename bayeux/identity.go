package bayeux

import "slices"

// Identity is what the server knows about the user behind a session. An
// extension sets it, usually at handshake; it stays with the session, is
// visible to later hooks, events and the server API, and is never sent to
// clients.
type Identity struct {
	// User identifies the user, for example a JWT's "sub".
	User string
	// Roles are the user's roles.
	Roles []string
	// Claims holds anything else known about the user (JWT claims, a back
	// end's answer).
	Claims map[string]any
}

// HasRole reports whether the identity holds role. A nil identity has none.
func (id *Identity) HasRole(role string) bool {
	return id != nil && slices.Contains(id.Roles, role)
}
