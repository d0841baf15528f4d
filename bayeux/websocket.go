package bayeux

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bayou-pubsub/bayou/internal/wsconn"
)

// wsConn is a WebSocket on this node: the frame sink of a socket, and the
// read loop that feeds the socket's messages to the server. The read loop
// runs in its own goroutine, outside the HTTP handler.
type wsConn struct {
	socket
	conn     *websocket.Conn // parses the frames read from wc
	wc       *wsconn.Conn    // the connection: the one writer of every frame
	lastRead atomic.Int64    // unix nanoseconds of the last frame or pong received

	release func() // gives back the connection's slot (MaxConnectionsPerIP)
	// watchedFD is the file descriptor plus one under which the idle watch
	// last took the socket (0: never); guarded by the watch's lock.
	watchedFD int32

	// In a cluster: the id under which frames for sessions owned by other
	// nodes are forwarded, and those nodes; gone once the socket closed.
	remoteMu sync.Mutex
	remoteID string
	owners   map[string]bool
	gone     bool
}

// serveWebSocket upgrades r and starts reading the socket; done is called
// once the socket is closed (or the upgrade failed).
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, done func()) {
	hj := &wsconn.Hijacker{ResponseWriter: w, WriteTimeout: s.cfg.WriteTimeout}
	conn, err := s.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		done()
		s.log.Debug("websocket upgrade failed", "ip", logIP(s.requestIP(r)), "err", err)
		return // the upgrader has answered the request
	}
	conn.SetReadLimit(s.cfg.MaxMessageSize)
	c := &wsConn{conn: conn, wc: hj.Conn, release: done}
	c.socket = socket{srv: s, sink: c, req: s.keptRequest(r), ip: s.requestIP(r), onClose: c.unregister}
	s.connsMu.Lock()
	s.conns[&c.socket] = struct{}{}
	s.connsMu.Unlock()
	if s.ctx.Err() != nil {
		c.shutdown()
		return
	}
	time.AfterFunc(s.cfg.SocketSessionTimeout, c.closeIfSessionless)
	c.startReading()
}

// unregister runs once, when the socket has closed: it leaves the server's
// sockets and the cluster's forwarding table (telling the nodes it
// forwarded to), and gives back its connection slot.
func (c *wsConn) unregister() {
	s := c.srv
	s.connsMu.Lock()
	delete(s.conns, &c.socket)
	s.connsMu.Unlock()
	s.idle.closed(c)
	c.remoteMu.Lock()
	c.gone = true
	id := c.remoteID
	c.remoteMu.Unlock()
	if id != "" {
		s.cluster.locals.Delete(id)
		c.tellOwners()
	}
	c.release()
}

// closeIfSessionless closes the socket unless it carries a session, its
// own or (in a cluster) one on another node: a socket must not stay open,
// answering pings, without ever connecting.
func (c *wsConn) closeIfSessionless() {
	c.remoteMu.Lock()
	forwarding := len(c.owners) > 0
	c.remoteMu.Unlock()
	if c.sess.Load() == nil && !forwarding {
		c.srv.log.Debug("closing a websocket without a session", "ip", logIP(c.ip))
		c.close(closePolicy, "no session")
	}
}

// readTimeout is how long a socket may stay silent: pings draw pongs well
// within it, and clients send a connect every Timeout.
func (c *wsConn) readTimeout() time.Duration {
	if p := c.srv.cfg.Ping; p > 0 {
		return 2*p + 5*time.Second
	}
	return 2*c.srv.cfg.Timeout + 5*time.Second
}

// startReading sets the socket's read deadline and control frame handlers,
// and starts reading. (The server's pinger pings every socket.) The
// handlers answer through wc, so that the WebSocket library never writes.
func (c *wsConn) startReading() {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.readTimeout()))
	c.conn.SetPongHandler(func(string) error {
		c.alive()
		return nil
	})
	c.conn.SetPingHandler(func(data string) error {
		_ = c.wc.Pong([]byte(data)) // a failed write shows in the next read
		return nil
	})
	c.conn.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = closeNormal
		}
		c.close(code, "") // echo the code, as the protocol asks
		return nil
	})
	if c.srv.crew.enter() {
		go c.read()
	}
}

