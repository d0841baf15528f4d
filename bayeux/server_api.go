package bayeux

import (
	"context"
	"errors"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/channels"
)

// ErrUnknownClient is returned for a clientId that names no session on this
// node.
var ErrUnknownClient = errors.New("bayeux: unknown client")

// RejectedError is returned when a server publish is refused: by an
// extension, or because the channel or data is invalid. Message is the
// Bayeux error string a client would have received.
type RejectedError struct {
	Channel string
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("bayeux: publish to %s rejected: %s", e.Channel, e.Message)
}

// PublishOption changes how Server.Publish delivers a message.
type PublishOption func(*publishOptions)

type publishOptions struct {
	ext      string
	exclude  string
	audience *Audience           // PublishTo: every node, these sessions only
	local    func(*Session) bool // PublishLocal: this node, the sessions it accepts
}

// WithExt sets the message's ext object (raw JSON).
func WithExt(ext string) PublishOption { return func(o *publishOptions) { o.ext = ext } }

// Excluding leaves out one client, typically the one the message comes
// from.
func Excluding(clientID string) PublishOption {
	return func(o *publishOptions) { o.exclude = clientID }
}

// newServerMessage builds a message the server sends itself: never on a
// meta channel, within the limits of clients' messages, data as JSON,
// options applied.
func (s *Server) newServerMessage(channel string, data any, opts []PublishOption) (Message, *publishOptions, error) {
	if channels.IsMeta(channel) {
		return Message{}, nil, &RejectedError{Channel: channel, Message: ErrorForbidden(channel)}
	}
	if msg := s.lim.channelError(channel); msg != "" {
		return Message{}, nil, &RejectedError{Channel: channel, Message: msg}
	}
	raw, err := rawJSON(data)
	if err != nil {
		return Message{}, nil, err
	}
	o := &publishOptions{}
	for _, opt := range opts {
		opt(o)
	}
	if nestingExceeds([]byte(raw), s.lim.depth) || nestingExceeds([]byte(o.ext), s.lim.depth) {
		return Message{}, nil, &RejectedError{Channel: channel, Message: fmt.Sprintf("400::JSON nested more than %d deep", s.lim.depth)}
	}
	if o.ext != "" && (!gjson.Valid(o.ext) || !gjson.Parse(o.ext).IsObject()) {
		return Message{}, nil, fmt.Errorf("bayeux: ext is not a JSON object: %.40q", o.ext)
	}
	return Message{Channel: channel, Data: raw, Ext: validUTF8(o.ext)}, o, nil
}

// Publish publishes data on channel as if a client had: the incoming
// extensions see it (with a nil Request and Session), it is validated, and
// it reaches every subscriber across nodes. data is marshalled to JSON (a
// json.RawMessage is sent as is). A /service channel reaches only the
// in-process subscribers and the service handler.
func (s *Server) Publish(ctx context.Context, channel string, data any, opts ...PublishOption) error {
	m, o, err := s.newServerMessage(channel, data, opts)
	if err != nil {
		return err
	}
	failed := s.newExchange(ctx, nil, nil).handle(&m, o)
	if m.Channel != channel || channels.IsMeta(m.Channel) {
		return &RejectedError{Channel: channel, Message: "an extension changed the channel"}
	}
	if failed != "" {
		return &RejectedError{Channel: channel, Message: failed}
	}
	return nil
}

