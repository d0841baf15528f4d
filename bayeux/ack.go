package bayeux

import (
	"strconv"

	"github.com/tidwall/gjson"
)

// The acknowledgement extension (CometD's AckExtension, server side) gives
// a session at-least-once delivery over long-polling and WebSocket. A
// client enables it with ext.ack true in its handshake (answered with
// ext.ack true). From then on its messages travel only with /meta/connect
// replies: each reply carries a batch number in ext.ack, the messages sent
// with it are kept, and the client's next connect names in ext.ack the
// last batch it received. Kept messages of later batches were lost on the
// way and are sent again, first. A client may so receive a message twice,
// never zero times while its session lives.

// ackState is a session's acknowledgement state, guarded by the session's
// mu.
type ackState struct {
	batch   uint64     // the last batch number given to a connect reply
	unacked []ackBatch // sent and not yet acknowledged, oldest first
}

// ackBatch is the messages sent with one connect reply.
type ackBatch struct {
	batch uint64
	items [][]byte
	bytes int
}

// wantsAck reports whether a handshake enables the extension.
func wantsAck(ext string) bool {
	return ext != "" && gjson.Get(ext, "ack").Type == gjson.True
}

// ackedBatch reads ext.ack of a connect: the last batch the client
// received, and whether it said.
func ackedBatch(ext string) (uint64, bool) {
	if ext == "" {
		return 0, false
	}
	v := gjson.Get(ext, "ack")
	if v.Type != gjson.Number || v.Num < 0 {
		return 0, false
	}
	return v.Uint(), true
}

// acknowledge handles a connect of an acknowledging session: batches up to
// n are forgotten, later ones go back to the head of the queue to be sent
// again. A connect that does not say (has is false) acknowledges
// everything sent, so that a client that stops acknowledging cannot make
// the server keep messages without bound. It returns the batch number of
// the connect's reply.
func (s *Session) acknowledge(n uint64, has bool) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.ack
	if !has {
		n = a.batch
	}
	var resend [][]byte
	batches := 0
	for _, b := range a.unacked {
		s.pendBytes -= b.bytes
		if b.batch > n {
			resend = append(resend, b.items...)
			s.queued += b.bytes
			batches++
		}
	}
	clear(a.unacked)
	a.unacked = a.unacked[:0]
	if len(resend) > 0 && !s.closed {
		s.queue = append(resend, s.queue...)
		s.srv.stats.ackBatches.Add(uint64(batches))
		s.srv.stats.ackResent.Add(uint64(len(resend)))
	}
	a.batch++
	return a.batch
}

// keepUnacked records items as sent with batch. s.mu is held.
func (s *Session) keepUnacked(batch uint64, items [][]byte) {
	if len(items) == 0 {
		return
	}
	n := 0
	for _, it := range items {
		n += len(it)
	}
	s.ack.unacked = append(s.ack.unacked, ackBatch{batch: batch, items: items, bytes: n})
	s.pendBytes += n
}

// drainBatch takes the queued messages for an HTTP connect reply of batch,
// keeps them until they are acknowledged, and writes them with write (a
// failed write loses nothing: the client's next connect does not
// acknowledge the batch, and they are sent again). It returns how many
// messages it took.
func (s *Session) drainBatch(batch uint64, write func(items [][]byte) error) (int, error) {
	s.mu.Lock()
	items := s.queue
	s.queue, s.queued = nil, 0
	s.keepUnacked(batch, items)
	s.mu.Unlock()
	return len(items), write(items)
}

// drainHeld sends the queued messages of an acknowledging session with the
// connect reply held on socket c, and reports how many it sent: none while
// no connect is held on c (the messages wait for the next connect).
func (s *Session) drainHeld(c *socket) (int, error) {
	s.mu.Lock()
	h := s.held
	if h == nil || h.conn != c || len(s.queue) == 0 {
		s.mu.Unlock()
		return 0, nil
	}
	s.held = nil
	h.timer.Stop()
	items := s.queue
	s.queue, s.queued = nil, 0
	s.keepUnacked(h.batch, items)
	s.mu.Unlock()
	s.touch()
	// The messages first, then the reply that acknowledges their batch,
	// in one frame.
	out := make([][]byte, 0, len(items)+1)
	return len(items), c.writeAll(append(append(out, items...), h.reply))
}

// sendable reports whether socket c has something to send for the
// session: queued messages, and for an acknowledging session a connect
// held on c to carry them.
func (s *Session) sendable(c *socket) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ack != nil {
		return len(s.queue) > 0 && s.held != nil && s.held.conn == c
	}
	return len(s.queue) > 0
}

// appendAckExt appends {"ack":<batch>} to b.
func appendAckExt(b []byte, batch uint64) []byte {
	b = append(b, `{"ack":`...)
	b = strconv.AppendUint(b, batch, 10)
	return append(b, '}')
}

// handshakeExt enables on sess what the handshake's ext asks for and the
// server offers, and returns the reply's ext: {"ack":true} for the
// acknowledgement extension (when ack is offered), {"replay":true} for a
// client that announces Salesforce's replay extension (replay itself needs
// no handshake).
func handshakeExt(ext string, sess *Session, ack bool) string {
	if ext == "" {
		return ""
	}
	var b []byte
	if ack && wantsAck(ext) {
		sess.ack = &ackState{}
		b = append(b, `"ack":true`...)
	}
	if gjson.Get(ext, "replay").Type == gjson.True {
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"replay":true`...)
	}
	if b == nil {
		return ""
	}
	return "{" + string(b) + "}"
}
