package bayeux

import "time"

// A session's delivery state (its queue, the stream bound to it, and its
// held /meta/connect) is owned by the Session: transports and the exchange
// change it only through the methods in this file. Each takes s.mu for the
// change and does any I/O (waking, writing) after releasing it.
//
// One /meta/connect waits per session: over HTTP as a poll (the request
// waits for messages or its hold time), on a WebSocket as a held reply (the
// messages travel on the socket meanwhile; the reply goes when the hold time
// ends). A newer connect answers the older one at once (supersede).

// enqueue appends an encoded message to the queue and wakes the connection
// that will carry it. It never blocks on I/O. It reports false when the queue
// is over its limit: the caller must then end the session as a slow consumer.
func (s *Session) enqueue(msg []byte) bool { return s.enqueueAt(msg, "", Position{}, false) }

// enqueueAt is enqueue for a publication on channel ch at pos (zero when it
// has no position): while ch is being replayed, it is held back instead,
// and once it was replayed, what the replay delivered already is dropped.
// now asks for the message to be written on the caller's goroutine when
// that needs no waiting (a delivery to few sessions; see socket.notifyNow).
func (s *Session) enqueueAt(msg []byte, ch string, pos Position, now bool) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return true
	}
	if s.queued+s.pendBytes+len(msg) > s.srv.cfg.MaxQueueBytes {
		s.mu.Unlock()
		return false
	}
	if pos.Offset != 0 && (s.recovering != nil || s.replayed != nil) && !s.admit(ch, pos, msg) {
		s.mu.Unlock()
		return true
	}
	if s.queue == nil && s.spare != nil {
		s.queue, s.spare = s.spare, nil
	}
	// One element at a time: appending a slice of slices would copy with
	// bulk write barriers, measurably slower on the fan-out path.
	s.queue = append(s.queue, msg)
	s.queued += len(msg)
	s.wakeLocked(len(s.queue) == 1, now)
	return true
}

// wakeLocked releases s.mu (which the caller holds) and, when messages were
// just queued on an empty queue (first), wakes the connection that will
// carry them: a socket writes them at once when now allows it.
func (s *Session) wakeLocked(first, now bool) {
	st, p := s.carrierLocked(), s.poll
	s.mu.Unlock()
	if first {
		if c, ok := st.(*socket); ok && now {
			c.notifyNow()
		} else if st != nil {
			st.notify() // a bound stream carries the messages
		} else if p != nil {
			p.wakeUp()
		}
	}
}

// drain takes every queued message and hands them to write, which sends
// them (after whatever it sends first; it is called even when nothing is
// queued). When write fails the messages go back to the head of the queue,
// so that nothing is lost; otherwise their slice is kept for reuse. It
// returns how many messages it took.
func (s *Session) drain(write func(items [][]byte) error) (int, error) {
	s.mu.Lock()
	items := s.queue
	s.queue, s.queued = nil, 0
	s.mu.Unlock()
	err := write(items)
	if err != nil {
		s.requeue(items)
	} else {
		s.recycle(items)
	}
	return len(items), err
}

// recycle keeps a written queue's array for reuse.
func (s *Session) recycle(items [][]byte) {
	if items == nil || cap(items) > 1024 {
		return // let a burst's large array go
	}
	clear(items)
	s.mu.Lock()
	if s.spare == nil {
		s.spare = items[:0]
	}
	s.mu.Unlock()
}

// requeue puts messages that could not be written back at the head of the
// queue.
func (s *Session) requeue(items [][]byte) {
	if len(items) == 0 {
		return
	}
	n := 0
	for _, it := range items {
		n += len(it)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.queue = append(items[:len(items):len(items)], s.queue...)
	s.queued += n
}

// pending reports whether messages are queued.
func (s *Session) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0
}

// waiting reports whether a connect is held on the session (a client is
// connected, so the session is not to be collected).
func (s *Session) waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.poll != nil || s.held != nil
}

// bound reports whether a stream is bound to the session.
func (s *Session) bound() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream != nil
}

// carrierLocked returns the stream that carries the session's messages:
// the bound stream, except an EventSource stream of an acknowledging
// session, whose messages travel with its connect replies (long-polls).
// s.mu is held.
func (s *Session) carrierLocked() stream {
	if s.ack != nil {
		if _, es := s.stream.(*esStream); es {
			return nil
		}
	}
	return s.stream
}

// bind makes st the session's stream and returns the stream it replaces; ok
// is false when the session has ended.
func (s *Session) bind(st stream) (old stream, ok bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false
	}
	old = s.stream
	s.stream = st
	queued := len(s.queue) > 0
	s.mu.Unlock()
	if queued {
		st.notify()
	}
	return old, true
}

// unbind detaches st if it is the session's stream, and returns the
// connect held on it, if any (the caller sends its reply or drops it);
// bound reports whether st was the session's stream.
func (s *Session) unbind(st stream) (h *held, bound bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != st {
		return nil, false
	}
	s.stream = nil
	if s.poll != nil && len(s.queue) > 0 {
		s.poll.wakeUp() // a held long-poll takes over what the stream left
	}
	if h := s.held; h != nil && h.conn == st {
		s.held = nil
		h.timer.Stop()
		return h, true
	}
	return nil, true
}

