package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// Transport is a connection type (a Bayeux transport) the client
// implements, for WithTransports, Client.Transport and StateChange.
type Transport string

// The connection types of the client.
const (
	// TransportWebSocket carries every message after the handshake on one
	// socket, one message per frame.
	TransportWebSocket Transport = "websocket"
	// TransportLongPolling sends messages in HTTP POST requests (several
	// messages sent at the same moment share a request) and receives
	// deliveries in the responses to held /meta/connect requests.
	TransportLongPolling Transport = "long-polling"
)

// Untyped names of the connection types, kept for source compatibility:
// they convert to Transport and to string alike.
const (
	// WebSocket is the name of TransportWebSocket.
	//
	// Deprecated: use TransportWebSocket.
	WebSocket = "websocket"
	// LongPolling is the name of TransportLongPolling.
	//
	// Deprecated: use TransportLongPolling.
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
	transports     []Transport
	header         http.Header
	jar            http.CookieJar
	tlsConfig      *tls.Config
	httpClient     *http.Client      // as given to WithHTTPClient
	dialer         *websocket.Dialer // as given to WithDialer
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
		transports:     []Transport{TransportWebSocket, TransportLongPolling},
		header:         make(http.Header),
		requestTimeout: 10 * time.Second,
		backoffMin:     time.Second,
		backoffMax:     30 * time.Second,
	}
}

// WithTransports restricts the transports the client may use, in order of
// preference; the default is TransportWebSocket, then TransportLongPolling.
// The handshake is always made over HTTP; afterwards the client takes the
// first of these that the server offers (and, for WebSocket, that it can
// open). The names may be given as Transport values or as strings (such as
// a command-line flag).
func WithTransports[T ~string](names ...T) Option {
	ts := make([]Transport, len(names))
	for i, n := range names {
		ts[i] = Transport(n)
	}
	return func(o *options) error {
		if len(ts) == 0 {
			return errors.New("client: WithTransports: no transport given")
		}
		for _, t := range ts {
			if t != TransportWebSocket && t != TransportLongPolling {
				return fmt.Errorf("client: WithTransports: unknown transport %q", t)
			}
		}
		o.transports = slices.Clone(ts)
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
// upgrades (cookie-based sticky sessions need one). The default is the Jar
// of the HTTP client given with WithHTTPClient, if any, or else a new
// in-memory jar per client.
func WithCookieJar(jar http.CookieJar) Option {
	return func(o *options) error {
		o.jar = jar
		return nil
	}
}

// WithTLSConfig sets the TLS configuration for https and wss connections:
// that of the HTTP client the package makes, and of a WebSocket dialer
// without one of its own (see WithDialer). It cannot be combined with
// WithHTTPClient: set the TLS configuration of that client's transport
// instead.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) error {
		o.tlsConfig = cfg
		return nil
	}
}

// WithHTTPClient sets the HTTP client of the handshake and of long-polling,
// so that its RoundTripper (a proxy, tracing, custom TLS or connection
// pooling) carries every HTTP request the client makes. The client is used
// as is, except that the client's cookie jar replaces its Jar (see
// WithCookieJar; without that option, a non-nil Jar of hc becomes the
// client's jar, shared with the WebSocket dialer). hc's Timeout, if set,
// must exceed the server's connect timeout plus the request timeout, or held
// connects fail. Close does not close hc's idle connections.
//
// Unless WithDialer is given, the WebSocket dialer takes the proxy, dial
// functions and TLS configuration of hc's transport when it is an
// *http.Transport (or nil, meaning http.DefaultTransport); with another
// RoundTripper it is the default dialer (with the environment's proxy).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error {
		if hc == nil {
			return errors.New("client: WithHTTPClient: nil client")
		}
		o.httpClient = hc
		return nil
	}
}

// WithDialer sets the dialer of WebSocket connections. A copy of d is used,
// in which a nil Jar becomes the client's cookie jar, a nil TLSClientConfig
// the configuration given with WithTLSConfig, and a zero HandshakeTimeout
// the request timeout; the client's headers (WithHeader) go on every
// upgrade request.
func WithDialer(d *websocket.Dialer) Option {
	return func(o *options) error {
		if d == nil {
			return errors.New("client: WithDialer: nil dialer")
		}
		o.dialer = d
		return nil
	}
}

// WithLogger sets the logger of connection events (handshakes, transport
// failures, recovery). Without it the client logs nothing.
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
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.httpClient != nil && o.tlsConfig != nil {
		return errors.New("client: WithTLSConfig and WithHTTPClient: set the TLS configuration of the HTTP client's transport instead")
	}
	if o.jar == nil && o.httpClient != nil {
		o.jar = o.httpClient.Jar
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
