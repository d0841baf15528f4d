package presence

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// DefaultPrefix is the default Config.Prefix.
const DefaultPrefix = "/presence"

// DefaultService is the default Config.Service.
const DefaultService = "/service/presence"

// Config configures a Presence.
type Config struct {
	// Channels are the patterns of the channels whose subscribers are
	// tracked, for example "/chat/*". Only subscriptions to a channel
	// (not to a wildcard pattern) make a session present. Required.
	Channels []string
	// Prefix is put before a channel's name to name its companion channel,
	// on which joins and leaves are published: "/presence" (the default)
	// makes /presence/chat/room1 the companion of /chat/room1.
	Prefix string
	// Service is the /service channel that answers who is present on a
	// channel. Default "/service/presence".
	Service string
	// Info returns what members of a channel show of a session beyond
	// its clientId and its identity's User (its JSON encoding; nil shows
	// nothing more). It is called when the session subscribes; keep
	// secrets out of it.
	Info func(s *bayeux.Session, channel string) any
	// Allow decides whether a session may see who is present on channel:
	// subscribe to its companion channel, or ask the service. Nil allows
	// every session. Access extensions (acl, jwtauth) also apply to
	// companion channels, as to any other channel.
	Allow func(s *bayeux.Session, channel string) bool
	// Store keeps the members. Default: the server's engine when it is a
	// Store (the Redis engine is), else a MemoryStore. An engine that spans
	// nodes but is not a Store is refused, since presence would then be
	// one node's.
	Store Store
	// SweepInterval is how often the node looks for members of dead nodes
	// to announce as gone, and retries what the store refused. Default 1s.
	SweepInterval time.Duration
	// Logger receives the failures of the store. Default: none.
	Logger *slog.Logger
}

// Member is a session present on a channel.
type Member struct {
	// ClientID is the session's clientId.
	ClientID string `json:"clientId"`
	// User is the User of the session's identity; empty when anonymous.
	User string `json:"user,omitempty"`
	// Info is what Config.Info returned, as JSON.
	Info json.RawMessage `json:"info,omitempty"`
}

// Event is the data of a message on a companion channel.
type Event struct {
	// Action is "join" or "leave", or "members" for the list a new
	// subscriber of the companion channel is sent first.
	Action string `json:"action"`
	// Channel is the channel the event is about (not the companion).
	Channel string `json:"channel"`
	// Member is who joined or left.
	Member *Member `json:"member,omitempty"`
	// Members lists who is present, in the "members" event.
	Members []Member `json:"members,omitempty"`
}

// Presence is a bayeux.Extension (and bayeux.Attacher) that tracks who is
// subscribed to the channels of Config.Channels on every node, and tells
// clients: see the package documentation.
type Presence struct {
	bayeux.NopExtension
	cfg      Config
	patterns []string
	log      *slog.Logger

	srv   *bayeux.Server
	store Store
	queue queue
}

