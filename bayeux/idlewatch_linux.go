package bayeux

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// idleWatch keeps idle WebSockets without a goroutine. A socket's read
// loop that finds nothing to read for a while hands the socket to the
// watch (watch) and returns; the watch's one goroutine waits on an epoll
// set of its own for any of them to become readable, and starts a read
// loop for each that does. A goroutine costs an idle socket more memory
// than everything else it holds (its stack, at the smallest, is 2 KiB).
//
// The sockets stay in the runtime's poller as well: the watch only learns
// that bytes came, and the read loop reads them through the connection as
// usual. Registrations are one-shot, so each readiness starts one read
// loop. A socket closed while watched leaves the epoll set with its file;
// run also closes watched sockets that stayed silent past their read
// timeout, which no parked reader enforces for them.
type idleWatch struct {
	srv *Server
	// The epoll set, itself waited on through the runtime's poller (it is
	// readable while a socket in it is ready): the watch parks like any
	// reader, with no thread blocked in epoll_wait, and Close ends it.
	set *os.File
	raw syscall.RawConn

	mu    sync.Mutex
	socks map[int32]*wsConn // watched sockets by file descriptor
}

// newIdleWatch returns the server's watch, or nil when the system refuses
// an epoll set (the sockets then wait on goroutines).
func newIdleWatch(s *Server) *idleWatch {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil
	}
	set := os.NewFile(uintptr(fd), "idle websockets")
	raw, err := set.SyscallConn()
	if err != nil || set.SetReadDeadline(time.Time{}) != nil { // not in the poller
		set.Close()
		return nil
	}
	return &idleWatch{srv: s, set: set, raw: raw, socks: map[int32]*wsConn{}}
}

// watch hands c, whose read loop found nothing to read, to the watch. It
// reports false when it cannot (no watch, a connection without a file
// descriptor such as TLS): the caller keeps waiting on a goroutine.
func (w *idleWatch) watch(c *wsConn) bool {
	if w == nil {
		return false
	}
	watched := false
	err := c.wc.Control(func(fd uintptr) {
		w.mu.Lock()
		w.socks[int32(fd)] = c // before the registration: it may fire at once
		c.watchedFD = int32(fd) + 1
		w.mu.Unlock()
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollOneShot, Fd: int32(fd)}
		var err error = syscall.EBADF
		cerr := w.raw.Control(func(epfd uintptr) {
			err = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_MOD, int(fd), &ev)
			if err == syscall.ENOENT {
				err = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_ADD, int(fd), &ev)
			}
		})
		if err != nil || cerr != nil {
			w.forget(int32(fd), c)
			return
		}
		watched = true
	})
	return err == nil && watched
}

// epollOneShot is EPOLLONESHOT, which package syscall leaves out.
const epollOneShot = 1 << 30

// forget drops fd's entry if it is c's.
func (w *idleWatch) forget(fd int32, c *wsConn) {
	w.mu.Lock()
	if w.socks[fd] == c {
		delete(w.socks, fd)
	}
	w.mu.Unlock()
}

// closed drops c, which closed, from the watch.
func (w *idleWatch) closed(c *wsConn) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if fd := c.watchedFD - 1; fd >= 0 && w.socks[fd] == c {
		delete(w.socks, fd)
	}
	w.mu.Unlock()
}

// sweepEvery is how often run looks for watched sockets silent for too
// long.
const sweepEvery = 5 * time.Second

// run waits for watched sockets to become readable and starts their read
// loops, until ctx ends; then it closes the epoll set. Every sweepEvery it
// sweeps.
func (w *idleWatch) run(ctx context.Context) {
	defer w.set.Close()
	stop := context.AfterFunc(ctx, func() { _ = w.set.Close() }) // ends the wait
	defer stop()
	events := make([]syscall.EpollEvent, 256)
	ready := make([]*wsConn, 0, len(events))
	take := func(fd uintptr) bool {
		// The runtime's poller is edge-triggered: take every ready socket
		// before waiting again.
		for {
			n, err := syscall.EpollWait(int(fd), events, 0)
			if err == syscall.EINTR {
				continue
			}
			w.mu.Lock()
			for _, ev := range events[:max(n, 0)] {
				if c := w.socks[ev.Fd]; c != nil {
					delete(w.socks, ev.Fd)
					ready = append(ready, c)
				}
			}
			w.mu.Unlock()
			if n < len(events) {
				return len(ready) > 0
			}
		}
	}
	next := time.Now().Add(sweepEvery)
	for ctx.Err() == nil {
		_ = w.set.SetReadDeadline(next)
		err := w.raw.Read(take)
		for i, c := range ready {
			c.resume()
			ready[i] = nil
		}
		ready = ready[:0]
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() == nil {
				w.srv.log.Error("idle websocket watch failed", "err", err)
			}
			return // sockets watched now time out; new ones wait on goroutines
		}
		if time.Now().After(next) {
			w.sweep()
			next = time.Now().Add(sweepEvery)
		}
	}
}

// sweep closes the watched sockets that have been silent for longer than
// their read timeout, as a parked reader's deadline would.
func (w *idleWatch) sweep() {
	var silent []*wsConn
	w.mu.Lock()
	for fd, c := range w.socks {
		if time.Since(time.Unix(0, c.lastRead.Load())) > c.readTimeout() {
			delete(w.socks, fd)
			silent = append(silent, c)
		}
	}
	w.mu.Unlock()
	for _, c := range silent {
		c.srv.log.Debug("websocket read ended", "ip", logIP(c.ip), "err", "silent past the read timeout")
		c.close(closeAbnormal, "")
	}
}
