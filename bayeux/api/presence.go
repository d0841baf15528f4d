package api

import (
	"context"
	"net/http"

	"github.com/bayou-pubsub/bayou/channels"
	"github.com/bayou-pubsub/bayou/extensions/presence"
)

// Presence answers GET /presence: the presence extension
// (*presence.Presence) is one.
type Presence interface {
	// Tracks reports whether channel has presence.
	Tracks(channel string) bool
	// Members returns who is present on channel, on every node.
	Members(ctx context.Context, channel string) ([]presence.Member, error)
}

// presenceAnswer is the answer of GET /presence.
type presenceAnswer struct {
	Channel string            `json:"channel"`
	Members []presence.Member `json:"members"`
}

// presence answers GET /presence?channel=/chat/room1: the members of the
// channel, on every node.
func (h *handler) presence(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "channel"); err != nil {
		return err
	}
	ch, ok, err := queryParam(r.URL.Query(), "channel")
	switch {
	case err != nil:
		return err
	case !ok || ch == "":
		return errBadRequest(`query parameter "channel" is required`)
	case !channels.Wide.ValidName(ch):
		return errBadRequest("channel " + quote(ch) + " is not a channel name (patterns are not allowed)")
	case h.presenceOf == nil:
		return errNotFound("presence is not enabled on this server")
	case !h.presenceOf.Tracks(ch):
		return errNotFound(ch + " has no presence: no presence pattern covers it")
	}
	members, err := h.presenceOf.Members(r.Context(), ch)
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message: "the presence store did not answer; retry later", err: err}
	}
	if members == nil {
		members = []presence.Member{}
	}
	writeJSON(w, http.StatusOK, presenceAnswer{Channel: ch, Members: members})
	return nil
}
