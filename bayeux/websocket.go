package bayeux

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxFrameBytes bounds one outgoing frame; a longer queue goes out in
// several frames.
const maxFrameBytes = 1 << 20

var errConnClosed = errors.New("bayeux: connection closed")

// wsConn is one WebSocket. Its read loop runs in its own goroutine, outside
// the HTTP handler; nothing runs for writing while it is idle: a flush
// goroutine is started when messages are queued and exits when the queue is
// empty, and pings and held connects use timers.
type wsConn struct {
	srv  *Server
	conn *websocket.Conn
	req  *http.Request // the upgrade request

	wmu      sync.Mutex // serialises frames
	sess     atomic.Pointer[Session]
	flushing atomic.Bool
	closed   atomic.Bool
	ping     atomic.Pointer[time.Timer]
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return // the upgrader has answered the request
	}
	conn.SetReadLimit(s.cfg.MaxMessageSize)
	c := &wsConn{srv: s, conn: conn, req: r}
	s.connsMu.Lock()
	s.conns[c] = struct{}{}
	s.connsMu.Unlock()
	if s.ctx.Err() != nil {
		c.shutdown()
		return
	}
	go c.readLoop()
}

// readTimeout is how long a socket may stay silent: pings draw pongs well
// within it, and clients send a connect every Timeout.
func (c *wsConn) readTimeout() time.Duration {
	if p := c.srv.cfg.Ping; p > 0 {
		return 2*p + 5*time.Second
	}
	return 2*c.srv.cfg.Timeout + 5*time.Second
}

func (c *wsConn) readLoop() {
	defer c.close()
	s := c.srv
	_ = c.conn.SetReadDeadline(time.Now().Add(c.readTimeout()))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(c.readTimeout()))
	})
	if s.cfg.Ping > 0 {
		c.ping.Store(time.AfterFunc(s.cfg.Ping, c.sendPing))
	}
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				s.log.Debug("websocket read ended", "remote", c.req.RemoteAddr, "err", err)
			}
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(c.readTimeout()))
		msgs, err := parseBatch(data)
		if err != nil {
			s.log.Info("ignoring unparseable websocket frame", "remote", c.req.RemoteAddr, "bytes", len(data))
			continue
		}
		if len(msgs) == 0 {
			continue // an empty [] keep-alive
		}
		x := s.newExchange(s.ctx, c.req, c)
		x.run(msgs)
		if len(x.replies) > 0 {
			if c.write(x.replies...) != nil {
				return
			}
		}
		if x.closeAfter {
			c.closeWith(websocket.CloseNormalClosure, "disconnected")
			return
		}
	}
}

// connect binds the socket to sess for a successful /meta/connect r and
// holds the reply for hold (or adds it to x at once when hold is 0).
// Messages queued for the session are pushed on the socket meanwhile.
func (c *wsConn) connect(sess *Session, r *Reply, hold time.Duration, x *exchange) {
	// A socket serves one session: after a re-handshake it moves to the new
	// clientId, and the old session's held connect is answered here.
	if prev := c.sess.Swap(sess); prev != nil && prev != sess {
		if h := prev.unbind(c); h != nil {
			x.replies = append(x.replies, h.reply)
		}
	}
	old, ok := sess.bind(c)
	if !ok {
		x.add(r)
		return
	}
	if o, isWS := old.(*wsConn); isWS && o != c {
		o.sess.CompareAndSwap(sess, nil) // the session moved to this socket
	}

	sess.mu.Lock()
	olderPoll, olderHeld := sess.poll, sess.held
	sess.poll, sess.held = nil, nil
	if olderPoll != nil {
		olderPoll.superseded = true
	}
	if hold > 0 {
		h := &held{conn: c, reply: c.srv.encodeReply(x.ctx, r), id: r.ID}
		h.timer = time.AfterFunc(hold, func() { c.release(sess, h) })
		sess.held = h
	}
	sess.mu.Unlock()

	// One held connect per session: the older one is answered now.
	if olderPoll != nil {
		olderPoll.wakeUp()
	}
	if olderHeld != nil {
		olderHeld.timer.Stop()
		if olderHeld.conn == c {
			x.replies = append(x.replies, olderHeld.reply)
		} else {
			olderHeld.conn.write(olderHeld.reply)
		}
	}
	if hold <= 0 {
		x.add(r)
	}
}

