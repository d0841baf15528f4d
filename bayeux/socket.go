package bayeux

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

var errConnClosed = errors.New("bayeux: connection closed")

// frameSink is where a socket's frames go: a WebSocket on this node, or
// one on another node of a cluster that forwards them.
type frameSink interface {
	// writeFrames sends items as JSON-array frames.
	writeFrames(items [][]byte) error
	// shut sends a close frame with code and text, then releases the
	// connection. It is called once.
	shut(code int, text string)
}

// socket is a connection carrying frames to one session at a time. It holds
// the binding to the session, the session's held /meta/connect and the
// flushing of its queue; the sink does the I/O. Nothing runs for a socket
// while it is idle: a flush goroutine starts when messages are queued and
// exits when the queue is empty; held connects use timers.
type socket struct {
	srv      *Server
	sink     frameSink
	req      *http.Request // the upgrade request, kept for extensions (else nil)
	remote   string        // the client's address, for logs
	sess     atomic.Pointer[Session]
	flushing atomic.Bool
	closed   atomic.Bool
	onClose  func() // called once when the socket closes
}

// connect binds the socket to sess for a successful /meta/connect r and
// holds the reply for hold (or adds it to x at once when hold is 0).
// Messages queued for the session are pushed on the socket meanwhile.
func (c *socket) connect(sess *Session, r *Reply, hold time.Duration, x *exchange) {
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
	if o, isSock := old.(*socket); isSock && o != c {
		o.sess.CompareAndSwap(sess, nil) // the session moved to this socket
	}

	sess.mu.Lock()
	olderPoll, olderHeld := sess.poll, sess.held
	sess.poll, sess.held = nil, nil
	if olderPoll != nil {
		olderPoll.superseded = true
	}
	if hold > 0 {
		// The id is copied: it points into the frame, which it would keep.
		h := &held{conn: c, reply: c.srv.encodeReply(x.ctx, r), id: strings.Clone(r.ID)}
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
func (c *socket) release(sess *Session, h *held) {
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
func (c *socket) boundTo(sess *Session) bool { return c.sess.Load() == sess }

// detach unbinds the socket from sess and returns the reply of a connect
// held on it, if any.
func (c *socket) detach(sess *Session) []byte {
	c.sess.CompareAndSwap(sess, nil)
	if h := sess.unbind(c); h != nil {
		return h.reply
	}
	return nil
}

// notify starts a flush unless one is running.
func (c *socket) notify() {
	if c.flushing.CompareAndSwap(false, true) {
		go c.flush()
	}
}

// flush writes everything queued for the bound session, in as few frames
// as possible, until the queue is empty.
func (c *socket) flush() {
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

// write sends items as frames; a failed write closes the socket.
func (c *socket) write(items ...[]byte) error {
	if c.closed.Load() {
		return errConnClosed
	}
	if err := c.sink.writeFrames(items); err != nil {
		go c.close(closeAbnormal, "")
		return err
	}
	return nil
}

// WebSocket close codes used by the server.
const (
	closeNormal    = 1000
	closeGoingAway = 1001
	closePolicy    = 1008
	closeAbnormal  = 1006 // not sent: the connection just goes away
)

// end closes the socket because its session ended elsewhere.
func (c *socket) end(why EndReason) {
	code, text := closeNormal, "session ended"
	if why == EndSlow {
		code, text = closePolicy, "slow consumer"
	}
	go c.close(code, text)
}

// shutdown answers the held connect, then closes with 1001 (going away).
func (c *socket) shutdown() {
	if sess := c.sess.Load(); sess != nil {
		if reply := c.detach(sess); reply != nil {
			_ = c.write(reply)
		}
	}
	c.close(closeGoingAway, "server shutting down")
}

// close releases the socket: the sink sends a close frame with code (unless
// it is closeAbnormal). The session stays, with its queue, until the client
// connects again or the session expires.
func (c *socket) close(code int, text string) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.sink.shut(code, text)
	if c.onClose != nil {
		c.onClose()
	}
	if sess := c.sess.Swap(nil); sess != nil {
		sess.unbind(c)
	}
}
