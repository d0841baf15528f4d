package bayeux

import (
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
	conn *websocket.Conn
	wmu  sync.Mutex // serialises frames
	ping atomic.Pointer[time.Timer]

	// In a cluster: the id under which frames for sessions owned by other
	// nodes are forwarded, and those nodes.
	remoteID string
	remoteMu sync.Mutex
	owners   map[string]bool
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return // the upgrader has answered the request
	}
	conn.SetReadLimit(s.cfg.MaxMessageSize)
	c := &wsConn{conn: conn}
	c.socket = socket{srv: s, sink: c, req: r}
	c.onClose = func() {
		s.connsMu.Lock()
		delete(s.conns, &c.socket)
		s.connsMu.Unlock()
	}
	s.connsMu.Lock()
	s.conns[&c.socket] = struct{}{}
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
	defer c.close(closeAbnormal, "")
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
		owner, err := s.ownerElsewhere(s.ctx, msgs)
		if err != nil {
			// The client gets no reply and retries after its own timeout.
			s.log.Warn("cluster unavailable: dropping a frame", "err", err)
			continue
		}
		if owner != "" {
			if err := c.forwardFrame(owner, data); err != nil {
				s.log.Warn("cluster: forwarding a frame", "owner", owner, "err", err)
			}
			continue
		}
		x := s.newExchange(s.ctx, c.req, &c.socket)
		x.run(msgs)
		if c.sess.Load() != nil {
			c.tellOwners() // the socket serves a session of this node now
		}
		if len(x.replies) > 0 {
			if c.write(x.replies...) != nil {
				return
			}
		}
		if x.closeAfter {
			c.close(closeNormal, "disconnected")
			return
		}
	}
}

// writeFrames sends items as JSON-array frames of at most maxFrameBytes (a
// single larger item goes alone).
func (c *wsConn) writeFrames(items [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	for len(items) > 0 {
		n, size := 1, len(items[0])
		for n < len(items) && size+len(items[n]) <= maxFrameBytes {
			size += len(items[n])
			n++
		}
		if err := c.writeFrame(items[:n]); err != nil {
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
		c.close(closeAbnormal, "")
		return
	}
	if t := c.ping.Load(); t != nil {
		t.Reset(c.srv.cfg.Ping)
	}
}

// shut sends a close frame (unless the connection is already broken) and
// closes the connection.
func (c *wsConn) shut(code int, text string) {
	if t := c.ping.Load(); t != nil {
		t.Stop()
	}
	if code != closeAbnormal {
		c.wmu.Lock()
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
		c.wmu.Unlock()
	}
	_ = c.conn.Close()
}
