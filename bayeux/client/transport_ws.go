package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsTransport is one WebSocket on the Bayeux endpoint. A writer goroutine
// sends the queued messages, one message per frame (as a one-element JSON
// array, like the faye client); a reader goroutine hands the frames it
// receives (replies and deliveries, possibly several per frame) to the
// client. The first failure of either ends the socket for good; the client
// then opens a new one.
type wsTransport struct {
	c            *Client
	conn         *websocket.Conn
	writeTimeout time.Duration

	wg   sync.WaitGroup
	wake chan struct{}
	done chan struct{} // closed when the socket has failed or been closed

	mu     sync.Mutex
	queue  []outgoing
	closed bool
	err    error // why the socket ended
}

// webSocketURL turns the endpoint's http(s) URL into its ws(s) URL.
func webSocketURL(endpoint string) string {
	switch {
	case strings.HasPrefix(endpoint, "https:"):
		return "wss:" + strings.TrimPrefix(endpoint, "https:")
	case strings.HasPrefix(endpoint, "http:"):
		return "ws:" + strings.TrimPrefix(endpoint, "http:")
	}
	return endpoint
}

// webSocketDialer returns the dialer of the client's sockets: a copy of the
// one given with WithDialer, or one that follows the transport of the HTTP
// client given with WithHTTPClient (its proxy, dial functions and TLS
// configuration), or else a dialer like the HTTP client the package makes.
// Unset fields take the client's cookie jar, TLS configuration and request
// timeout.
func webSocketDialer(o *options) *websocket.Dialer {
	var d websocket.Dialer
	switch {
	case o.dialer != nil:
		d = *o.dialer
	case o.httpClient != nil:
		rt := o.httpClient.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		if tr, ok := rt.(*http.Transport); ok {
			d.Proxy, d.NetDialContext, d.NetDialTLSContext = tr.Proxy, tr.DialContext, tr.DialTLSContext
			if tr.TLSClientConfig != nil {
				d.TLSClientConfig = http1Only(tr.TLSClientConfig)
			}
		} else {
			d.Proxy = http.ProxyFromEnvironment
		}
	default:
		d.Proxy = http.ProxyFromEnvironment
	}
	if d.TLSClientConfig == nil && o.tlsConfig != nil {
		d.TLSClientConfig = http1Only(o.tlsConfig)
	}
	if d.Jar == nil {
		d.Jar = o.jar
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = o.requestTimeout
	}
	return &d
}

// http1Only returns a copy of cfg that offers no application protocol but
// HTTP/1.1 (an HTTP transport's configuration may offer h2, on which no
// WebSocket can be opened).
func http1Only(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	// Clone shares the slice.
	cfg.NextProtos = slices.DeleteFunc(slices.Clone(cfg.NextProtos), func(p string) bool { return p != "http/1.1" })
	return cfg
}

// dialWebSocket opens a WebSocket to the endpoint and starts its reader and
// writer.
func dialWebSocket(ctx context.Context, c *Client) (*wsTransport, error) {
	conn, resp, err := c.dialer.DialContext(ctx, webSocketURL(c.url), c.opts.header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("opening websocket: %w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("opening websocket: %w", err)
	}
	conn.SetReadLimit(maxResponseBytes)
	t := &wsTransport{
		c:            c,
		conn:         conn,
		writeTimeout: c.opts.requestTimeout,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	t.wg.Add(2)
	go t.reader()
	go t.writer()
	return t, nil
}

func (t *wsTransport) name() Transport { return TransportWebSocket }

func (t *wsTransport) send(o outgoing) {
	t.mu.Lock()
	if t.closed {
		err := t.err
		t.mu.Unlock()
		t.c.fail(o.p, err)
		return
	}
	t.queue = append(t.queue, o)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// alive reports whether the socket is still usable.
func (t *wsTransport) alive() bool {
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}

func (t *wsTransport) reader() {
	defer t.wg.Done()
	for {
		_, data, err := t.conn.ReadMessage()
		if err != nil {
			t.fail(fmt.Errorf("websocket closed: %w", err))
			return
		}
		msgs, err := decodeMessages(data)
		if err != nil {
			t.c.log.Debug("ignoring unparseable websocket frame", "bytes", len(data), "err", err)
			continue
		}
		t.c.receive(msgs)
	}
}

func (t *wsTransport) writer() {
	defer t.wg.Done()
	for {
		select {
		case <-t.done:
			return
		case <-t.wake:
		}
		t.mu.Lock()
		batch := t.queue
		t.queue = nil
		t.mu.Unlock()
		for _, o := range batch {
			if err := t.writeFrame(o.data); err != nil {
				t.fail(fmt.Errorf("websocket write: %w", err))
				return
			}
		}
	}
}

// writeFrame sends one message as a one-element JSON array.
func (t *wsTransport) writeFrame(msg []byte) error {
	_ = t.conn.SetWriteDeadline(time.Now().Add(t.writeTimeout))
	w, err := t.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	_, _ = w.Write([]byte{'['})
	_, _ = w.Write(msg)
	_, _ = w.Write([]byte{']'})
	return w.Close()
}

// fail ends the socket because of err: every request waiting for a reply
// on it fails, so that the client retries elsewhere. Only the first call
// has an effect.
func (t *wsTransport) fail(err error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed, t.err = true, err
	t.queue = nil
	close(t.done)
	t.mu.Unlock()
	_ = t.conn.Close()
	t.c.down(t, err)
}

// close sends a normal close frame, ends the socket and waits for its
// goroutines. It must not be called from them.
func (t *wsTransport) close() {
	if t.alive() {
		_ = t.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
	t.fail(errTransportClosed)
	t.wg.Wait()
}
