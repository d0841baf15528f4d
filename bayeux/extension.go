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
// validated and handled. Compare m.Channel with the constants of package
// channels (channels.MetaHandshake, MetaConnect, MetaSubscribe,
// MetaUnsubscribe, MetaDisconnect; channels.IsMeta and IsService for the
// families): meta channels are matched exactly, so /meta/subscribe/x is not
// a subscribe. An incoming hook may:
//
//   - read ext with ExtString and ExtField (nested keys too:
//     m.ExtString("auth", "token")) and rewrite it with SetExt and DeleteExt;
//   - reject the message by setting m.Error to a Bayeux error string, built
//     with ErrorForbidden, ErrorInvalidChannel, ErrorUnknownClient or
//     ErrorParameterMissing, or free text (the client receives it
//     verbatim: "403::Forbidden" parses as code 403); with m.Final on a
//     handshake or connect the client is told not to retry;
//   - reject some channels of a subscribe and let the others through, with
//     m.RejectChannel. A subscription is a pattern: test it against the
//     channels it guards with channels.Reaches, not by name, or /** and
//     /private/* walk past a rule for /private/secret;
//   - attach an identity to the sender's session with m.Session.SetIdentity,
//     and keep its own per-session state with m.Session.Set — at handshake
//     m.Session is the session being created, discarded if the handshake
//     fails.
//
// Messages the server publishes itself (Server.Publish and the calls built
// on it) pass through Incoming too: m.FromServer reports them, so that rules
// meant for clients can let them through. Nothing a client sends sets it; do
// not infer it from a nil Request or Session.
//
// The ext a client publishes is not forwarded to subscribers (unless
// Config.ForwardExt): what an Incoming hook sets with SetExt is, so a hook
// decides what subscribers see. Credentials in a publish's ext never reach
// other clients, whether or not an extension deletes them.
//
// Outgoing is called for each reply before it is encoded; it may change the
// reply (add ext, change advice). Copies of published messages delivered to
// subscribers do not pass through Outgoing: implement DeliveryFilter to see
// them.
//
// The context of both hooks follows one rule on every transport: it
// carries the values of the HTTP request the batch arrived in (for a
// WebSocket, of its upgrade request; for the server's own publishes, the
// ctx given to Publish, cancellation included), and it ends when the server
// shuts down or Config.HookTimeout after the batch's first hook ran,
// whichever comes first. It does not end when a long-polling client goes
// away. A held /meta/connect is not cut short by HookTimeout: its reply,
// when it is finally sent, passes through Outgoing with a context of its
// own.
//
// Hooks run on the goroutine handling the batch, one message after the
// other, and delay its replies (and a WebSocket's next frames) while they
// run: see the package documentation, Concurrency. Embed NopExtension to
// implement only one of the two.
type Extension interface {
	Incoming(ctx context.Context, m *Message)
	Outgoing(ctx context.Context, r *Reply)
}

// DeliveryFilter is implemented by extensions that decide, per recipient,
// whether and how a published message is delivered: access control on
// wildcard subscriptions, per-user redaction, identity-filtered broadcast.
//
// Delivery is called once per publication on each node, with the message as
// subscribers will receive it (channel, data, id, ext), and the server's
// context, which ends when the server shuts down. It returns nil when
// the message goes to every subscriber unchanged, which keeps the fast path
// (one encoding shared by all recipients). Otherwise it returns a function
// called for each recipient with a private copy of the message: it may
// change the copy's Data or Ext (the copy is then encoded for that recipient
// alone), and returns false to withhold the message from that recipient.
type DeliveryFilter interface {
	Delivery(ctx context.Context, m *Message) func(to *Session, m *Message) bool
}

