package bayeux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxFrameBytes bounds one outgoing frame; a longer queue goes out in
// several frames.
const maxFrameBytes = 1 << 20

// wsConn is a WebSocket on this node: the frame sink of a socket, and the
// read loop that feeds the socket's messages to the server. The read loop
// runs in its own goroutine, outside the HTTP handler.
type wsConn struct {
	socket
	conn     *websocket.Conn
	fc       *frameConn   // what conn reads from
	lastRead atomic.Int64 // unix nanoseconds of the last frame received
	wmu      sync.Mutex   // serialises frames
	deadline time.Time    // the write deadline set last; guarded by wmu

	release func() // gives back the connection's slot (MaxConnectionsPerIP)

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
	hj := &hijacker{ResponseWriter: w}
	conn, err := s.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		done()
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return // the upgrader has answered the request
	}
	conn.SetReadLimit(s.cfg.MaxMessageSize)
	c := &wsConn{conn: conn, fc: hj.conn, release: done}
	c.socket = socket{srv: s, sink: c, req: s.keptRequest(r), remote: r.RemoteAddr, onClose: c.unregister}
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
		c.srv.log.Debug("closing a websocket without a session", "remote", c.remote)
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

// startReading sets the socket's read deadline and pong handler, and starts
// reading. (The server's pinger pings every socket.)
func (c *wsConn) startReading() {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.readTimeout()))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(c.readTimeout()))
	})
	c.srv.crew.spawn(c.read)
}

// read waits for a frame, reads and handles it, then hands reading over to
// a new goroutine. Handling needs a deep stack, and so does the WebSocket
// reader, and a goroutine keeps the stack it once needed while it waits: so
// an idle socket waits for readability with a shallow call (frameConn) in a
// fresh goroutine, at the smallest stack. Frames are still handled one at a
// time, in order.
func (c *wsConn) read() {
	err := c.fc.waitReadable()
	var data []byte
	if err == nil {
		_, data, err = c.conn.ReadMessage()
	}
	if err != nil {
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
			c.srv.log.Debug("websocket read ended", "remote", c.remote, "err", err)
		}
		c.close(closeAbnormal, "")
		return
	}
	c.lastRead.Store(time.Now().UnixNano())
	_ = c.conn.SetReadDeadline(time.Now().Add(c.readTimeout()))
	if c.handleFrame(data) && !c.srv.crew.spawn(c.read) {
		c.close(closeGoingAway, "server shutting down")
	}
}

// handleFrame processes one frame and writes its replies. It reports false
// when the socket must stop reading.
func (c *wsConn) handleFrame(data []byte) bool {
	s := c.srv
	msgs, err := s.lim.parseBatch(data)
	if errors.Is(err, errTooMany) {
		s.log.Debug("closing a websocket: batch too large", "remote", c.remote, "limit", s.lim.batch)
		c.close(closePolicy, fmt.Sprintf("more than %d messages in one frame", s.lim.batch))
		return false
	}
	if err != nil {
		s.log.Debug("ignoring an unparseable websocket frame", "remote", c.remote, "bytes", len(data), "err", err)
		return true
	}
	if len(msgs) == 0 {
		return true // an empty [] keep-alive
	}
	owner, err := s.ownerElsewhere(s.ctx, msgs)
	if err != nil {
		// The client gets no reply and retries after its own timeout.
		s.log.Warn("cluster unavailable: dropping a frame", "err", err)
		return true
	}
	if owner != "" {
		if err := c.forwardFrame(owner, data); err != nil {
			s.log.Warn("cluster: forwarding a frame", "owner", owner, "err", err)
		}
		return true
	}
	x := s.newExchange(s.ctx, c.req, &c.socket)
	x.run(msgs)
	replies := c.apply(x)
	if s.cluster != nil && c.sess.Load() != nil {
		c.tellOwners() // the socket serves a session of this node now
	}
	if c.write(replies...) != nil {
		return false
	}
	if x.closeAfter {
		c.close(closeNormal, "disconnected")
		return false
	}
	return true
}

// writeFrames sends items as JSON-array frames of at most maxFrameBytes (a
// single larger item goes alone). Each frame (header and payload) is built
// in one pooled buffer and written to the connection with one write. Data
// frames bypass the WebSocket library's writer, which copies them again and,
// past its buffer, splits them into several writes; control frames (pings,
// close) still go through it. A write on a TCP connection is never
// interleaved with another, so frames stay whole.
func (c *wsConn) writeFrames(items [][]byte) error {
	bp := framePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 2*maxFrameBytes {
			framePool.Put(bp)
		}
	}()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.refreshWriteDeadline()
	for len(items) > 0 {
		n, size := 1, len(items[0])
		for n < len(items) && size+len(items[n]) <= maxFrameBytes {
			size += len(items[n])
			n++
		}
		if _, err := c.fc.Conn.Write(textFrame(bp, items[:n])); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

// textFrame builds in *bp an unmasked, final text frame whose payload is
// the JSON array of items, and returns it.
func textFrame(bp *[]byte, items [][]byte) []byte {
	const room = 10 // the longest header
	b := appendArray(append((*bp)[:0], make([]byte, room)...), items)
	*bp = b
	n := len(b) - room
	var h []byte
	switch {
	case n < 126:
		h = b[room-2 : room]
		h[1] = byte(n)
	case n < 1<<16:
		h = b[room-4 : room]
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h = b[:room]
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	h[0] = 0x81 // FIN, text
	return b[room-len(h):]
}

// framePool holds the buffers frames are built in.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// refreshWriteDeadline moves the write deadline WriteTimeout ahead, but only
// once half of it has passed: setting a deadline takes a lock in the runtime,
// too costly on every flush. c.wmu must be held.
func (c *wsConn) refreshWriteDeadline() {
	now := time.Now()
	timeout := c.srv.cfg.WriteTimeout
	if c.deadline.Sub(now) > timeout/2 {
		return
	}
	c.deadline = now.Add(timeout)
	_ = c.conn.SetWriteDeadline(c.deadline)
}

// sendPing sends a ping frame; the pong moves the read deadline.
func (c *wsConn) sendPing() {
	if c.closed.Load() {
		return
	}
	if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		c.close(closeAbnormal, "")
	}
}

// shut sends a close frame (unless the connection is already broken) and
// closes the connection.
func (c *wsConn) shut(code int, text string) {
	if code != closeAbnormal {
		c.wmu.Lock()
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
		c.wmu.Unlock()
	}
	_ = c.conn.Close()
}
