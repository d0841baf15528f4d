package bayeux

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/bayou-pubsub/bayou/channels"
)

// Config configures a Server. The zero value of every field selects the
// documented default, so Config{} is a working configuration.
type Config struct {
	// Mount is the path the server answers on: the mount itself, every path
	// below it ({Mount}/handshake, {Mount}/connect, {Mount}/<clientId>, ...)
	// and {Mount}.js. Default "/bayeux".
	Mount string

	// Timeout is how long a /meta/connect is held when there is nothing to
	// deliver; it is sent to clients as advice.timeout. Keep it below the
	// idle timeout of any proxy in front of the server. Default 25s.
	Timeout time.Duration

	// Interval is the pause clients are advised to make between two
	// connects (advice.interval). Default 0.
	Interval time.Duration

	// RetryInterval is the advice.interval sent with a failed handshake, so
	// that rejected clients retry slowly instead of in a hot loop.
	// Default 1s.
	RetryInterval time.Duration

	// Ping keeps idle connections open through proxies and finds dead
	// peers: a WebSocket silent for Ping is pinged, and EventSource streams
	// get a comment line every Ping. Default 25s; a negative value disables
	// them.
	Ping time.Duration

	// WriteTimeout bounds every write to a client connection; a client that
	// does not read for this long is disconnected. Default 10s.
	WriteTimeout time.Duration

	// AllowedOrigins, when not empty, lists the browser origins (for example
	// "https://app.example.com") allowed to open WebSockets and to make
	// cross-origin requests. Requests without an Origin header are always
	// allowed. Default: every origin but "null" (sandboxed frames and
	// file: pages), like faye otherwise; list "null" to allow it. CORS
	// answers allow credentials, so set this list when clients authenticate
	// with cookies.
	AllowedOrigins []string

	// MaxMessageSize caps the size in bytes of a WebSocket frame or an HTTP
	// request body. Default 1 MiB.
	MaxMessageSize int64

	// MaxNesting caps how deeply the arrays and objects of a request's JSON
	// may nest. Deeper requests get HTTP 400 (a WebSocket frame is ignored).
	// Default 64.
	MaxNesting int

	// MaxBatch caps the messages of one request or WebSocket frame. Larger
	// requests get HTTP 400; a WebSocket is closed with 1008. Default 100.
	// (faye's clients send at most 2 KB per request, CometD's one message
	// per frame unless the application batches.)
	MaxBatch int

	// MaxChannelLength caps the length in bytes of a channel name or pattern
	// that is published or subscribed to; MaxChannelSegments caps its
	// segments. Longer channels are refused with a 405 error. Defaults
	// 1024 and 64.
	MaxChannelLength   int
	MaxChannelSegments int

	// MaxSubscriptions caps the channels and patterns one session
	// subscribes to; a subscribe past it fails with a 403 error. Default
	// 1024.
	MaxSubscriptions int

	// BodyTimeout bounds the time a client may take to send a request's
	// body once its headers arrived (bound the headers with the
	// http.Server's ReadHeaderTimeout). A slower client gets HTTP 408.
	// Default 30s.
	BodyTimeout time.Duration

	// SocketSessionTimeout is how long a WebSocket may stay open without a
	// session: unless it carries a successful /meta/connect (in a cluster,
	// a message for a session of another node) within this time of its
	// upgrade, it is closed with 1008. Default 10s.
	SocketSessionTimeout time.Duration

	// MaxConnectionsPerIP caps, per client address, the open WebSockets,
	// EventSource streams and HTTP requests in progress (held long-polls
	// included). Past it requests get HTTP 429. Default 0: no limit.
	MaxConnectionsPerIP int

	// HandshakeRate caps the handshakes per second from one client address
	// (bursts of HandshakeBurst, default twice the rate). Handshakes over
	// it fail with a 429 error and advice to retry once the rate allows.
	// Default 0: no limit.
	HandshakeRate  float64
	HandshakeBurst int

	// PublishRate caps the publishes per second of one client (anonymous
	// publishes: of one client address), in bursts of PublishBurst
	// (default twice the rate). Publishes over it fail with a 429 error.
	// Default 0: no limit.
	PublishRate  float64
	PublishBurst int

	// TrustedProxies lists the networks of the reverse proxies in front of
	// the server. The client address of a request from one of them is the
	// one its X-Forwarded-For header names (the last one that is not a
	// trusted proxy itself): the per-address limits count it, the logs
	// show it, and extensions get it (ClientIP, Session.ClientIP). The
	// header of any other peer is ignored. Default: none; the client
	// address is the peer's. The limits count IPv6 addresses per /64
	// network.
	TrustedProxies []netip.Prefix

	// MaxQueueBytes caps the bytes queued for one session. A session whose
	// client does not keep up is disconnected with advice to handshake
	// again, rather than let its queue grow. Default 4 MiB.
	MaxQueueBytes int

	// Grammar selects the channel-name character set: channels.Strict
	// (faye's, the default) or channels.Wide (CometD's).
	Grammar channels.Grammar

	// ClientScript is the path of a browser bundle (such as faye's
	// client/faye-browser-min.js from an npm install) served at
	// {Mount}.js and {Mount}/client.js for pages to load. Default: none,
	// and those paths answer 404.
	ClientScript string

	// Extensions see every incoming message and outgoing reply, in order
	// (see Extension); those that implement DeliveryFilter also see each
	// copy of a publication per recipient.
	Extensions []Extension

	// HookTimeout bounds the context the extension hooks and service
	// handlers get: it ends HookTimeout after the first hook of a batch
	// ran (or when the server shuts down), on every transport (see
	// Extension). It does not shorten held connects. Default 10s.
	HookTimeout time.Duration

	// ForwardExt forwards the ext of a client's publish to the subscribers,
	// as faye does. By default it is not forwarded: subscribers receive
	// only what the incoming extensions set with SetExt (and, on channels
	// with history, the position), so that a credential a publisher put in
	// ext never reaches other clients. The server's own publishes always
	// deliver the ext they were given (WithExt).
	ForwardExt bool

	// Events are called when sessions are created, subscribe, publish and
	// end.
	Events Events

	// ExcludeSender lists channel patterns (such as "/chat/**") on which a
	// client does not receive the messages it publishes itself.
	ExcludeSender []string

	// Engine carries publishes and subscriptions between nodes. Default: an
	// in-memory engine for a single node.
	Engine Engine

	// History keeps the recent publications of the channels its rules
	// match (the first matching rule applies), so that clients can replay
	// what they missed: each publication gets a Position, which its copies
	// carry in ext.replayId and ext.epoch, and a subscribe with
	// ext.replay gets what it missed first (see the package documentation,
	// "Delivery guarantees"). The engine must implement Historian.
	// Default: no history; channels without it cost nothing more.
	History []HistoryRule

	// HistoryMaxBytes bounds the memory that the default in-memory
	// engine's history takes, all channels together; past it the oldest
	// publications go first. Default 64 MiB.
	HistoryMaxBytes int64

	// ReplayLost says how a subscribe is answered when it asks to replay
	// from a position that is no longer retained, or from another epoch:
	// ReplayLostError (the default) refuses it with a 400 error, as
	// Salesforce does; ReplayLostReport subscribes and says in the reply's
	// ext that the messages were not recovered, so that the application
	// reloads its state.
	ReplayLost ReplayLostPolicy

	// NoAck turns off the acknowledgement extension (CometD's
	// AckExtension), which clients otherwise enable by sending ext.ack
	// true in their handshake.
	NoAck bool

	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger

	// SessionLogRate caps the Info lines logged when a session starts
	// (clientId, client address, and whether the handshake came over a
	// WebSocket or HTTP) and ends (with its reason, last transport and
	// duration), in lines per second, all clients together, in bursts of
	// twice that: lines over it are dropped, and the next line logged
	// counts them in "dropped". So no client, however fast it handshakes,
	// floods the log. Default 20; a negative value logs none (the end of a
	// session is still logged at Debug). They are logged only to a Logger
	// set here, not to the default one.
	SessionLogRate float64
}

