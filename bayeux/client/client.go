package client

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bayou-pubsub/bayou/channels"
)

// State is the connection state of a Client.
type State int

const (
	// StateConnecting is the state of a new client, until its first
	// handshake and connect succeed.
	StateConnecting State = iota
	// StateConnected means the client has a session on the server and its
	// connect loop is running: messages flow.
	StateConnected
	// StateDisconnected means the connection was lost; the client is
	// recovering (reconnecting, or handshaking again and restoring its
	// subscriptions).
	StateDisconnected
	// StateClosed is final: Close was called, or the server advised the
	// client not to reconnect.
	StateClosed
)

// String returns the state's name in lower case, such as "connected".
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// StateChange describes a change of a client's connection state.
type StateChange struct {
	// State is the new state.
	State State
	// ClientID is the session id while connected; empty otherwise.
	ClientID string
	// Transport is the connection type in use while connected.
	Transport Transport
	// Err is why the client is disconnected or closed, if known.
	Err error
}

// Client is a Bayeux client: it keeps a session with a server (faye 1.4,
// CometD or Bayou), subscribes to channels and publishes messages. A Client
// is safe for concurrent use. Create it with Dial or New and release it
// with Close.
type Client struct {
	url  string
	opts options
	log  *slog.Logger

	ctx    context.Context // done when the client is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the client but the transports'

	http   *httpTransport
	dialer *websocket.Dialer // of the client's WebSockets
	out    *outbox           // publishes, in call order
	disp   *dispatcher
	ids    atomic.Uint64
	epoch  atomic.Uint64 // incremented at every successful handshake; written under mu

	first     chan error // the outcome of the first connection attempt, for Dial
	firstOnce sync.Once

	mu       sync.Mutex // guards the fields below; never held while taking subMu
	closed   bool
	state    State
	changed  chan struct{} // closed and replaced at every state change
	stopErr  error         // set when the server advised reconnect "none"
	clientID string
	tr       transport // transport of the session; nil before the first handshake
	ws       *wsTransport
	adv      advice
	acking   bool  // the session uses the acknowledgement extension
	batch    int64 // the batch of the last connect reply, acknowledged by the next connect

	pendMu  sync.Mutex
	pending map[string]*pending // requests waiting for their reply, by message id

	subMu sync.Mutex
	subs  map[string]*subEntry // server subscriptions, by pattern

	pos *positions // the last position received per channel
}

// session is a snapshot of the client's connected session.
type session struct {
	id    string
	epoch uint64
	tr    transport
}

// New returns a client for the Bayeux endpoint at rawURL (such as
// "http://localhost:8000/bayeux"; https for TLS; ws and wss URLs are taken
// as their http and https equivalents) and starts connecting in
// the background: the handshake is made over HTTP, then the client uses a
// WebSocket when the server offers one, long-polling otherwise. Failures are
// retried with backoff for as long as the client lives; Subscribe and
// Publish wait for the connection. Use Dial to connect before returning.
func New(rawURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: parsing URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws", "wss":
		u.Scheme = "http" + u.Scheme[2:]
	default:
		return nil, fmt.Errorf("client: URL %q: scheme must be http or https", rawURL)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := o.finish(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		url:     u.String(),
		opts:    o,
		log:     o.logger.With("url", u.Redacted()),
		ctx:     ctx,
		cancel:  cancel,
		disp:    newDispatcher(),
		first:   make(chan error, 1),
		changed: make(chan struct{}),
		adv:     defaultAdvice(),
		pending: make(map[string]*pending),
		subs:    make(map[string]*subEntry),
		pos:     newPositions(),
	}
	c.http = newHTTPTransport(c, c.url)
	c.dialer = webSocketDialer(&c.opts)
	c.out = newOutbox()
	c.wg.Add(3)
	go func() {
		defer c.wg.Done()
		c.disp.run(ctx)
	}()
	go c.run()
	go c.sendPublishes()
	return c, nil
}

// Dial is like New but waits until the client is connected: the handshake
// and a first connect have succeeded. It fails, and releases the client,
// if the first attempt fails (server unreachable, handshake refused) or ctx
// ends first. Once Dial has returned, the client recovers from failures by
// itself.
func Dial(ctx context.Context, rawURL string, opts ...Option) (*Client, error) {
	c, err := New(rawURL, opts...)
	if err != nil {
		return nil, err
	}
	select {
	case err = <-c.first:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("client: dial %s: %w", rawURL, err)
	}
	return c, nil
}

