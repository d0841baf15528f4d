package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/tidwall/gjson"
)

// Meta channels of the Bayeux protocol.
// Message is one Bayeux message, as sent to or received from the server.
// Handlers receive deliveries, which carry Channel, Data and, when the
// publisher set them, ID and Ext; on channels with history the server adds
// the message's place in it to Ext (see Message.Position). Extensions see every message, including
// the protocol's /meta ones, with all their fields.
type Message struct {
	// Channel is the message's channel, such as "/chat/room-1" or
	// "/meta/connect".
	Channel string `json:"channel"`
	// ID identifies a request; the server echoes it in the reply.
	ID string `json:"id,omitempty"`
	// ClientID is the session id the server assigned at handshake.
	ClientID string `json:"clientId,omitempty"`
	// Data is the JSON payload of a publish or a delivery, exactly as it
	// arrived; nil when the message has none (replies and meta messages).
	Data json.RawMessage `json:"data,omitempty"`
	// Ext is the free-form extension object (authentication tokens, for
	// example); see SetExt.
	Ext map[string]any `json:"ext,omitempty"`
	// Successful reports, in a reply, whether the request succeeded.
	Successful bool `json:"successful,omitempty"`
	// Error is the error string of an unsuccessful reply; see ParseError.
	Error string `json:"error,omitempty"`
	// Advice is the server's connection advice (handshake and connect
	// replies), or the hold time a client asks for on a /meta/connect.
	Advice *Advice `json:"advice,omitempty"`
	// Subscription is the channel or pattern of a /meta/subscribe or
	// /meta/unsubscribe and of its reply.
	Subscription string `json:"subscription,omitempty"`
	// ConnectionType is the transport of a /meta/connect.
	ConnectionType string `json:"connectionType,omitempty"`
	// Version is the protocol version of a handshake ("1.0").
	Version string `json:"version,omitempty"`
	// SupportedConnectionTypes lists transports in a handshake and its
	// reply.
	SupportedConnectionTypes []string `json:"supportedConnectionTypes,omitempty"`
}

// Advice tells the client how to keep its connection, as described by the
// Bayeux protocol. A nil field was absent from the message.
type Advice struct {
	// Reconnect is "retry" (send the next /meta/connect after Interval),
	// "handshake" (the session is gone: handshake again after Interval)
	// or "none" (stop).
	Reconnect string `json:"reconnect,omitempty"`
	// Interval is the pause in milliseconds before the next connect or
	// handshake.
	Interval *int64 `json:"interval,omitempty"`
	// Timeout is how long in milliseconds the server holds a /meta/connect
	// when it has nothing to deliver.
	Timeout *int64 `json:"timeout,omitempty"`
}

// SetExt sets the ext field key to v, creating the ext object if needed.
// Typical use is an outgoing extension adding a credential:
//
//	m.SetExt("token", token)
func (m *Message) SetExt(key string, v any) {
	if m.Ext == nil {
		m.Ext = make(map[string]any)
	}
	m.Ext[key] = v
}

// isMeta reports whether channel is a protocol channel (first segment
// "meta").
func isMeta(channel string) bool {
	return channel == "/meta" || strings.HasPrefix(channel, "/meta/")
}

// clone returns a copy of m that can be changed without affecting m (the
// ext map is copied one level deep; Data is shared, never modified).
func (m *Message) clone() *Message {
	c := *m
	if m.Ext != nil {
		c.Ext = maps.Clone(m.Ext)
	}
	if m.Advice != nil {
		a := *m.Advice
		c.Advice = &a
	}
	return &c
}

// encodeData marshals a publish payload; a json.RawMessage is used as is
// and nil becomes JSON null.
func encodeData(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case json.RawMessage:
		if !json.Valid(d) {
			return nil, errors.New("data is not valid JSON")
		}
		return d, nil
	case nil:
		return json.RawMessage("null"), nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding data: %w", err)
	}
	return b, nil
}

// decodeMessages parses a response body or a WebSocket frame: a JSON array
// of messages or a single message object.
func decodeMessages(b []byte) ([]*Message, error) {
	if !gjson.ValidBytes(b) {
		return nil, errors.New("response is not valid JSON")
	}
	r := gjson.ParseBytes(b)
	switch {
	case r.IsArray():
		var out []*Message
		var bad bool
		r.ForEach(func(_, v gjson.Result) bool {
			if !v.IsObject() {
				bad = true
				return false
			}
			out = append(out, decodeMessage(v))
			return true
		})
		if bad {
			return nil, errors.New("response array holds a non-object")
		}
		return out, nil
	case r.IsObject():
		return []*Message{decodeMessage(r)}, nil
	}
	return nil, errors.New("response is neither a message nor an array of messages")
}

func decodeMessage(r gjson.Result) *Message {
	m := &Message{}
	r.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "channel":
			m.Channel = v.String()
		case "id":
			m.ID = v.String()
		case "clientId":
			m.ClientID = v.String()
		case "data":
			m.Data = json.RawMessage(v.Raw)
		case "ext":
			if ext, ok := v.Value().(map[string]any); ok {
				m.Ext = ext
			}
		case "successful":
			m.Successful = v.Bool()
		case "error":
			m.Error = v.String()
		case "advice":
			if v.IsObject() {
				m.Advice = decodeAdvice(v)
			}
		case "subscription":
			if v.IsArray() {
				m.Subscription = v.Get("0").String()
			} else {
				m.Subscription = v.String()
			}
		case "connectionType":
			m.ConnectionType = v.String()
		case "version":
			m.Version = v.String()
		case "supportedConnectionTypes":
			for _, t := range v.Array() {
				m.SupportedConnectionTypes = append(m.SupportedConnectionTypes, t.String())
			}
		}
		return true
	})
	return m
}

func decodeAdvice(r gjson.Result) *Advice {
	a := &Advice{Reconnect: r.Get("reconnect").String()}
	if v := r.Get("interval"); v.Type == gjson.Number {
		n := v.Int()
		a.Interval = &n
	}
	if v := r.Get("timeout"); v.Type == gjson.Number {
		n := v.Int()
		a.Timeout = &n
	}
	return a
}