// read waits for a frame, reads and handles it, then hands reading over to
// a new goroutine. Handling needs a deep stack, and so does the WebSocket
// reader, and a goroutine keeps the stack it once needed while it waits: so
// an idle socket waits for readability with a shallow call (wsconn) in a
// fresh goroutine, at the smallest stack. Frames are still handled one at a
// time, in order.
func (c *wsConn) read() {
	defer c.srv.crew.leave()
	var held [][]byte // replies to publishes, written once no frame waits
	frames := 0       // handled by this goroutine
	for {
		err := c.wc.WaitReadable()
		if err == nil && c.onlyPongs() {
			if c.nextSoon() {
				continue
			}
			break
		}
		var data []byte
		if err == nil {
			data, err = c.readMessage()
		}
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				c.srv.log.Debug("websocket read ended", "ip", logIP(c.ip), "err", err)
			}
			c.close(closeAbnormal, "")
			return
		}
		c.alive()
		frames++
		var ok bool
		if held, ok = c.handleFrame(data, held); !ok {
			return
		}
		// A frame read ahead is handled on this goroutine, whose stack
		// has grown to what handling takes; the replies to a run of
		// publishes go out together, in one write.
		if !c.wc.Pending() || len(held) >= maxHeldReplies {
			if err := c.write(held...); err != nil {
				return
			}
			held = held[:0]
		}
		if !c.wc.Pending() && !c.nextSoon() {
			break
		}
	}
	// Nothing came soon: the socket waits for its next frame without a
	// goroutine (idleWatch), or else on a new one, whose stack starts small
	// again (an idle socket costs little). A busy socket (a publisher
	// pausing) waits on a new goroutine, woken by the runtime directly:
	// through the watch, each pause would cost a hop more.
	if frames >= busyFrames || !c.srv.idle.watch(c) {
		c.resume()
	}
}

// busyFrames is how many frames one run of a socket's read loop handles
// before the socket counts as busy (see read); a client's setup takes 3
// or 4.
const busyFrames = 16

// onlyPongs reads what came and takes the pongs it begins with; it reports
// whether that was all. (The library would take a pong too, but then wait
// inside for a data frame, on this goroutine: an idle socket answering
// pings would keep one.)
func (c *wsConn) onlyPongs() bool {
	if !c.wc.Pollable() || c.wc.ReadAhead() != nil {
		return false
	}
	pongs := false
	for c.wc.SkipPong() {
		pongs = true
	}
	if pongs {
		c.alive()
	}
	return pongs && !c.wc.Pending()
}

// alive notes that the client was heard from: a frame or a pong came.
func (c *wsConn) alive() {
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	_ = c.conn.SetReadDeadline(now.Add(c.readTimeout()))
}

// resume starts the socket's read loop, which waits for the next frame.
func (c *wsConn) resume() {
	if c.srv.crew.enter() {
		go c.read()
	} else {
		c.close(closeGoingAway, "server shutting down")
	}
}

// hotWait is how long a socket that handled a frame waits on the same
// goroutine for the next one before handing the wait over to a fresh
// goroutine: the sockets of publishers, whose frames follow closely, keep
// theirs instead of starting one per frame (and waking a thread to run it).
const hotWait = 5 * time.Millisecond

