package wsconn

import (
	"encoding/binary"
	"sync"
	"time"
)

// MaxFrameBytes bounds one outgoing data frame; more items go out in
// several frames.
const MaxFrameBytes = 1 << 20

// Frame opcodes the server writes.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xa
)

// WriteItems sends items, each an encoded JSON value, as text frames whose
// payload is the JSON array of the items: as few frames as possible of at
// most MaxFrameBytes (a single larger item goes alone). Each frame (header
// and payload) is built in one pooled buffer and written with one write.
// It returns the number of bytes written, frame headers included.
func (f *Conn) WriteItems(items [][]byte) (int, error) {
	bp := framePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 2*MaxFrameBytes {
			framePool.Put(bp)
		}
	}()
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.refreshDeadline()
	written := 0
	for len(items) > 0 {
		n, size := 1, len(items[0])
		for n < len(items) && size+len(items[n]) <= MaxFrameBytes {
			size += len(items[n])
			n++
		}
		w, err := f.Conn.Write(TextFrame(bp, items[:n]))
		written += w
		if err != nil {
			return written, err
		}
		items = items[n:]
	}
	return written, nil
}

// WriteItemsNow is WriteItems for a caller that must not wait. It writes
// items (in one frame, so at most MaxFrameBytes of them) only when no other
// write is under way and the connection takes bytes at once, its send
// buffer not being full; otherwise it returns ok false, having written
// nothing. When the connection took only part of the frame, rest is not
// nil: the caller must run it, on a goroutine of its own, to write the
// remainder under the write deadline; no other frame is written until it
// returns. n counts the bytes written so far; a failed write (err) leaves
// the connection broken, as for WriteItems.
func (f *Conn) WriteItemsNow(items [][]byte) (n int, ok bool, rest func() (int, error), err error) {
	size := 0
	for _, it := range items {
		size += len(it) + 1
	}
	if f.raw == nil || size > MaxFrameBytes || !f.wmu.TryLock() {
		return 0, false, nil, nil
	}
	f.refreshDeadline() // the raw write fails once the deadline passed
	bp := framePool.Get().(*[]byte)
	frame := TextFrame(bp, items)
	w := attemptPool.Get().(*attempt)
	w.b = frame
	err = f.raw.Write(w.write)
	n, werr := w.n, w.err
	*w = attempt{write: w.write}
	attemptPool.Put(w)
	if err == nil {
		err = werr
	}
	switch {
	case err == nil && n == len(frame):
		ok = true
	case err == nil && n > 0:
		// Part of the frame went: the rest goes, as WriteItems would
		// send it, before any other frame.
		ok = true
		left := frame[n:]
		rest = func() (int, error) {
			defer f.wmu.Unlock()
			defer framePool.Put(bp)
			f.refreshDeadline()
			return f.Conn.Write(left)
		}
		return n, ok, rest, nil
	case err == nil || err == errWouldBlock:
		err = nil // nothing went: the caller writes later
	}
	framePool.Put(bp)
	f.wmu.Unlock()
	return n, ok, nil, err
}

// attempt is the raw write of WriteItemsNow: one attempt at b, which never
// waits for the connection. write is its method value, made once, so that
// an attempt allocates nothing.
type attempt struct {
	b     []byte
	n     int
	err   error
	write func(fd uintptr) bool
}

var attemptPool = sync.Pool{New: func() any {
	w := new(attempt)
	w.write = func(fd uintptr) bool {
		w.n, w.err = writeOnce(fd, w.b)
		return true
	}
	return w
}}

// Ping sends a ping frame.
func (f *Conn) Ping() error { return f.control(opPing, nil, time.Time{}) }

// Pong answers a ping from the client with its payload.
func (f *Conn) Pong(payload []byte) error { return f.control(opPong, payload, time.Time{}) }

// Shut sends a close frame with code and text (none when code is 0, for a
// connection that is broken or just goes away), waiting at most a second
// for it to go, then closes the connection.
func (f *Conn) Shut(code int, text string) error {
	if code != 0 {
		payload := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(text)), uint16(code))
		if len(text) > 123 {
			text = text[:123] // a control frame's payload is at most 125 bytes
		}
		_ = f.control(opClose, append(payload, text...), time.Now().Add(time.Second))
	}
	return f.Conn.Close()
}

// control writes a control frame under the write lock and deadline (or
// by the earlier limit, when not zero).
func (f *Conn) control(op byte, payload []byte, limit time.Time) error {
	var b [2 + 125]byte
	b[0], b[1] = 0x80|op, byte(len(payload)) // FIN; the server does not mask
	n := 2 + copy(b[2:], payload)
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.refreshDeadline()
	if !limit.IsZero() && limit.Before(f.deadline) {
		f.deadline = limit
		_ = f.Conn.SetWriteDeadline(limit)
	}
	_, err := f.Conn.Write(b[:n])
	return err
}

// refreshDeadline moves the write deadline the write timeout ahead, but
// only once half of it has passed: setting a deadline takes a lock in the
// runtime, too costly on every flush. f.wmu must be held.
func (f *Conn) refreshDeadline() {
	now := time.Now()
	if f.deadline.Sub(now) > f.timeout/2 {
		return
	}
	f.deadline = now.Add(f.timeout)
	_ = f.Conn.SetWriteDeadline(f.deadline)
}

// TextFrame builds in *bp an unmasked, final text frame whose payload is
// the JSON array of items, and returns it.
func TextFrame(bp *[]byte, items [][]byte) []byte {
	const room = 10 // the longest header
	b := append((*bp)[:0], make([]byte, room)...)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, ']')
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
	h[0] = 0x80 | opText // FIN, text
	return b[room-len(h):]
}

// framePool holds the buffers frames are built in.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
