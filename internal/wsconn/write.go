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
