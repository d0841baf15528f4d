package bayeux

import (
	"log/slog"
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
	// allowed. Default: every origin, like faye.
	AllowedOrigins []string

	// MaxMessageSize caps the size in bytes of a WebSocket frame or an HTTP
	// request body. Default 1 MiB.
	MaxMessageSize int64

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

	// Events are called when sessions are created, subscribe, publish and
	// end.
	Events Events

	// ExcludeSender lists channel patterns (such as "/chat/**") on which a
	// client does not receive the messages it publishes itself.
	ExcludeSender []string

	// Engine carries publishes and subscriptions between nodes. Default: an
	// in-memory engine for a single node.
	Engine Engine

	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Mount == "" {
		c.Mount = "/bayeux"
	}
	for len(c.Mount) > 1 && c.Mount[len(c.Mount)-1] == '/' {
		c.Mount = c.Mount[:len(c.Mount)-1]
	}
	if c.Mount[0] != '/' {
		c.Mount = "/" + c.Mount
	}
	if c.Timeout <= 0 {
		c.Timeout = 25 * time.Second
	}
	if c.Interval < 0 {
		c.Interval = 0
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.Ping == 0 {
		c.Ping = 25 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 1 << 20
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 4 << 20
	}
	if c.Engine == nil {
		c.Engine = NewMemoryEngine()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
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
