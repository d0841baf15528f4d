package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"
)

const (
	// maxBatchBytes bounds the body of one HTTP request; a single larger
	// message is sent alone.
	maxBatchBytes = 256 << 10
	// maxBatchMessages bounds the messages of one request: servers refuse
	// larger batches (Bayou's default limit is 100).
	maxBatchMessages = 100
	// maxResponseBytes bounds a response body or a WebSocket frame.
	maxResponseBytes = 64 << 20
)

var (
	errTransportClosed = errors.New("transport closed")
	errNoReply         = errors.New("no reply from the server")
)

// transport carries encoded messages to the server. Replies and deliveries
// come back through Client.receive; a message that cannot be delivered is
// failed through Client.fail or Client.down.
type transport interface {
	// name is the Bayeux connection type.
	name() Transport
	// send queues a message. Messages are sent in the order of the calls.
	send(o outgoing)
}

// outgoing is one encoded message and the request waiting for its reply.
type outgoing struct {
	p    *pending
	data []byte
	// alone asks for a request of its own (handshake, connect), bounded by
	// timeout; other messages share requests, bounded by the request
	// timeout. WebSocket ignores both.
	alone   bool
	timeout time.Duration
}

// httpTransport is long-polling: JSON arrays POSTed to the endpoint. One
// lane sends the ordinary messages, one request at a time, each carrying
// everything queued meanwhile (so messages keep their order and messages
// sent at the same moment share a request); handshakes and held connects
// get requests of their own beside it. A request that fails fails the
// messages queued behind it too, so that none of them overtakes the failed
// ones: the client sends them all again, in order.
type httpTransport struct {
	c       *Client
	url     string
	client  *http.Client
	tr      *http.Transport // the transport the client made; nil with WithHTTPClient
	header  http.Header
	timeout time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	mu     sync.Mutex
	queue  []outgoing
	closed bool
}

func newHTTPTransport(c *Client, url string) *httpTransport {
	var client *http.Client
	var tr *http.Transport
	if hc := c.opts.httpClient; hc != nil {
		own := *hc
		own.Jar = c.opts.jar
		client = &own
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
		if c.opts.tlsConfig != nil {
			tr.TLSClientConfig = c.opts.tlsConfig.Clone()
		}
		client = &http.Client{Transport: tr, Jar: c.opts.jar}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &httpTransport{
		c:       c,
		url:     url,
		client:  client,
		tr:      tr,
		header:  c.opts.header,
		timeout: c.opts.requestTimeout,
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
	}
	t.wg.Add(1)
	go t.lane()
	return t
}

func (t *httpTransport) name() Transport { return TransportLongPolling }

func (t *httpTransport) send(o outgoing) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.c.fail(o.p, errTransportClosed)
		return
	}
	if o.alone {
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			_ = t.post([]outgoing{o}, o.timeout)
		}()
		return
	}
	t.queue = append(t.queue, o)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// lane sends the queued messages, a batch per request, until closed.
func (t *httpTransport) lane() {
	defer t.wg.Done()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.wake:
		}
		// Let goroutines sending at this very moment join the batch.
		runtime.Gosched()
		for batch := t.take(); len(batch) > 0; batch = t.take() {
			if err := t.post(batch, t.timeout); err != nil {
				t.failQueued(err)
			}
		}
	}
}

// take removes from the queue the messages of the next request.
func (t *httpTransport) take() []outgoing {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, size := 0, 0
	for n < len(t.queue) && n < maxBatchMessages && (n == 0 || size+len(t.queue[n].data) < maxBatchBytes) {
		size += len(t.queue[n].data) + 1
		n++
	}
	batch := t.queue[:n:n]
	if n == len(t.queue) {
		t.queue = nil
	} else {
		t.queue = t.queue[n:]
	}
	return batch
}

// failQueued fails the messages waiting in the queue.
func (t *httpTransport) failQueued(err error) {
	t.mu.Lock()
	queued := t.queue
	t.queue = nil
	t.mu.Unlock()
	for _, o := range queued {
		t.c.fail(o.p, err)
	}
}

// post sends one request and hands the reply messages to the client; the
// messages of a failed request, and those the server did not answer, are
// failed. It returns the error they failed with, if any did.
func (t *httpTransport) post(batch []outgoing, timeout time.Duration) error {
	var body bytes.Buffer
	body.WriteByte('[')
	for i, o := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(o.data)
	}
	body.WriteByte(']')

	err := t.roundTrip(&body, timeout)
	failed := err != nil
	if err == nil {
		err = errNoReply // for the messages the response did not answer
	}
	for _, o := range batch {
		if t.c.fail(o.p, err) { // a no-op for those answered
			failed = true
		}
	}
	if failed {
		return err
	}
	return nil
}

// roundTrip POSTs body and hands the messages of the response to the
// client.
func (t *httpTransport) roundTrip(body *bytes.Buffer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, body)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	// Like faye's Node client, accept any status whose body holds
	// messages: a proxy's error page is not JSON and fails here.
	msgs, err := decodeMessages(b)
	if err != nil {
		return fmt.Errorf("HTTP %s: %w", resp.Status, err)
	}
	t.c.receive(msgs)
	return nil
}

// close stops the lane, aborts requests in flight and waits for them.
func (t *httpTransport) close() {
	t.mu.Lock()
	t.closed = true
	queued := t.queue
	t.queue = nil
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	for _, o := range queued {
		t.c.fail(o.p, errTransportClosed)
	}
	if t.tr != nil {
		t.tr.CloseIdleConnections()
	}
}
