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

	rc := http.NewResponseController(w)
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = hdrNoCache
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 5000\r\n\r\n")) {
		return
	}
	var ping <-chan time.Time
	if s.cfg.Ping > 0 {
		t := time.NewTicker(s.cfg.Ping)
		defer t.Stop()
		ping = t.C
	}
	var buf []byte
	for {
		select {
		case <-es.wake:
			_, err := sess.drain(func(items [][]byte) error {
				if len(items) == 0 {
					return nil
				}
				buf = append(buf[:0], "data: "...)
				buf = appendArray(buf, items)
				// Raw line breaks can only be whitespace between JSON tokens;
				// they would end the event, so they become spaces.
				sanitizeLineBreaks(buf)
				buf = append(buf, "\r\n\r\n"...)
				if !write(buf) {
					return errConnClosed
				}
				return nil
			})
			if err != nil {
				return
			}
		case <-ping:
			if !write([]byte(":\r\n\r\n")) {
				return
			}
		case <-es.done:
			return
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
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
