package bayeux

import (
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
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

// directSink is a frameSink that can also write without waiting, on the
// goroutine of a publisher (see socket.flushNow).
type directSink interface {
	// writeFramesNow writes items in one frame if it can do so at once,
	// else reports ok false having written nothing. When only part of the
	// frame went, rest (to run on a goroutine of its own) writes the
	// remainder; no other frame goes before it returns.
	writeFramesNow(items [][]byte) (ok bool, rest func() (int, error), err error)
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
	ip       netip.Addr    // the client's address (see ClientIP)
	sess     atomic.Pointer[Session]
	flushing atomic.Bool
	closed   atomic.Bool
	onClose  func() // called once when the socket closes
}

// apply applies the decisions of an exchange of a batch that arrived on
// the socket, and returns the replies to send, in order: the batch's
// successful /meta/connect binds the socket to its session and is held on
// it (or answered now), after any connect it supersedes on this socket.
func (c *socket) apply(x *exchange) [][]byte {
	pc := x.connect
	if pc == nil {
		return x.replies
	}
	reply := x.encode(&pc.reply)
	// The id is copied: it points into the frame, which it would keep.
	first, held := c.connect(pc, reply, strings.Clone(pc.reply.ID))
	if !held {
		first = append(first, reply)
	}
	return slices.Insert(x.replies, pc.at, first...)
}

// connect binds the socket to pc's session for a successful /meta/connect
// and holds its encoded reply for pc.hold. It returns the replies to send before it (the
// connects it superseded on this socket) and whether the reply is held
// (else the caller sends it now).
func (c *socket) connect(pc *pendingConnect, reply []byte, id string) (first [][]byte, held bool) {
	sess := pc.sess
	// A socket serves one session: after a re-handshake it moves to the new
	// clientId, and the old session's held connect is answered here.
	if prev := c.sess.Swap(sess); prev != nil && prev != sess {
		if h, _ := prev.unbind(c); h != nil {
			first = append(first, h.reply)
		}
	}
	old, older, ok := sess.connectOn(c, pc, reply, id)
	if !ok {
		return first, false
	}
	if o, isSock := old.(*socket); isSock && o != c {
		o.sess.CompareAndSwap(sess, nil) // the session moved to this socket
	}
	if older != nil {
		first = append(first, older)
	}
	return first, pc.hold > 0
}

// detach unbinds the socket from sess and returns the connect held on
// it, if any.
func (c *socket) detach(sess *Session) *held {
	c.sess.CompareAndSwap(sess, nil)
	h, _ := sess.unbind(c)
	return h
}

// notify starts a flush unless one is running.
func (c *socket) notify() {
	if c.flushing.CompareAndSwap(false, true) {
		c.startFlush()
	}
}

// notifyNow is notify for a caller delivering to few sessions: the flush
// is done on the caller's goroutine when it can be without waiting (see
// flushNow), sparing a goroutine and a wake-up per delivery.
func (c *socket) notifyNow() {
	if c.flushing.CompareAndSwap(false, true) && !c.flushNow() {
		c.startFlush()
	}
}

// startFlush runs flush on a new goroutine; the caller set flushing.
func (c *socket) startFlush() {
	if c.srv.crew.enter() {
		go c.flush()
	} else {
		c.flushing.Store(false) // shutting down
	}
}

// errNotNow is flushNow's drain writer refusing to wait.
var errNotNow = errors.New("bayeux: the socket cannot take a write now")

// flushNow writes the bound session's queue from the caller's goroutine in
// one frame, when the sink can write at once (directSink): another write is
// not under way and the connection's send buffer is not full. It reports
// false, having written nothing, when the flush must run as usual (the
// caller still holds flushing).
func (c *socket) flushNow() bool {
	d, ok := c.sink.(directSink)
	sess := c.sess.Load()
	if !ok || sess == nil || sess.ack != nil || c.closed.Load() {
		return false
	}
	var rest func() (int, error)
	n, err := sess.drain(func(items [][]byte) error {
		if len(items) == 0 {
			return nil
		}
		ok, r, err := d.writeFramesNow(items)
		if err == nil && !ok {
			err = errNotNow
		}
		rest = r
		return err
	})
	switch {
	case errors.Is(err, errNotNow):
		return false
	case err != nil:
		c.flushing.Store(false)
		c.srv.crew.spawn(func() { c.close(closeAbnormal, "") })
		return true
	}
	c.srv.stats.wrote(trWebSocket, n, 0)
	if rest != nil {
		// The connection took part of the frame: the rest goes on a
		// goroutine, and the flush goes on there.
		if c.srv.crew.enter() {
			go func() {
				defer c.srv.crew.leave()
				if c.finishFrame(rest) {
					c.drainAll()
				}
			}()
		} else {
			c.finishFrame(rest) // shutting down: within the write timeout
			c.flushing.Store(false)
		}
		return true
	}
	c.flushing.Store(false)
	// A message queued meanwhile found the flag set and started nothing.
	if sess.sendable(c) && c.flushing.CompareAndSwap(false, true) {
		c.startFlush()
	}
	return true
}

// finishFrame writes the rest of a frame flushNow started, and reports
// whether it went; when not, the socket closes.
func (c *socket) finishFrame(rest func() (int, error)) bool {
	n, err := rest()
	c.srv.stats.wrote(trWebSocket, 0, n)
	if err != nil {
		c.flushing.Store(false)
		c.srv.crew.spawn(func() { c.close(closeAbnormal, "") })
		return false
	}
	return true
}

// flush writes everything queued for the bound session, in as few frames
// as possible, until the queue is empty. It runs on a goroutine counted by
// the server's crew.
func (c *socket) flush() {
	defer c.srv.crew.leave()
	c.drainAll()
}

// drainAll is flush's loop, on the goroutine that holds flushing.
func (c *socket) drainAll() {
	for {
		sess := c.sess.Load()
		if sess == nil || c.closed.Load() {
			c.flushing.Store(false)
			return
		}
		var (
			n   int
			err error
		)
		if sess.ack != nil {
			n, err = sess.drainHeld(c)
		} else {
			n, err = sess.drain(c.writeAll)
		}
		if err != nil {
			c.flushing.Store(false)
			return
		}
		c.srv.stats.wrote(trWebSocket, n, 0) // the sink counts the bytes
		if n == 0 {
			c.flushing.Store(false)
			// A message queued after the drain but before the flag was
			// cleared found the flag set and started nothing: look again.
			if !sess.sendable(c) || !c.flushing.CompareAndSwap(false, true) {
				return
			}
		}
	}
}

// write sends items as frames (nothing when there are none); a failed
// write closes the socket.
func (c *socket) write(items ...[]byte) error { return c.writeAll(items) }

// writeAll is write for a slice.
func (c *socket) writeAll(items [][]byte) error {
	if c.closed.Load() {
		return errConnClosed
	}
	if len(items) == 0 {
		return nil
	}
	if err := c.sink.writeFrames(items); err != nil {
		c.srv.crew.spawn(func() { c.close(closeAbnormal, "") })
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
	c.srv.crew.spawn(func() { c.close(code, text) })
}

// shutdown answers the held connect (see Server.drainReply), then closes
// with 1001 (going away).
func (c *socket) shutdown() {
	if sess := c.sess.Load(); sess != nil {
		if h := c.detach(sess); h != nil {
			r := c.srv.drainReply(h.id)
			_ = c.write(c.srv.encodeAlone(c.srv.ctx, c.req, &r))
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