// Close disconnects from the server (a /meta/disconnect, when connected,
// bounded by a short timeout), stops every goroutine of the client and
// waits for them, including a handler that is running: do not call Close
// from a handler or a state function (use go c.Close() there). Operations
// under way fail with ErrClosed, and every Subscription ends. Close always
// returns nil; calling it again does nothing.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	connected := c.state == StateConnected
	sess := session{id: c.clientID, epoch: c.epoch.Load(), tr: c.tr}
	c.mu.Unlock()

	if connected {
		timeout := min(c.opts.requestTimeout, 2*time.Second)
		m := &Message{Channel: channels.MetaDisconnect, ID: c.nextID(), ClientID: sess.id}
		if p, err := c.start(sess.tr, m, false, timeout); err == nil {
			if _, err := c.await(c.ctx, p, timeout); err != nil {
				c.log.Debug("disconnect failed", "err", err)
			}
		}
	}
	c.cancel()
	c.wg.Wait()

	c.mu.Lock()
	ws := c.ws
	c.ws, c.tr = nil, nil
	c.mu.Unlock()
	if ws != nil {
		ws.close()
	}
	c.http.close()
	c.endSubscriptions(ErrClosed)

	c.mu.Lock()
	stopped := c.state == StateClosed // reported already
	c.state = StateClosed
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.log.Info("bayeux client closed")
	if fn := c.opts.stateFunc; fn != nil && !stopped {
		fn(StateChange{State: StateClosed, Err: ErrClosed})
	}
	return nil
}

// State returns the client's current connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// ClientID returns the id of the client's current session; it changes
// when the client handshakes again, and is empty while there is none.
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// Transport returns the connection type of the current session
// (TransportWebSocket or TransportLongPolling), or "" before the first
// handshake.
func (c *Client) Transport() Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tr == nil {
		return ""
	}
	return c.tr.name()
}

// nextID returns a new message id: base 36 of a counter, like faye.
func (c *Client) nextID() string { return strconv.FormatUint(c.ids.Add(1), 36) }

// goTracked runs f in a goroutine that Close waits for; it returns false,
// without running f, once the client is closed.
func (c *Client) goTracked(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// current returns the session when the client is connected.
func (c *Client) current() (session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.state != StateConnected {
		return session{}, false
	}
	return session{id: c.clientID, epoch: c.epoch.Load(), tr: c.tr}, true
}

// waitConnected waits until the client is connected and returns the
// session.
func (c *Client) waitConnected(ctx context.Context) (session, error) {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return session{}, ErrClosed
		case c.stopErr != nil:
			err := c.stopErr
			c.mu.Unlock()
			return session{}, err
		case c.state == StateConnected:
			s := session{id: c.clientID, epoch: c.epoch.Load(), tr: c.tr}
			c.mu.Unlock()
			return s, nil
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return session{}, ctx.Err()
		case <-c.ctx.Done():
			return session{}, ErrClosed
		}
	}
}

// setState records a state change and reports it to the log and the state
// function. Changes after Close are ignored.
func (c *Client) setState(s State, err error) {
	c.mu.Lock()
	if c.closed || c.state == s || c.state == StateClosed ||
		(s == StateDisconnected && c.state == StateConnecting) {
		// Failures before the first connection leave the client connecting.
		c.mu.Unlock()
		return
	}
	c.state = s
	close(c.changed)
	c.changed = make(chan struct{})
	sc := StateChange{State: s, Err: err}
	if s == StateConnected {
		sc.ClientID = c.clientID
		sc.Transport = c.tr.name()
	}
	c.mu.Unlock()
	switch s {
	case StateConnected:
		c.log.Info("bayeux client connected", "clientId", sc.ClientID, "transport", sc.Transport)
	case StateDisconnected:
		c.log.Warn("bayeux client disconnected", "err", err)
	case StateClosed:
		c.log.Warn("bayeux client stopped by the server", "err", err)
	}
	if fn := c.opts.stateFunc; fn != nil {
		c.disp.push(func() { fn(sc) })
	}
}

// reportFirst passes the outcome of the first connection attempt to Dial.
func (c *Client) reportFirst(err error) {
	c.firstOnce.Do(func() { c.first <- err })
}

// pause waits for d, or returns false when the client is closed first.
func (c *Client) pause(d time.Duration) bool {
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// retryPause waits before retrying a failed request: for the backoff of
// attempt, or less if the connection state changes meanwhile (the failure
// was the connection's, and the connect loop is restoring it). It returns
// false when ctx ends or the client is closed first.
func (c *Client) retryPause(ctx context.Context, attempt int) bool {
	c.mu.Lock()
	changed := c.changed
	c.mu.Unlock()
	t := time.NewTimer(c.backoff(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-changed:
		return true
	case <-ctx.Done():
		return false
	case <-c.ctx.Done():
		return false
	}
}
