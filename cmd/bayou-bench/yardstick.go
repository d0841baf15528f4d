package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"
)

// The yardstick is the cheapest broadcast server this tool knows how to
// write: it measures what the machine can do at all, not a product. It
// speaks just enough Bayeux for the load generator — handshake (HTTP POST
// or WebSocket), connect (held, WebSocket only), subscribe, publish
// (WebSocket or anonymous POST) — and fans out like this:
//
//   - a publish is encoded once and appended to its channel's pending batch;
//   - one flush goroutine per channel turns the batch into ONE ready-made
//     WebSocket frame ([m1,m2,...], header included) shared by every
//     subscriber, and queues a reference to it on each connection;
//   - one writer goroutine per connection sends everything queued for it
//     with a single writev(2).
//
// No session state, no queue limits, no per-subscriber encoding.

type yardstick struct {
	timeout  time.Duration
	clientID atomic.Int64
	upgrader websocket.Upgrader
	log      io.Writer

	mu   sync.Mutex
	hubs map[string]*yhub
}

func newYardstick(timeout time.Duration, log io.Writer) *yardstick {
	return &yardstick{
		timeout: timeout,
		log:     log,
		hubs:    map[string]*yhub{},
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			CheckOrigin:     func(*http.Request) bool { return true },
		},
	}
}

func (y *yardstick) hub(channel string) *yhub {
	y.mu.Lock()
	defer y.mu.Unlock()
	h := y.hubs[channel]
	if h == nil {
		h = &yhub{}
		h.subs.Store(&[]*yconn{})
		y.hubs[channel] = h
	}
	return h
}

// yhub is one channel: its subscribers and its pending batch.
type yhub struct {
	mu       sync.Mutex
	pending  []byte // encoded messages, comma-separated
	spare    []byte
	flushing bool

	subsMu sync.Mutex
	subs   atomic.Pointer[[]*yconn] // copy on write
}

func (h *yhub) add(c *yconn) {
	h.subsMu.Lock()
	old := *h.subs.Load()
	for _, o := range old {
		if o == c {
			h.subsMu.Unlock()
			return
		}
	}
	n := make([]*yconn, len(old), len(old)+1)
	copy(n, old)
	n = append(n, c)
	h.subs.Store(&n)
	h.subsMu.Unlock()
}

func (h *yhub) remove(c *yconn) {
	h.subsMu.Lock()
	old := *h.subs.Load()
	n := make([]*yconn, 0, len(old))
	for _, o := range old {
		if o != c {
			n = append(n, o)
		}
	}
	h.subs.Store(&n)
	h.subsMu.Unlock()
}

// publish appends one encoded message (built by enc) to the batch.
func (h *yhub) publish(enc func([]byte) []byte) {
	h.mu.Lock()
	if len(h.pending) > 0 {
		h.pending = append(h.pending, ',')
	}
	h.pending = enc(h.pending)
	start := !h.flushing
	h.flushing = true
	h.mu.Unlock()
	if start {
		go h.flush()
	}
}

func (h *yhub) flush() {
	for {
		h.mu.Lock()
		if len(h.pending) == 0 {
			h.flushing = false
			h.mu.Unlock()
			return
		}
		batch := h.pending
		h.pending, h.spare = h.spare[:0], nil
		h.mu.Unlock()

		frame := textFrame(batch, true)

		h.mu.Lock()
		if h.spare == nil {
			h.spare = batch[:0]
		}
		h.mu.Unlock()
		for _, c := range *h.subs.Load() {
			c.send(frame)
		}
	}
}

// textFrame returns an unmasked WebSocket text frame holding payload,
// wrapped in [ ] when array is set.
func textFrame(payload []byte, array bool) []byte {
	n := len(payload)
	if array {
		n += 2
	}
	var hdr [10]byte
	hdr[0] = 0x81 // FIN, text
	hl := 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		hl = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		hl = 10
	}
	f := make([]byte, 0, hl+n)
	f = append(f, hdr[:hl]...)
	if array {
		f = append(f, '[')
	}
	f = append(f, payload...)
	if array {
		f = append(f, ']')
	}
	return f
}

// yconn is one WebSocket. Frames are written raw on the TCP connection by
// its writer goroutine only.
type yconn struct {
	y    *yardstick
	ws   *websocket.Conn
	nc   net.Conn
	wake chan struct{}
	done chan struct{}

	mu    sync.Mutex
	out   [][]byte
	spare [][]byte

	subs []*yhub     // read goroutine only
	held *time.Timer // read goroutine only
}

func (c *yconn) send(frame []byte) {
	c.mu.Lock()
	c.out = append(c.out, frame)
	first := len(c.out) == 1
	c.mu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func (c *yconn) writer() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		bufs := c.out
		c.out, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		if len(bufs) == 0 {
			continue
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		nb := net.Buffers(bufs)
		_, err := nb.WriteTo(c.nc) // writev
		clear(bufs)
		c.mu.Lock()
		if c.spare == nil && cap(bufs) <= 4096 {
			c.spare = bufs[:0]
		}
		c.mu.Unlock()
		if err != nil {
			c.nc.Close()
			return
		}
	}
}