// ReplayLostPolicy is the answer to a replay from a position that is no
// longer retained (see Config.ReplayLost).
type ReplayLostPolicy int

// The answers to a replay from a lost position.
const (
	ReplayLostError  ReplayLostPolicy = iota // a 400 error
	ReplayLostReport                         // success, ext says "recovered": false
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Mount = cleanMount(c.Mount)
	c.Timeout = positive(c.Timeout, 25*time.Second)
	c.Interval = max(c.Interval, 0)
	c.RetryInterval = positive(c.RetryInterval, time.Second)
	if c.Ping == 0 {
		c.Ping = 25 * time.Second
	}
	c.WriteTimeout = positive(c.WriteTimeout, 10*time.Second)
	c.MaxMessageSize = positive(c.MaxMessageSize, 1<<20)
	c.MaxQueueBytes = positive(c.MaxQueueBytes, 4<<20)
	c.HistoryMaxBytes = positive(c.HistoryMaxBytes, defaultHistoryBytes)
	c.MaxNesting = positive(c.MaxNesting, 64)
	c.MaxBatch = positive(c.MaxBatch, 100)
	c.MaxChannelLength = positive(c.MaxChannelLength, 1024)
	c.MaxChannelSegments = positive(c.MaxChannelSegments, 64)
	c.MaxSubscriptions = positive(c.MaxSubscriptions, 1024)
	c.BodyTimeout = positive(c.BodyTimeout, 30*time.Second)
	c.SocketSessionTimeout = positive(c.SocketSessionTimeout, 10*time.Second)
	c.HookTimeout = positive(c.HookTimeout, 10*time.Second)
	if c.HandshakeRate > 0 && c.HandshakeBurst <= 0 {
		c.HandshakeBurst = max(1, int(2*c.HandshakeRate))
	}
	if c.PublishRate > 0 && c.PublishBurst <= 0 {
		c.PublishBurst = max(1, int(2*c.PublishRate))
	}
	if c.Engine == nil {
		c.Engine = NewMemoryEngine()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// cleanMount returns the mount path m with a leading and no trailing slash;
// "/bayeux" when m is empty.
func cleanMount(m string) string {
	if m == "" {
		return "/bayeux"
	}
	for len(m) > 1 && m[len(m)-1] == '/' {
		m = m[:len(m)-1]
	}
	if m[0] != '/' {
		m = "/" + m
	}
	return m
}

// positive returns v, or def when v is not positive.
func positive[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Events are callbacks for what happens to sessions on this node. They are
// called on the goroutine handling the action, after it took effect, and
// must not block for long. Nil callbacks are skipped.
type Events struct {
	// Handshake is called when a session is created.
	Handshake func(s *Session)
	// Subscribe is called when a session subscribes to a channel or pattern
	// it was not subscribed to.
	Subscribe func(s *Session, channel string)
	// Unsubscribe is called when a subscription ends, including each one
	// of a session that ends.
	Unsubscribe func(s *Session, channel string)
	// Publish is called for every accepted publish, data being its raw
	// JSON. s is nil for anonymous publishes and the server's own.
	Publish func(s *Session, channel string, data []byte)
	// Disconnect is called when a session ends.
	Disconnect func(s *Session, why EndReason)
}