// An Attacher is an Extension that needs the server it is part of, as a
// faye extension's added callback gets it: New calls Attach once for each
// such extension, in the order of Config.Extensions, once the server is
// built and its engine started, before New returns. Attach may register
// service handlers (Server.HandleService), follow sessions (Server.Observe)
// and start the extension's background work (Server.Go, which Shutdown
// ends). An error fails New, which then shuts the server down.
type Attacher interface {
	Attach(srv *Server) error
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

// ExtField returns the raw JSON of the ext field key and whether it
// exists. Further keys name a nested field: m.ExtField("auth", "token") is
// ext.auth.token. Keys are taken literally (a dot is part of the key).
func (m *Message) ExtField(key string, path ...string) (string, bool) {
	if m.Ext == "" {
		return "", false
	}
	r := gjson.Get(m.Ext, extPath(key, path))
	return r.Raw, r.Exists()
}

// ExtString returns the ext field key (with further keys, a nested field,
// as for ExtField) as a string: "" when absent or not a string.
func (m *Message) ExtString(key string, path ...string) string {
	if m.Ext == "" {
		return ""
	}
	r := gjson.Get(m.Ext, extPath(key, path))
	if r.Type != gjson.String {
		return ""
	}
	return r.Str
}

// extPath returns the gjson path of the nested ext field key.path...
func extPath(key string, path []string) string {
	p := gjson.Escape(key)
	for _, k := range path {
		p += "." + gjson.Escape(k)
	}
	return p
}

// FromServer reports whether the message was published by the server
// itself (Server.Publish and the calls built on it) rather than received
// from a client. Only the server sets it.
func (m *Message) FromServer() bool { return m.fromServer }

// RejectChannel refuses one channel of a subscribe (or unsubscribe), as
// Subscriptions returns it, with the Bayeux error err (ErrorForbidden when
// err is ""). The message's other channels are still handled. The reply
// is one reply, as faye and CometD clients expect for a message: it
// fails (successful false) when any channel was rejected, so that no
// client believes it holds a subscription it was refused; its error is
// the first rejection's, its subscription echoes the request, and its ext
// maps every rejected channel to its error, so that a client can tell
// which channels did subscribe:
//
//	"ext": {"rejected": {"/a": "403:/a:Forbidden channel"}}
//
// Setting m.Error instead refuses the whole message. On other messages
// RejectChannel has no effect.
func (m *Message) RejectChannel(channel, err string) {
	if err == "" {
		err = ErrorForbidden(channel)
	}
	for _, r := range m.rejected {
		if r.channel == channel {
			return
		}
	}
	m.rejected = append(m.rejected, rejection{channel: channel, err: err})
}

// rejection returns the error an extension rejected channel with, if it
// did.
func (m *Message) rejection(channel string) (string, bool) {
	for _, r := range m.rejected {
		if r.channel == channel {
			return r.err, true
		}
	}
	return "", false
}

// AfterReply runs f once the reply to the message is on its way to the
// client: after it was written to the WebSocket, or into the long-polling
// response, together with the rest of the batch's replies. Call it from an
// Incoming hook to send a client something that must reach it after the
// reply: faye's client ignores messages on a channel until the reply to its
// subscribe has arrived, so a welcome message or a snapshot sent to a new
// subscriber belongs in f (f checks that the subscribe succeeded, with
// Session.Subscribed). For the server's own publishes, f runs once the
// message is handled. f runs on the goroutine that wrote the replies and
// must not block. Called outside the handling of the message, AfterReply
// runs nothing and reports false.
func (m *Message) AfterReply(f func()) bool {
	if m.x == nil {
		return false
	}
	m.x.after = append(m.x.after, f)
	return true
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

// appendRejectedExt adds to the ext object b (nil: none yet) the field
// "rejected", mapping each rejected channel to its error.
func appendRejectedExt(b []byte, refused []rejection) []byte {
	if len(b) == 0 {
		b = append(b, '{')
	} else {
		b = append(b[:len(b)-1], ',')
	}
	b = append(b, `"rejected":{`...)
	for i, r := range refused {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, r.channel)
		b = append(b, ':')
		b = appendString(b, r.err)
	}
	return append(b, "}}"...)
}

// deliveredExt returns the ext subscribers receive from a client's
// publish when the ext it sent is not forwarded: the fields of now (the
// ext after the incoming extensions) that are not as they were in sent.
func deliveredExt(sent, now string) string {
	if now == sent || now == "" {
		return ""
	}
	if sent == "" || !gjson.Parse(now).IsObject() {
		return now
	}
	old := gjson.Parse(sent)
	b := []byte{'{'}
	gjson.Parse(now).ForEach(func(k, v gjson.Result) bool {
		if o := old.Get(gjson.Escape(k.String())); o.Exists() && o.Raw == v.Raw {
			return true
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, k.Raw...)
		b = append(b, ':')
		b = append(b, v.Raw...)
		return true
	})
	if len(b) == 1 {
		return ""
	}
	return string(append(b, '}'))
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
