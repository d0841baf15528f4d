package client

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"time"
)

// Connection types (transports) the client implements, for WithTransports
// and Client.Transport.
const (
	// WebSocket carries every message after the handshake on one socket,
	// one message per frame.
	WebSocket = "websocket"
	// LongPolling sends messages in HTTP POST requests (several messages
	// sent at the same moment share a request) and receives deliveries in
	// the responses to held /meta/connect requests.
	LongPolling = "long-polling"
)

// Extension hooks into the messages a client exchanges, like a faye client
// extension. Either function may be nil.
//
// Outgoing is called with every message before it is sent (handshake,
// connect, subscribe, publish, ...; a request sent again after a failure
// is passed again, as a fresh copy); it may change the message, typically
// to add a credential to its ext (with SetExt: replacing ext would drop
// the client's own fields, such as "ack" and "replay"). Incoming is called with every message
// received (replies and deliveries) before the client acts on it.
// Both are called from the client's internal goroutines and must not block.
type Extension struct {
	// Outgoing sees each message before it is sent.
	Outgoing func(m *Message)
	// Incoming sees each message received before it is handled.
	Incoming func(m *Message)
}

// An Option configures a Client; pass options to New or Dial.
type Option func(*options) error

type options struct {
	transports     []string
	header         http.Header
	jar            http.CookieJar
	tlsConfig      *tls.Config
	logger         *slog.Logger
	requestTimeout time.Duration
	backoffMin     time.Duration
	backoffMax     time.Duration
	extensions     []Extension
	stateFunc      func(StateChange)
	noAck          bool
	gapFunc        func(Gap)
}

func defaultOptions() options {
	return options{
		transports:     []string{WebSocket, LongPolling},
		header:         make(http.Header),
		requestTimeout: 10 * time.Second,
		backoffMin:     time.Second,
		backoffMax:     30 * time.Second,
	}
}

// WithTransports restricts the transports the client may use, in order of
// preference; the default is WebSocket, then LongPolling. The handshake is
// always made over HTTP; afterwards the client takes the first of these
// that the server offers (and, for WebSocket, that it can open).
func WithTransports(names ...string) Option {
	return func(o *options) error {
		if len(names) == 0 {
			return fmt.Errorf("client: WithTransports: no transport given")
		}
		for _, n := range names {
			if n != WebSocket && n != LongPolling {
				return fmt.Errorf("client: WithTransports: unknown transport %q", n)
			}
		}
		o.transports = slices.Clone(names)
		return nil
	}
}

// WithHeader adds a header to every HTTP request and WebSocket upgrade
// request the client makes (for example Authorization).
func WithHeader(key, value string) Option {
	return func(o *options) error {
		o.header.Add(key, value)
		return nil
	}
}

// WithCookieJar sets the cookie jar used for HTTP requests and WebSocket
// upgrades (cookie-based sticky sessions need one). The default is a new
// in-memory jar per client.
func WithCookieJar(jar http.CookieJar) Option {
	return func(o *options) error {
		o.jar = jar
		return nil
	}
}

// WithTLSConfig sets the TLS configuration for https and wss connections.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) error {
		o.tlsConfig = cfg
		return nil
	}
}

// WithLogger sets the logger of connection events (handshakes, transport
// failures, recovery). The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		return nil
	}
}

// WithRequestTimeout bounds the wait for the reply to one request
// (handshake, subscribe, publish, ...) and the opening of a WebSocket. A
// request not answered in time is sent again, with the same id, until the
// caller's context ends. A /meta/connect may take the server's advised
// timeout plus this long. The default is 10 seconds.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("client: WithRequestTimeout: %v is not positive", d)
		}
		o.requestTimeout = d
		return nil
	}
}

// WithBackoff sets the pauses between attempts after failures: the first
// retry waits about initial, each further one doubles it up to maximum, and every
// pause is randomly shortened by up to half (jitter) so that clients of a
// restarted server do not return all at once. The server's advice.interval
// is a lower bound. The defaults are 1 second and 30 seconds.
func WithBackoff(initial, maximum time.Duration) Option {
	return func(o *options) error {
		if initial <= 0 || maximum < initial {
			return fmt.Errorf("client: WithBackoff: need 0 < initial <= maximum, got %v, %v", initial, maximum)
		}
		o.backoffMin, o.backoffMax = initial, maximum
		return nil
	}
}

// WithExtension adds an extension. Extensions run in the order they were
// added, for outgoing and incoming messages alike.
func WithExtension(ext Extension) Option {
	return func(o *options) error {
		o.extensions = append(o.extensions, ext)
		return nil
	}
}

// WithStateFunc registers fn to be called on every change of the client's
// connection state, for logs and metrics. Calls are made one at a time, in
// order, from the goroutine that runs message handlers (so a slow fn delays
// deliveries). StateClosed is reported once: when the server advises the
// client to stop, or else by Close itself, before it returns.
func WithStateFunc(fn func(StateChange)) Option {
	return func(o *options) error {
		o.stateFunc = fn
		return nil
	}
}

// WithAck turns the acknowledgement extension on (the default) or off.
// When the server supports it (Bayou, CometD), every /meta/connect
// acknowledges the messages the client received with the previous connect
// reply, and the server sends again, with the next connect reply, those a
// failed connection lost: delivery is then at least once while the
// session lasts. Such a server sends messages only with connect replies.
// Copies of messages carrying a Position are dropped (see Message.Position);
// others can be delivered twice after a failure.
func WithAck(enabled bool) Option {
	return func(o *options) error {
		o.noAck = !enabled
		return nil
	}
}

// WithGapFunc registers fn to be called when the client knows it missed
// messages of a channel it subscribed to and the server could not replay
// them (see Gap): the application may then reload the state it derives
// from the channel. Calls are made one at a time from the goroutine that
// runs message handlers.
func WithGapFunc(fn func(Gap)) Option {
	return func(o *options) error {
		o.gapFunc = fn
		return nil
	}
}

func (o *options) finish() error {
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.jar == nil {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return fmt.Errorf("client: cookie jar: %w", err)
		}
		o.jar = jar
	}
	return nil
}
