package bayeux

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"time"
)

// esStream is an EventSource response bound to a session: messages go down
// the stream while the client sends its connects and publishes by POST.
type esStream struct {
	wake    chan struct{}
	done    chan struct{}
	endOnce sync.Once
}

func (e *esStream) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *esStream) end(EndReason) { e.endOnce.Do(func() { close(e.done) }) }

func acceptsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// serveEventSource streams the messages of session id, one event per batch:
// "data: [...]". Unknown clientIds are refused, so nobody can open a stream
// on a session that does not exist.
func (s *Server) serveEventSource(w http.ResponseWriter, r *http.Request, id string) {
	sess := s.sessions.get(id)
	if sess == nil {
		http.Error(w, "Unknown client", http.StatusNotFound)
		return
	}
	es := &esStream{wake: make(chan struct{}, 1), done: make(chan struct{})}
	if _, ok := sess.bind(es); !ok {
		http.Error(w, "Unknown client", http.StatusNotFound)
		return
	}
	defer sess.unbind(es)

	ew := &eventWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.WriteTimeout, stats: &s.stats}
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = hdrNoCache
	w.WriteHeader(http.StatusOK)
	if ew.write([]byte("retry: 5000\r\n\r\n")) != nil {
		return
	}
	var ping <-chan time.Time
	if s.cfg.Ping > 0 {
		t := time.NewTicker(s.cfg.Ping)
		defer t.Stop()
		ping = t.C
	}
	for {
		var err error
		select {
		case <-es.wake:
			if sess.ack == nil { // else the connects carry the messages
				var n int
				n, err = sess.drain(ew.event)
				if err == nil {
					s.stats.wrote(trEventSource, n, 0) // ew counts the bytes
				}
			}
		case <-ping:
			err = ew.write([]byte(":\r\n\r\n"))
		case <-es.done:
			return
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// eventWriter writes an EventSource response, each write flushed within
// the write timeout.
type eventWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
	stats   *counters // counts the bytes written
}

func (ew *eventWriter) write(b []byte) error {
	_ = ew.rc.SetWriteDeadline(time.Now().Add(ew.timeout))
	n, err := ew.w.Write(b)
	ew.stats.wrote(trEventSource, 0, n)
	if err != nil {
		return err
	}
	return ew.rc.Flush()
}

// event writes items as one event, "data: [...]" (nothing when there are
// none).
func (ew *eventWriter) event(items [][]byte) error {
	if len(items) == 0 {
		return nil
	}
	ew.buf = append(ew.buf[:0], "data: "...)
	ew.buf = appendArray(ew.buf, items)
	// Raw line breaks can only be whitespace between JSON tokens; they
	// would end the event, so they become spaces.
	sanitizeLineBreaks(ew.buf)
	ew.buf = append(ew.buf, "\r\n\r\n"...)
	return ew.write(ew.buf)
}

func sanitizeLineBreaks(b []byte) {
	if bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0 {
		return
	}
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
}
