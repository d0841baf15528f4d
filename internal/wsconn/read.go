package wsconn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Conn is a hijacked server WebSocket connection. Its Read hands the
// WebSocket library at most the rest of the current frame, so the library
// never buffers bytes of a frame it has not reached: once it returned a
// message, every byte not yet handled is here, where the server can see it
// (Pending) and wait for more with WaitReadable. Bytes read ahead sit in a
// pooled buffer, held only while there are some. Reading is done by one
// goroutine at a time; writing (write.go) by any, serialised.
type Conn struct {
	net.Conn
	raw  syscall.RawConn // to wait for readability; nil when not available
	buf  *[]byte         // read-ahead bytes, from readPool; nil when none
	r, w int             // unread bytes are (*buf)[r:w]
	left int64           // bytes of the current frame not yet handed over; 0 at a boundary
	// payload is the payload length the current frame's header declares
	// (capped: the reader enforces the size limit).
	payload int64

	wmu      sync.Mutex
	timeout  time.Duration // bound of every write
	deadline time.Time     // the write deadline set last; guarded by wmu
}

// readPool holds Conn read-ahead buffers.
var readPool = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// New returns c as a Conn whose writes are each bounded by writeTimeout.
func New(c net.Conn, writeTimeout time.Duration) *Conn {
	f := &Conn{Conn: c, timeout: writeTimeout}
	if sc, ok := c.(syscall.Conn); ok && canPeek {
		f.raw, _ = sc.SyscallConn()
	}
	return f
}

// Read hands over bytes of the current frame only.
func (f *Conn) Read(p []byte) (int, error) {
	if f.left == 0 {
		if err := f.header(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	if f.buf == nil {
		n, err := f.Conn.Read(p) // nothing read ahead: straight from the connection
		f.left -= int64(n)
		return n, err
	}
	n := copy(p, (*f.buf)[f.r:f.w])
	f.r += n
	f.left -= int64(n)
	if f.r == f.w {
		readPool.Put(f.buf)
		f.buf = nil
	}
	return n, nil
}

// header reads ahead the next frame's header and sets left to the frame's
// whole length (header and payload).
func (f *Conn) header() error {
	if err := f.fill(2); err != nil {
		return err
	}
	b := (*f.buf)[f.r:f.w]
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4 // the mask key
	}
	if err := f.fill(n); err != nil {
		return err
	}
	b = (*f.buf)[f.r:f.w]
	var payload uint64
	switch b[1] & 0x7f {
	case 126:
		payload = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		payload = binary.BigEndian.Uint64(b[2:10])
	default:
		payload = uint64(b[1] & 0x7f)
	}
	f.payload = int64(min(payload, 1<<62)) // the reader enforces the size limit
	f.left = int64(n) + f.payload
	return nil
}

// Payload returns the payload length declared by the header of the frame
// being read: once the WebSocket library returned a reader for a message,
// the length of its first frame.
func (f *Conn) Payload() int64 { return f.payload }

// fill reads until at least n bytes are read ahead.
func (f *Conn) fill(n int) error {
	if f.buf == nil {
		f.buf = readPool.Get().(*[]byte)
		f.r, f.w = 0, 0
	}
	for f.w-f.r < n {
		if f.r > 0 {
			f.w = copy(*f.buf, (*f.buf)[f.r:f.w])
			f.r = 0
		}
		m, err := f.Conn.Read((*f.buf)[f.w:])
		f.w += m
		if err != nil && f.w-f.r < n {
			return err
		}
	}
	return nil
}

// Pending reports whether bytes are read ahead, so that reading the next
// message will not wait for the network.
func (f *Conn) Pending() bool { return f.buf != nil }

// WaitReadable returns when the connection has bytes to read (or is closed
// or broken), or its read deadline passed (an error). It parks on the
// network poller directly. The poller only reports data that arrives while
// it waits, so the socket is peeked at first.
func (f *Conn) WaitReadable() error {
	if f.raw == nil || f.Pending() {
		return nil
	}
	return f.raw.Read(readable)
}

// ReadAhead reads whatever bytes have arrived, or waits for some until the
// read deadline, so that Pending reports them: for a reader that expects
// the next frame soon, one read where WaitReadable and the frame's read
// take three system calls.
func (f *Conn) ReadAhead() error {
	if f.Pending() {
		return nil
	}
	err := f.fill(1)
	if f.r == f.w { // nothing came: give the buffer back
		readPool.Put(f.buf)
		f.buf = nil
	}
	return err
}

// SkipPong consumes the pong frame the read-ahead bytes begin with, if they
// hold the whole of one (masked, as a client's frames are), and reports
// whether it did. An idle socket's reader uses it to take the answer to a
// ping without entering the WebSocket library, which would wait there for
// the next data frame; anything else is left to the library.
func (f *Conn) SkipPong() bool {
	if f.buf == nil || f.left != 0 {
		return false
	}
	b := (*f.buf)[f.r:f.w]
	if len(b) < 2 || b[0] != 0x80|opPong || b[1]&0x80 == 0 || b[1]&0x7f > 125 {
		return false
	}
	n := 2 + 4 + int(b[1]&0x7f) // header, mask key, payload
	if len(b) < n {
		return false
	}
	f.r += n
	if f.r == f.w {
		readPool.Put(f.buf)
		f.buf = nil
	}
	return true
}

// Pollable reports whether WaitReadable and ReadAhead can wait for bytes
// without holding a buffer (the connection has a file descriptor).
func (f *Conn) Pollable() bool { return f.raw != nil }

// Hijacker is the http.ResponseWriter to give the WebSocket upgrader: its
// Hijack hands over the connection as a Conn, kept in Conn.
type Hijacker struct {
	http.ResponseWriter
	WriteTimeout time.Duration // of the Conn
	Conn         *Conn         // set by Hijack
}

// Hijack takes over the connection.
func (h *Hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.Conn = New(c, h.WriteTimeout)
	return h.Conn, rw, nil
}

// errNoDescriptor is Control's error for a connection without one.
var errNoDescriptor = errors.New("wsconn: the connection has no file descriptor")

// Control runs fn with the connection's file descriptor, which stays open
// meanwhile; it fails for connections without one (TLS, or other systems).
func (f *Conn) Control(fn func(fd uintptr)) error {
	if f.raw == nil {
		return errNoDescriptor
	}
	return f.raw.Control(fn)
}
