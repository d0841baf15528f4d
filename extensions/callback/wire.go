package callback

import (
	"encoding/json"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// Request is the JSON body POSTed to the back end for each operation.
//
//	{"type": "subscribe", "clientId": "k3…", "channel": "/meta/subscribe",
//	 "subscription": "/users/u1/**", "ext": {"token": "…"},
//	 "headers": {"Authorization": "Bearer …"}, "ip": "203.0.113.9",
//	 "identity": {"user": "u1", "roles": ["member"]}}
type Request struct {
	// Type is "handshake", "subscribe" or "publish".
	Type string `json:"type"`
	// ClientID is the sender's clientId (at handshake, the one it will get
	// if allowed); empty for a publish without one.
	ClientID string `json:"clientId,omitempty"`
	// Channel is the message's channel: /meta/handshake, /meta/subscribe
	// or the channel published to.
	Channel string `json:"channel"`
	// Subscription is the channel or pattern subscribed to (one request
	// per subscription of a message).
	Subscription string `json:"subscription,omitempty"`
	// Data is the published data, sent only with Config.IncludeData.
	Data json.RawMessage `json:"data,omitempty"`
	// Ext is the message's ext, credentials included.
	Ext json.RawMessage `json:"ext,omitempty"`
	// Headers holds the HTTP request headers named in Config.Headers that
	// the request had (for a WebSocket, its upgrade request's).
	Headers map[string]string `json:"headers,omitempty"`
	// IP is the client's address (bayeux.ClientIP: behind one of the
	// server's TrustedProxies, the address X-Forwarded-For names); empty
	// when unknown.
	IP string `json:"ip,omitempty"`
	// Identity is the session's current identity, if it has one.
	Identity *Identity `json:"identity,omitempty"`
}

// Answer is the back end's JSON reply.
//
//	{"allow": false, "error": "403::Not a member", "final": false}
//	{"allow": true, "identity": {"user": "u1", "roles": ["member"], "claims": {"plan": "pro"}}}
type Answer struct {
	// Allow lets the operation through; false or absent refuses it.
	Allow bool `json:"allow"`
	// Error is the error string the client receives when refused
	// (default "403::Forbidden"); "<code>::<text>" parses as {code, message}
	// in faye.
	Error string `json:"error,omitempty"`
	// Final, on a refused handshake, tells the client not to retry.
	Final bool `json:"final,omitempty"`
	// Identity, when allowed, becomes the session's identity.
	Identity *Identity `json:"identity,omitempty"`
}

// Identity is a session identity as JSON.
type Identity struct {
	// User identifies the user.
	User string `json:"user"`
	// Roles are the user's roles.
	Roles []string `json:"roles,omitempty"`
	// Claims holds anything else the back end knows about the user.
	Claims map[string]any `json:"claims,omitempty"`
}

func fromIdentity(id *bayeux.Identity) *Identity {
	if id == nil {
		return nil
	}
	return &Identity{User: id.User, Roles: id.Roles, Claims: id.Claims}
}

func (id *Identity) toIdentity() *bayeux.Identity {
	return &bayeux.Identity{User: id.User, Roles: id.Roles, Claims: id.Claims}
}