// Deliver sends a message on channel to one client only, whether or not it
// subscribes to channel; WithExt sets its ext. In a cluster the client may
// be on any node: ctx bounds the look-up and the hand-over (at most
// Config.WriteTimeout either way).
func (s *Server) Deliver(ctx context.Context, clientID, channel string, data any, opts ...PublishOption) error {
	m, _, err := s.newServerMessage(channel, data, opts)
	if err == nil && !s.cfg.Grammar.ValidName(channel) {
		err = &RejectedError{Channel: channel, Message: ErrorInvalidChannel(channel)}
	}
	if err != nil {
		return err
	}
	msg := encodeDelivery(&m)
	if sess := s.sessions.get(clientID); sess != nil {
		s.deliverTo(sess, msg)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	if owner := s.remoteOwner(ctx, clientID); owner != "" {
		return s.cluster.send(ctx, owner, &nodeMsg{T: "deliver", ID: clientID, From: s.cluster.self, Items: rawItems([][]byte{msg})})
	}
	return fmt.Errorf("%w: %s", ErrUnknownClient, clientID)
}

// deliverTo queues msg for sess, ending the session if it is too slow.
func (s *Server) deliverTo(sess *Session, msg []byte) {
	if !sess.enqueue(msg) {
		s.crew.spawn(func() { s.end(sess, EndSlow) })
	}
}

// Subscribe calls handler for every message published on a channel matching
// pattern, on any node. Unlike clients, in-process subscribers may listen to
// /service/** (requests to services) and /meta/** (the protocol messages
// clients send, after they are handled). The handler runs on the
// publisher's goroutine and must not block; the Message is only valid during
// the call. The returned function cancels the subscription.
func (s *Server) Subscribe(pattern string, handler func(*Message)) (cancel func(), err error) {
	if !s.cfg.Grammar.Valid(pattern) {
		return nil, fmt.Errorf("bayeux: invalid channel pattern %q", pattern)
	}
	broadcast := !channels.IsMeta(pattern) && !channels.IsService(pattern)
	if broadcast {
		if err := s.acquire(s.ctx, pattern); err != nil {
			return nil, fmt.Errorf("bayeux: subscribing to %s: %w", pattern, err)
		}
	}
	ls := &localSub{pattern: pattern, handler: handler}
	s.local.subs.Add(pattern, ls)
	s.local.count.Add(1)
	var done bool
	return func() {
		if done {
			return
		}
		done = true
		if removed, _ := s.local.subs.Remove(pattern, ls); removed {
			s.local.count.Add(-1)
			if broadcast {
				s.release(pattern)
			}
		}
	}, nil
}

// HandleService registers the handler that answers messages published to
// the /service channels matching pattern (for example "/service/echo" or
// "/service/**"); see ServiceHandler.
func (s *Server) HandleService(pattern string, h ServiceHandler) error {
	if !channels.IsService(pattern) || !s.cfg.Grammar.Valid(pattern) {
		return fmt.Errorf("bayeux: %q is not a /service channel or pattern", pattern)
	}
	s.local.mu.Lock()
	s.local.services = append(s.local.services, service{pattern: pattern, handler: h})
	s.local.mu.Unlock()
	return nil
}

// Disconnect ends a client's session as if it had disconnected: its held
// connect is answered, its socket closed, and its next message gets
// "401::Unknown client" with advice to handshake again. In a cluster the
// client may be on any node: ctx bounds the look-up and the hand-over.
func (s *Server) Disconnect(ctx context.Context, clientID string) error {
	if sess := s.sessions.get(clientID); sess != nil {
		s.end(sess, EndServer)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	if owner := s.remoteOwner(ctx, clientID); owner != "" {
		return s.cluster.send(ctx, owner, &nodeMsg{T: "disconnect", ID: clientID, From: s.cluster.self})
	}
	return fmt.Errorf("%w: %s", ErrUnknownClient, clientID)
}

// Done is closed when the server starts shutting down.
func (s *Server) Done() <-chan struct{} { return s.ctx.Done() }

// Session returns the session of clientID on this node, or nil.
func (s *Server) Session(clientID string) *Session { return s.sessions.get(clientID) }

// Sessions returns the number of sessions on this node (see Counts for the
// whole cluster).
func (s *Server) Sessions() int { return int(s.sessions.count.Load()) }

// Subscribers returns how many sessions subscribe to exactly pattern (a
// channel name or a wildcard pattern).
func (s *Server) Subscribers(pattern string) int { return s.index.Count(pattern) }

// Recipients returns the sessions that a message published on channel
// reaches: the subscribers of every pattern matching it, once each.
func (s *Server) Recipients(channel string) []*Session { return s.index.AppendMatch(nil, channel) }

// Channels calls fn for each channel name or pattern that sessions subscribe
// to, with its number of subscribers, until fn returns false.
func (s *Server) Channels(fn func(pattern string, subscribers int) bool) { s.index.Patterns(fn) }