// release answers the held connect h when its hold time is over.
func (c *wsConn) release(sess *Session, h *held) {
	sess.mu.Lock()
	if sess.held != h {
		sess.mu.Unlock()
		return
	}
	sess.held = nil
	sess.mu.Unlock()
	sess.touch()
	c.write(h.reply)
}

// boundTo reports whether the socket currently serves sess.
func (c *wsConn) boundTo(sess *Session) bool { return c.sess.Load() == sess }

// detach unbinds the socket from sess and returns the reply of a connect
// held on it, if any.
func (c *wsConn) detach(sess *Session) []byte {
	c.sess.CompareAndSwap(sess, nil)
	if h := sess.unbind(c); h != nil {
		return h.reply
	}
	return nil
}

// notify starts a flush unless one is running.
func (c *wsConn) notify() {
	if c.flushing.CompareAndSwap(false, true) {
		go c.flush()
	}
}

// flush writes everything queued for the bound session, as few frames as
// possible, until the queue is empty.
func (c *wsConn) flush() {
	for {
		sess := c.sess.Load()
		if sess == nil || c.closed.Load() {
			c.flushing.Store(false)
			return
		}
		items := sess.take()
		if len(items) == 0 {
			c.flushing.Store(false)
			// A message queued after take but before the flag was cleared
			// found the flag set and started nothing: look again.
			if !sess.pending() || !c.flushing.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		if err := c.write(items...); err != nil {
			sess.requeue(items)
			c.flushing.Store(false)
			return
		}
		sess.release(items)
	}
}

// write sends items as JSON-array frames of at most maxFrameBytes (a single
// larger item goes alone). A failed write closes the socket.
func (c *wsConn) write(items ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return errConnClosed
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	for len(items) > 0 {
		n, size := 1, len(items[0])
		for n < len(items) && size+len(items[n]) <= maxFrameBytes {
			size += len(items[n])
			n++
		}
		if err := c.writeFrame(items[:n]); err != nil {
			go c.close()
			return err
		}
		items = items[n:]
	}
	return nil
}

func (c *wsConn) writeFrame(items [][]byte) error {
	w, err := c.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	_, _ = w.Write([]byte{'['})
	for i, it := range items {
		if i > 0 {
			_, _ = w.Write([]byte{','})
		}
		_, _ = w.Write(it)
	}
	_, _ = w.Write([]byte{']'})
	return w.Close()
}

func (c *wsConn) sendPing() {
	if c.closed.Load() {
		return
	}
	if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		c.close()
		return
	}
	if t := c.ping.Load(); t != nil {
		t.Reset(c.srv.cfg.Ping)
	}
}

// end closes the socket because its session ended elsewhere.
func (c *wsConn) end(why EndReason) {
	code, text := websocket.CloseNormalClosure, "session ended"
	if why == EndSlow {
		code, text = websocket.ClosePolicyViolation, "slow consumer"
	}
	go c.closeWith(code, text)
}

// shutdown answers the held connect, then closes with 1001 (going away).
func (c *wsConn) shutdown() {
	if sess := c.sess.Load(); sess != nil {
		if reply := c.detach(sess); reply != nil {
			_ = c.write(reply)
		}
	}
	c.closeWith(websocket.CloseGoingAway, "server shutting down")
}

// closeWith sends a close frame, then closes the connection.
func (c *wsConn) closeWith(code int, text string) {
	c.wmu.Lock()
	if !c.closed.Load() {
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text),
			time.Now().Add(time.Second))
	}
	c.wmu.Unlock()
	c.close()
}

// close releases the socket. The session stays, with its queue, until the
// client connects again or the session expires.
func (c *wsConn) close() {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	if t := c.ping.Load(); t != nil {
		t.Stop()
	}
	_ = c.conn.Close()
	c.srv.connsMu.Lock()
	delete(c.srv.conns, c)
	c.srv.connsMu.Unlock()
	if sess := c.sess.Swap(nil); sess != nil {
		sess.unbind(c)
	}
}
