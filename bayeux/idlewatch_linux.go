package bayeux

import (
	"context"
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
	srv  *Server
	epfd int
	wake [2]int // a pipe in the epoll set: written to stop run

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
	w := &idleWatch{srv: s, epfd: fd, socks: map[int32]*wsConn{}}
	if err := syscall.Pipe2(w.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(fd)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: -1}
	if err := syscall.EpollCtl(fd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		w.release()
		return nil
	}
	return w
}

// release closes the watch's files.
func (w *idleWatch) release() {
	syscall.Close(w.epfd)
	syscall.Close(w.wake[0])
	syscall.Close(w.wake[1])
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
		err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		if err == syscall.ENOENT {
			err = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
		if err != nil {
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
// loops, until ctx ends; then it closes the epoll set. The pipe's event
// (Fd -1) only wakes it.
func (w *idleWatch) run(ctx context.Context) {
	defer w.release()
	stop := context.AfterFunc(ctx, func() { _, _ = syscall.Write(w.wake[1], []byte{1}) })
	defer stop()
	events := make([]syscall.EpollEvent, 256)
	ready := make([]*wsConn, 0, len(events))
	lastSweep := time.Now()
	for ctx.Err() == nil {
		n, err := syscall.EpollWait(w.epfd, events, int(sweepEvery/time.Millisecond))
		if err != nil && err != syscall.EINTR {
			w.srv.log.Error("idle websocket watch failed", "err", err)
			return // sockets watched now time out; new ones wait on goroutines
		}
		w.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if c := w.socks[ev.Fd]; c != nil {
				delete(w.socks, ev.Fd)
				ready = append(ready, c)
			}
		}
		w.mu.Unlock()
		for i, c := range ready {
			c.resume()
			ready[i] = nil
		}
		ready = ready[:0]
		if time.Since(lastSweep) >= sweepEvery {
			lastSweep = time.Now()
			w.sweep()
		}
	}
	// Shutting down: the server closes every socket.
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