// nextSoon waits up to hotWait for bytes to read, and reads them ahead. It
// reports whether some came (or the socket broke, which the next read
// reports).
func (c *wsConn) nextSoon() bool {
	_ = c.wc.SetReadDeadline(time.Now().Add(hotWait))
	err := c.wc.ReadAhead()
	_ = c.wc.SetReadDeadline(time.Now().Add(c.readTimeout()))
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// eagerRead is the largest buffer allocated for a message before its bytes
// arrive: a header declaring more does not make the server allocate more
// than the bytes that come.
const eagerRead = 16 << 10

// readMessage reads the next message. Its buffer is allocated at the size
// its first frame declares (up to eagerRead; larger messages grow as they
// arrive, within the size limit), where the library's ReadMessage starts
// every message at 512 bytes and grows it.
func (c *wsConn) readMessage() ([]byte, error) {
	_, r, err := c.conn.NextReader()
	if err != nil {
		return nil, err
	}
	n := min(c.wc.Payload(), eagerRead)
	data := make([]byte, n, n+1) // one byte more: io.ReadFull below sees the end without growing
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	// A message of several frames goes on; one frame ends here.
	for {
		if len(data) == cap(data) {
			data = slices.Grow(data, len(data)/2+512)
		}
		m, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+m]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// maxHeldReplies bounds the replies a socket holds back while frames of
// publishes keep arriving (see read).
const maxHeldReplies = 64

// handleFrame processes one frame and writes its replies, after held (the
// replies of earlier frames not yet written). When the frame held only
// publishes and another frame is already read ahead, its replies are
// returned with held instead, to be written with the next ones; the
// replies of any other frame are written at once, so that, say, a
// subscribe's reply precedes the messages of its channel. It reports false
// when the socket must stop reading.
func (c *wsConn) handleFrame(data []byte, held [][]byte) ([][]byte, bool) {
	s := c.srv
	msgs, err := s.lim.parseBatch(data)
	if errors.Is(err, errTooMany) {
		s.log.Debug("closing a websocket: batch too large", "ip", logIP(c.ip), "limit", s.lim.batch)
		c.close(closePolicy, fmt.Sprintf("more than %d messages in one frame", s.lim.batch))
		return held, false
	}
	if err != nil {
		s.log.Debug("ignoring an unparseable websocket frame", "ip", logIP(c.ip), "bytes", len(data), "err", err)
		return held, true
	}
	if len(msgs) == 0 {
		return held, true // an empty [] keep-alive
	}
	owner, err := s.ownerElsewhere(s.ctx, msgs)
	if owner != "" && len(held) > 0 { // the owner answers after the replies held here
		if err := c.write(held...); err != nil {
			return held[:0], false
		}
		held = held[:0]
	}
	if err != nil {
		// The client gets no reply and retries after its own timeout.
		s.log.Warn("cluster unavailable: dropping a frame", "err", err)
		return held, true
	}
	if owner != "" {
		if err := c.forwardFrame(owner, data); err != nil {
			s.log.Warn("cluster: forwarding a frame", "owner", owner, "err", err)
		}
		return held, true
	}
	x := s.frameExchange(&c.socket)
	defer s.recycle(x)
	x.run(msgs)
	replies := c.apply(x)
	if s.cluster != nil && c.sess.Load() != nil {
		c.tellOwners() // the socket serves a session of this node now
	}
	if x.publishesOnly() && c.wc.Pending() {
		x.finish()
		return append(held, replies...), true
	}
	if len(held) > 0 {
		replies = append(held, replies...)
		held = held[:0]
	}
	err = c.write(replies...)
	x.finish()
	if err != nil {
		return held, false
	}
	if x.closeAfter {
		c.close(closeNormal, "disconnected")
		return held, false
	}
	return held, true
}

// writeFrames sends items as JSON-array frames.
func (c *wsConn) writeFrames(items [][]byte) error {
	n, err := c.wc.WriteItems(items)
	c.srv.stats.wrote(trWebSocket, 0, n)
	return err
}

// writeFramesNow implements directSink.
func (c *wsConn) writeFramesNow(items [][]byte) (bool, func() (int, error), error) {
	n, ok, rest, err := c.wc.WriteItemsNow(items)
	c.srv.stats.wrote(trWebSocket, 0, n)
	return ok, rest, err
}

// sendPing sends a ping frame; the pong moves the read deadline.
func (c *wsConn) sendPing() {
	if c.closed.Load() {
		return
	}
	if err := c.wc.Ping(); err != nil {
		c.close(closeAbnormal, "")
	}
}

// shut sends a close frame (unless the connection is already broken) and
// closes the connection.
func (c *wsConn) shut(code int, text string) {
	if code == closeAbnormal {
		code, text = 0, ""
	}
	_ = c.wc.Shut(code, text)
}