// startPoll registers an HTTP connect that may wait up to hold for
// messages, superseding the connect held on the session. It returns nil when
// the connect is answered at once; take then says whether it carries the
// queued messages (while a stream is bound, the stream carries them, as in
// faye).
func (s *Session) startPoll(hold time.Duration) (p *poll, take bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false
	}
	older := s.supersedeLocked()
	switch {
	case hold <= 0 && s.carrierLocked() != nil:
	case s.carrierLocked() == nil && (len(s.queue) > 0 || hold <= 0):
		take = true
	default:
		p = &poll{wake: make(chan struct{}, 1)}
		s.poll = p
	}
	s.mu.Unlock()
	older.answer(nil)
	return p, take
}

// endPoll ends p, which woke up, timed out or was cancelled. It says whether
// the connect takes the queued messages, and whether the session was ended
// as a slow consumer while p waited.
func (s *Session) endPoll(p *poll, cancelled bool) (take, slow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poll == p {
		s.poll = nil
	}
	switch {
	case cancelled:
	case p.ending:
		slow = p.ended == EndSlow
	case !p.superseded && s.carrierLocked() == nil:
		take = true
	}
	return take, slow
}

// connectOn binds the session to socket c for the successful /meta/connect
// pc, whose encoded reply is held on c for pc.hold (when it is 0 the caller
// sends it now), superseding the connect held on the session. It returns the
// stream c replaces and, when the superseded connect was held on c itself,
// its reply for the caller to send first. ok is false when the session has
// ended.
func (s *Session) connectOn(c *socket, pc *pendingConnect, reply []byte, id string) (old stream, first []byte, ok bool) {
	hold := pc.hold
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, false
	}
	old, s.stream = s.stream, c
	queued := len(s.queue) > 0
	older := s.supersedeLocked()
	if hold > 0 {
		h := &held{conn: c, reply: reply, id: id, batch: pc.batch}
		h.timer = time.AfterFunc(hold, func() { s.releaseHeld(h) })
		s.held = h
	}
	s.mu.Unlock()
	if queued {
		c.notify()
	}
	return old, older.answer(c), true
}

// releaseHeld answers the held connect h when its hold time is over.
func (s *Session) releaseHeld(h *held) {
	s.mu.Lock()
	if s.held != h {
		s.mu.Unlock()
		return
	}
	s.held = nil
	s.mu.Unlock()
	s.touch()
	_ = h.conn.write(h.reply)
}

// superseded is the connect a newer one replaced: at most one of the two
// fields is set.
type superseded struct {
	poll *poll
	held *held
}

// supersedeLocked removes the connect held on the session, to be answered
// (with answer) once s.mu is released. s.mu must be held.
func (s *Session) supersedeLocked() superseded {
	older := superseded{poll: s.poll, held: s.held}
	s.poll, s.held = nil, nil
	if older.poll != nil {
		older.poll.superseded = true
	}
	return older
}

// answer answers a superseded connect: a poll is woken (it answers itself),
// a held reply is written where it is held, unless that is on (the socket
// of the newer connect): then it is returned for the caller to send first.
func (o superseded) answer(on *socket) []byte {
	if o.poll != nil {
		o.poll.wakeUp()
	}
	h := o.held
	if h == nil {
		return nil
	}
	h.timer.Stop()
	if h.conn == on {
		return h.reply
	}
	_ = h.conn.write(h.reply)
	return nil
}

// shut ends the session's delivery: the queue is dropped, a waiting poll
// is told why and woken, a held connect answered (with reply, when not
// nil), and the bound stream ended. It returns the session's subscriptions
// for the caller to remove, and false when the session had ended already.
func (s *Session) shut(why EndReason, slowReply func(id string) []byte) (subs []string, ok bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false
	}
	s.closed = true
	subs = s.subs.take()
	s.queue, s.spare, s.queued = nil, nil, 0
	p, st, h := s.poll, s.stream, s.held
	s.poll, s.stream, s.held = nil, nil, nil
	if p != nil {
		p.ending, p.ended = true, why
	}
	s.mu.Unlock()

	if p != nil {
		p.wakeUp()
	}
	if h != nil {
		h.timer.Stop()
		reply := h.reply
		if why == EndSlow {
			reply = slowReply(h.id)
		}
		_ = h.conn.write(reply)
	}
	if st != nil {
		st.end(why)
	}
	return subs, true
}

// poll is a long-poll /meta/connect waiting for messages.
type poll struct {
	wake       chan struct{}
	superseded bool      // guarded by the session's mu
	ended      EndReason // guarded by the session's mu; valid when ending
	ending     bool      // the session ended while the poll waited
}

func (p *poll) wakeUp() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// held is a /meta/connect held on a WebSocket until the timeout; messages
// travel on the socket meanwhile.
type held struct {
	conn  *socket
	timer *time.Timer
	reply []byte // the encoded connect reply, sent when the hold ends
	id    string // the connect's id
	batch uint64 // the reply's batch number (acknowledging sessions)
}
