package bayeux

import (
	"errors"
	"net/http"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Message is one Bayeux message as received from a client. String fields
// hold decoded values; the fields documented as raw hold the exact JSON text
// that arrived (for example Data is forwarded to subscribers byte for byte).
//
// The strings of a Message may alias the request buffer they were parsed
// from: copy them (strings.Clone) before keeping them past the handling of
// the message.
type Message struct {
	// Channel is the message's channel; empty when absent.
	Channel string
	// ClientID is the sender's session id; empty when absent.
	ClientID string
	// ID is the raw JSON of the message's "id" (a string with its quotes, or a
	// number); empty when absent. Replies echo it unchanged.
	ID string
	// ConnectionType is the transport named by a /meta/connect.
	ConnectionType string
	// Version is the protocol version of a handshake; empty when absent or
	// falsy.
	Version string
	// ConnectionTypes lists a handshake's supportedConnectionTypes.
	ConnectionTypes []string
	// HasConnectionTypes reports whether supportedConnectionTypes was present
	// (and truthy).
	HasConnectionTypes bool
	// Subscription is the raw JSON of a (un)subscribe's "subscription": a
	// string or an array of strings; empty when absent or falsy.
	Subscription string
	// Data is the raw JSON of "data"; empty when absent ("null" when null).
	Data string
	// Ext is the raw JSON of "ext"; empty when absent.
	Ext string
	// AdviceTimeout is the hold time in milliseconds the client asked for in
	// advice.timeout; valid only when HasAdviceTimeout.
	AdviceTimeout    int64
	HasAdviceTimeout bool
	// Error is set by an incoming extension to reject the message. The
	// client receives it verbatim unless a validation error replaces it.
	Error string
	// Final, set with Error on a handshake or connect, tells the client not
	// to retry (advice reconnect "none"): use it when a failure will not go
	// away, such as bad credentials.
	Final bool

	// Session is the sender's session: the one named by ClientID, or at
	// handshake the session being created. It is nil for anonymous
	// publishes and unknown clientIds.
	Session *Session
	// Request is the HTTP request the message arrived in (for a WebSocket,
	// its upgrade request); nil for messages from the server itself, and
	// for a WebSocket's when no extension is configured. Tell the server's
	// own messages by FromServer, not by a nil Request.
	Request *http.Request

	// invalid is the error of a message refused before anything else looks
	// at it (invalid UTF-8, a channel over the limits).
	invalid string
	// fromServer marks a message published through the server API (see
	// FromServer); clients cannot set it.
	fromServer bool
	// rejected holds the channels of a subscribe that extensions refused
	// one by one (see RejectChannel), in the order refused.
	rejected []rejection
	// x is the exchange handling the message (see AfterReply).
	x *exchange
	// stripExt says that subscribers receive forwardExt instead of Ext:
	// the ext a client published is not forwarded (Config.ForwardExt).
	stripExt   bool
	forwardExt string
}

// rejection is a channel of a subscribe refused by an extension.
type rejection struct{ channel, err string }

// errBadRequest reports input that is not a Bayeux request at all: the
// transports answer it with HTTP 400 (or, on a WebSocket, ignore the frame).
var errBadRequest = errors.New("bayeux: malformed request")

// bytesString returns the bytes of b as a string without copying; b must
// not be modified while the string is in use.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseMessage reads the fields of one message in a single pass. A value
// that is not an object yields an empty message, which is answered as an
// invalid channel.
func parseMessage(v gjson.Result) Message {
	var m Message
	if !v.IsObject() {
		return m
	}
	v.ForEach(func(k, f gjson.Result) bool {
		switch k.Str {
		case "channel":
			m.Channel = stringOf(f)
		case "clientId":
			if truthy(f) {
				m.ClientID = stringOf(f)
			}
		case "id":
			if truthy(f) {
				m.ID = f.Raw
			}
		case "connectionType":
			if truthy(f) {
				m.ConnectionType = stringOf(f)
			}
		case "version":
			if truthy(f) {
				m.Version = stringOf(f)
			}
		case "supportedConnectionTypes":
			if truthy(f) {
				m.HasConnectionTypes = true
				if f.IsArray() {
					f.ForEach(func(_, t gjson.Result) bool {
						m.ConnectionTypes = append(m.ConnectionTypes, stringOf(t))
						return true
					})
				} else {
					m.ConnectionTypes = []string{stringOf(f)}
				}
			}
		case "subscription":
			if truthy(f) {
				m.Subscription = f.Raw
			}
		case "data":
			m.Data = f.Raw
		case "ext":
			m.Ext = f.Raw
		case "advice":
			if t := f.Get("timeout"); t.Type == gjson.Number {
				m.AdviceTimeout, m.HasAdviceTimeout = t.Int(), true
			}
		}
		return true
	})
	return m
}

// stringOf returns a field's value as a string: a string's contents, a
// number's JSON text as written, and for other values what
// gjson.Result.String returns ("true", "false", "" for null, the JSON text
// of an array or object). gjson.Result.String would write a number that is
// not a plain integer out in full: the 5 bytes 1e308 would become 309
// digits, echoed in the error replies, so that a request could draw a
// reply about 50 times its size. Kept as written, no field is longer than
// its JSON text.
func stringOf(r gjson.Result) string {
	if r.Type == gjson.Number {
		return r.Raw
	}
	return r.String()
}

// truthy reports whether a JSON value is truthy in JavaScript's sense, which
// is how faye decides whether a required field is present.
func truthy(r gjson.Result) bool {
	switch r.Type {
	case gjson.String:
		return r.Str != ""
	case gjson.Number:
		return r.Num != 0
	case gjson.True, gjson.JSON:
		return true
	}
	return false
}

// subscriptions returns the channel names of a raw subscription value.
func subscriptions(raw string) []string {
	r := gjson.Parse(raw)
	if !r.IsArray() {
		return []string{stringOf(r)}
	}
	var out []string
	r.ForEach(func(_, v gjson.Result) bool {
		out = append(out, stringOf(v))
		return true
	})
	return out
}
