package bayeux

import (
	"context"

	"github.com/tidwall/gjson"
)

// An Extension sees every message entering and every reply leaving the
// server, like a faye server extension.
//
// Incoming is called for each message a client (or the server's own Publish)
// sends, in the order the extensions are configured, before the message is
// validated and handled. It may rewrite the message (for example remove a
// secret from its ext with DeleteExt), reject it by setting m.Error (the
// client receives the string verbatim: "403::Forbidden" parses as code 403,
// free text is fine too), and attach an identity to the sender's session
// with m.Session.SetIdentity — at handshake m.Session is the session being
// created, discarded if the handshake fails.
//
// Outgoing is called for each reply before it is encoded; it may change the
// reply (add ext, change advice). Copies of published messages delivered to
// subscribers do not pass through Outgoing: implement DeliveryFilter to see
// them.
//
// Hooks run on the goroutine handling the request and must not block for
// long. Embed NopExtension to implement only one of the two.
type Extension interface {
	Incoming(ctx context.Context, m *Message)
	Outgoing(ctx context.Context, r *Reply)
}

// DeliveryFilter is implemented by extensions that decide, per recipient,
// whether and how a published message is delivered: access control on
// wildcard subscriptions, per-user redaction, identity-filtered broadcast.
//
// Delivery is called once per publication on each node, with the message as
// subscribers will receive it (channel, data, id, ext). It returns nil when
// the message goes to every subscriber unchanged, which keeps the fast path
// (one encoding shared by all recipients). Otherwise it returns a function
// called for each recipient with a private copy of the message: it may
// change the copy's Data or Ext (the copy is then encoded for that recipient
// alone), and returns false to withhold the message from that recipient.
type DeliveryFilter interface {
	Delivery(ctx context.Context, m *Message) func(to *Session, m *Message) bool
}

// NopExtension implements Extension with hooks that do nothing; embed it in
// an extension that needs only one of the hooks.
type NopExtension struct{}

// Incoming does nothing.
func (NopExtension) Incoming(context.Context, *Message) {}

// Outgoing does nothing.
func (NopExtension) Outgoing(context.Context, *Reply) {}

// Subscriptions returns the channels named by a subscribe or unsubscribe
// message (its subscription field may be one channel or an array).
func (m *Message) Subscriptions() []string {
	if m.Subscription == "" {
		return nil
	}
	return subscriptions(m.Subscription)
}

// ExtField returns the raw JSON of the ext field key and whether it exists.
func (m *Message) ExtField(key string) (string, bool) {
	if m.Ext == "" {
		return "", false
	}
	r := gjson.Get(m.Ext, gjson.Escape(key))
	return r.Raw, r.Exists()
}

// ExtString returns the ext field key as a string ("" when absent or not a
// string).
func (m *Message) ExtString(key string) string {
	if m.Ext == "" {
		return ""
	}
	r := gjson.Get(m.Ext, gjson.Escape(key))
	if r.Type != gjson.String {
		return ""
	}
	return r.Str
}

// DeleteExt removes the ext field key, so that, for example, a credential
// is not forwarded to subscribers. An ext left empty is removed.
func (m *Message) DeleteExt(key string) {
	if _, ok := m.ExtField(key); !ok {
		return
	}
	m.Ext = rebuildExt(m.Ext, key, "")
}

// SetExt sets the ext field key to the raw JSON value raw.
func (m *Message) SetExt(key, raw string) {
	m.Ext = rebuildExt(m.Ext, key, raw)
}

// rebuildExt returns the object ext without key, plus key:raw when raw is
// not empty; "" when nothing is left.
func rebuildExt(ext, key, raw string) string {
	b := []byte{'{'}
	n := 0
	if gjson.Get(ext, "@this").IsObject() {
		gjson.Parse(ext).ForEach(func(k, v gjson.Result) bool {
			if k.String() == key {
				return true
			}
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, k.Raw...)
			b = append(b, ':')
			b = append(b, v.Raw...)
			n++
			return true
		})
	}
	if raw != "" {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendString(b, key)
		b = append(b, ':')
		b = append(b, raw...)
		n++
	}
	if n == 0 {
		return ""
	}
	return string(append(b, '}'))
}