// New returns a Presence to put in bayeux.Config.Extensions.
func New(cfg Config) (*Presence, error) {
	if len(cfg.Channels) == 0 {
		return nil, errors.New("presence: Config.Channels is empty")
	}
	for _, p := range cfg.Channels {
		if !(channels.ValidName(p) || channels.ValidPattern(p)) || channels.IsMeta(p) || channels.IsService(p) {
			return nil, fmt.Errorf("presence: %q is not a pattern of broadcast channels", p)
		}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")
	if !channels.ValidName(cfg.Prefix) || channels.IsWildcard(cfg.Prefix) || channels.IsMeta(cfg.Prefix) || channels.IsService(cfg.Prefix) {
		return nil, fmt.Errorf("presence: prefix %q is not a broadcast channel name", cfg.Prefix)
	}
	for _, p := range cfg.Channels {
		if channels.Overlap(p, cfg.Prefix+"/**") {
			return nil, fmt.Errorf("presence: pattern %q reaches the companion channels under %s", p, cfg.Prefix)
		}
	}
	if cfg.Service == "" {
		cfg.Service = DefaultService
	}
	if !channels.IsService(cfg.Service) || !channels.ValidName(cfg.Service) || channels.IsWildcard(cfg.Service) {
		return nil, fmt.Errorf("presence: %q is not a /service channel", cfg.Service)
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Presence{cfg: cfg, patterns: slices.Clone(cfg.Channels), log: log}
	p.queue.init()
	return p, nil
}

// Attach starts tracking the sessions of srv: New (of bayeux) calls it.
func (p *Presence) Attach(srv *bayeux.Server) error {
	if p.srv != nil {
		return errors.New("presence: already attached to a server")
	}
	p.store = p.cfg.Store
	if p.store == nil {
		switch e := srv.Engine().(type) {
		case Store:
			p.store = e
		case bayeux.Cluster:
			return fmt.Errorf("presence: the engine %T spans nodes but keeps no presence (not a presence.Store): set Config.Store", e)
		default:
			p.store = NewMemoryStore()
		}
	}
	if err := srv.HandleService(p.cfg.Service, p.serve); err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	p.srv = srv
	srv.Observe(bayeux.Events{Subscribe: p.subscribed, Unsubscribe: p.unsubscribed})
	srv.Go(p.run)
	return nil
}

// Tracks reports whether channel has presence: it is a channel (not a
// pattern) that a pattern of Config.Channels matches.
func (p *Presence) Tracks(channel string) bool {
	if channels.IsWildcard(channel) {
		return false
	}
	for _, pat := range p.patterns {
		if channels.Match(pat, channel) {
			return true
		}
	}
	return false
}

// Companion returns the companion channel of channel (Config.Prefix +
// channel).
func (p *Presence) Companion(channel string) string { return p.cfg.Prefix + channel }

// companionOf returns the channel whose companion ch is, if it is one.
func (p *Presence) companionOf(ch string) (string, bool) {
	rest, ok := strings.CutPrefix(ch, p.cfg.Prefix)
	if !ok || !strings.HasPrefix(rest, "/") {
		return "", false
	}
	return rest, true
}

// Members returns who is present on channel, in every node of the
// cluster, ordered by user and then clientId.
func (p *Presence) Members(ctx context.Context, channel string) ([]Member, error) {
	if p.store == nil {
		return nil, errors.New("presence: not attached to a server")
	}
	raw, err := p.store.PresenceMembers(ctx, channel)
	if err != nil {
		return nil, fmt.Errorf("presence: members of %s: %w", channel, err)
	}
	out := make([]Member, 0, len(raw))
	for cid, b := range raw {
		var m Member
		if err := json.Unmarshal(b, &m); err != nil || m.ClientID != cid {
			continue // not ours: another version's, or damaged
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out, nil
}

// Incoming refuses client publishes on companion channels (only the server
// announces presence), applies Config.Allow to subscriptions of companion
// channels, and has the "members" event sent to each new subscriber of one
// once the subscribe's reply is on its way.
func (p *Presence) Incoming(_ context.Context, m *bayeux.Message) {
	switch {
	case m.FromServer():
	case m.Channel == channels.MetaSubscribe:
		for _, sub := range m.Subscriptions() {
			ch, ok := p.companionOf(sub)
			if !ok {
				continue
			}
			if f := p.cfg.Allow; f != nil && m.Session != nil && !f(m.Session, ch) {
				m.RejectChannel(sub, "")
				continue
			}
			if sess := m.Session; sess != nil && p.Tracks(ch) {
				m.AfterReply(func() {
					if sess.Subscribed(sub) {
						// ch may alias the request buffer: the queue keeps a copy.
						p.queue.put(key{channel: strings.Clone(ch), clientID: sess.ID(), snapshot: true}, op{})
					}
				})
			}
		}
	case !channels.IsMeta(m.Channel) && !channels.IsService(m.Channel):
		if _, ok := p.companionOf(m.Channel); ok || m.Channel == p.cfg.Prefix {
			m.Error = bayeux.ErrorForbidden(m.Channel)
		}
	}
}

// subscribed is the Subscribe event: the session joins a tracked channel.
func (p *Presence) subscribed(s *bayeux.Session, channel string) {
	if !p.Tracks(channel) {
		return
	}
	m := Member{ClientID: s.ID()}
	if id := s.Identity(); id != nil {
		m.User = id.User
	}
	if f := p.cfg.Info; f != nil {
		if v := f(s, channel); v != nil {
			b, err := json.Marshal(v)
			if err != nil {
				p.log.Warn("presence: Info is not JSON", "channel", channel, "err", err)
			} else {
				m.Info = b
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil { // cannot happen: strings and valid JSON
		return
	}
	p.queue.put(key{channel: channel, clientID: s.ID()}, op{join: true, member: b})
}

// unsubscribed is the Unsubscribe event, also called for each subscription
// of a session that ends.
func (p *Presence) unsubscribed(s *bayeux.Session, channel string) {
	if p.Tracks(channel) {
		p.queue.put(key{channel: channel, clientID: s.ID()}, op{})
	}
}

// request is the data of a query to the service.
type request struct {
	Channel string `json:"channel"`
}

// answer is the service's answer.
type answer struct {
	Channel string   `json:"channel"`
	Members []Member `json:"members"`
}

// serve answers the service: {"channel": "/chat/room1"} gets
// {"channel": "/chat/room1", "members": [...]}.
func (p *Presence) serve(ctx context.Context, m *bayeux.Message) (any, error) {
	var rq request
	if err := json.Unmarshal([]byte(m.Data), &rq); err != nil || rq.Channel == "" {
		return nil, errors.New(`presence: the data must be {"channel": "/a/channel"}`)
	}
	if !p.Tracks(rq.Channel) {
		return nil, fmt.Errorf("presence: %s has no presence", rq.Channel)
	}
	if f := p.cfg.Allow; f != nil && (m.Session == nil || !f(m.Session, rq.Channel)) {
		return nil, fmt.Errorf("presence: forbidden: %s", rq.Channel)
	}
	members, err := p.Members(ctx, rq.Channel)
	if err != nil {
		return nil, errors.New("presence: unavailable, retry later")
	}
	return answer{Channel: rq.Channel, Members: members}, nil
}