func (y *yardstick) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if websocket.IsWebSocketUpgrade(r) {
		y.serveWS(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "yardstick: POST or WebSocket only", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	out := []byte{'['}
	y.each(body, func(m gjson.Result) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out, _ = y.handle(nil, m, out)
	})
	out = append(out, ']')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (y *yardstick) each(body []byte, fn func(gjson.Result)) {
	r := gjson.ParseBytes(body)
	if r.IsArray() {
		r.ForEach(func(_, m gjson.Result) bool { fn(m); return true })
		return
	}
	fn(r)
}

// appendReply appends a reply object to out.
func appendReply(out []byte, id, ch gjson.Result, ok bool, extra string) []byte {
	out = append(out, '{')
	if id.Exists() {
		out = append(out, `"id":`...)
		out = append(out, id.Raw...)
		out = append(out, ',')
	}
	out = append(out, `"channel":`...)
	out = append(out, ch.Raw...)
	out = append(out, `,"successful":`...)
	out = strconv.AppendBool(out, ok)
	out = append(out, extra...)
	return append(out, '}')
}

// handle processes one message (from c, nil for HTTP) and appends its
// reply to out, or returns out unchanged and false when the reply comes
// later (a held connect).
func (y *yardstick) handle(c *yconn, m gjson.Result, out []byte) ([]byte, bool) {
	ch := m.Get("channel")
	id := m.Get("id")
	switch ch.String() {
	case "/meta/handshake":
		cid := fmt.Sprintf("y%d", y.clientID.Add(1))
		return appendReply(out, id, ch, true, fmt.Sprintf(
			`,"version":"1.0","clientId":%q,"supportedConnectionTypes":["websocket"],"advice":{"reconnect":"retry","interval":0,"timeout":%d}`,
			cid, y.timeout.Milliseconds())), true
	case "/meta/connect":
		if c == nil {
			return appendReply(out, id, ch, false, `,"error":"402:long-polling:yardstick speaks WebSocket only"`), true
		}
		if c.held != nil {
			c.held.Stop()
		}
		r := textFrame(appendReply(nil, id, ch, true, fmt.Sprintf(
			`,"clientId":%q,"advice":{"reconnect":"retry","interval":0,"timeout":%d}`,
			m.Get("clientId").String(), y.timeout.Milliseconds())), true)
		c.held = time.AfterFunc(y.timeout, func() { c.send(r) })
		return out, false
	case "/meta/subscribe", "/meta/unsubscribe":
		if c == nil {
			return appendReply(out, id, ch, false, `,"error":"402:subscribe:yardstick: subscribe over WebSocket"`), true
		}
		sub := m.Get("subscription")
		h := y.hub(sub.String())
		if ch.String() == "/meta/subscribe" {
			h.add(c)
			c.subs = append(c.subs, h)
		} else {
			h.remove(c)
		}
		return appendReply(out, id, ch, true, `,"subscription":`+sub.Raw), true
	case "/meta/disconnect":
		return appendReply(out, id, ch, true, ""), true
	}
	data := m.Get("data")
	y.hub(ch.String()).publish(func(b []byte) []byte {
		b = append(b, `{"channel":`...)
		b = append(b, ch.Raw...)
		b = append(b, `,"data":`...)
		b = append(b, data.Raw...)
		if id.Exists() {
			b = append(b, `,"id":`...)
			b = append(b, id.Raw...)
		}
		return append(b, '}')
	})
	return appendReply(out, id, ch, true, ""), true
}

func (y *yardstick) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := y.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &yconn{y: y, ws: ws, nc: ws.UnderlyingConn(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	// Every write goes through the writer: gorilla must not answer pings or
	// closes on its own.
	ws.SetPingHandler(func(string) error { return nil })
	ws.SetCloseHandler(func(int, string) error { return nil })
	ws.SetReadLimit(1 << 20)
	go c.writer()
	go c.readLoop()
}

func (c *yconn) readLoop() {
	defer func() {
		close(c.done)
		if c.held != nil {
			c.held.Stop()
		}
		for _, h := range c.subs {
			h.remove(c)
		}
		c.nc.Close()
	}()
	out := make([]byte, 0, 512)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		out = append(out[:0], '[')
		c.y.each(data, func(m gjson.Result) {
			n := len(out)
			if n > 1 {
				out = append(out, ',')
			}
			var replied bool
			if out, replied = c.y.handle(c, m, out); !replied {
				out = out[:n] // held connect: no reply yet, drop the comma
			}
		})
		if len(out) > 1 {
			out = append(out, ']')
			c.send(textFrame(out[1:len(out)-1], true))
		}
	}
}

// serveYardstick runs the yardstick until ctx is done.
func serveYardstick(ctx context.Context, addr, mount string, timeout time.Duration, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	y := newYardstick(timeout, stdout)
	hs := &http.Server{Handler: y, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "yardstick serving Bayeux at http://%s%s\n", ln.Addr(), mount)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return nil
}
