package bayeux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Header values shared by every response; net/http never modifies them.
var (
	hdrJSON        = []string{"application/json; charset=utf-8"}
	hdrJavaScript  = []string{"text/javascript; charset=utf-8"}
	hdrNoCache     = []string{"no-cache, no-store"}
	hdrNoSniff     = []string{"nosniff"}
	hdrTrue        = []string{"true"}
	hdrAttachment  = []string{"attachment; filename=f.txt"}
	hdrAllowMethod = []string{"POST, GET"}
	hdrMaxAge      = []string{"86400"}
)

// corsHeaders is the header list a CORS preflight always allows (faye's).
const corsHeaders = "Accept, Authorization, Content-Type, Pragma, X-Requested-With"

// jsonpCallback is what a JSONP callback name must look like: a dotted
// JavaScript identifier.
var jsonpCallback = regexp.MustCompile(`^(?i)[a-z_$][a-z0-9_$]*(\.[a-z_$][a-z0-9_$]*)*$`)

// badRequest answers HTTP 400 with text, which says what was wrong.
func badRequest(w http.ResponseWriter, text string) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	w.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(w, text)
}

// servePost handles long-polling and cross-origin long-polling: a JSON body,
// or a form body whose "message" field holds the JSON (any content type
// other than application/json, including the text/plain of browsers' CORS
// requests).
func (s *Server) servePost(w http.ResponseWriter, r *http.Request) {
	if !s.corsAllowed(w, r) {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var err error
	var (
		msgs []Message
		raw  []string
	)
	if mediaType(r.Header.Get("Content-Type")) == "application/json" {
		msgs, err = s.lim.parseBatch(body)
		raw = []string{unsafe.String(unsafe.SliceData(body), len(body))}
	} else {
		raw, err = formMessages(string(body))
		if err == nil {
			msgs, err = s.lim.parseValues(raw)
		}
	}
	if err != nil {
		badRequest(w, s.lim.requestError(err))
		return
	}
	s.respond(w, r, raw, msgs, "")
}

// serveJSONP handles callback-polling: GET with the JSON in the "message"
// query parameter and the callback name in "jsonp".
func (s *Server) serveJSONP(w http.ResponseWriter, r *http.Request) {
	if !s.corsAllowed(w, r) {
		return
	}
	q := r.URL.Query()
	callback := q.Get("jsonp")
	if callback == "" {
		callback = "jsonpcallback"
	}
	if len(callback) > 256 || !jsonpCallback.MatchString(callback) {
		badRequest(w, "Bad request")
		return
	}
	values := q["message"]
	if len(values) == 0 {
		badRequest(w, "Bad request")
		return
	}
	msgs, err := s.lim.parseValues(values)
	if err != nil {
		badRequest(w, s.lim.requestError(err))
		return
	}
	s.respond(w, r, values, msgs, callback)
}

// readBody reads a request's body within Config.MaxMessageSize (else 413)
// and Config.BodyTimeout (else 408), and reports whether it did; when it did
// not, the request is answered.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxMessageSize))
	if err == nil {
		// No deadline while a connect is held: net/http reads on in the
		// background to see the client go, and would take a timeout for that.
		_ = rc.SetReadDeadline(time.Time{})
		return body, true
	}
	// The deadline stays, and the connection closes: net/http must not wait
	// for the rest of the body.
	unreadBody(w)
	var (
		tooBig  *http.MaxBytesError
		timeout net.Error
	)
	switch {
	case errors.As(err, &tooBig):
		s.log.Debug("request body over the size limit", "limit", s.cfg.MaxMessageSize, "ip", logIP(s.requestIP(r)))
		http.Error(w, fmt.Sprintf("Request entity too large (limit %d bytes)", s.cfg.MaxMessageSize), http.StatusRequestEntityTooLarge)
	case errors.As(err, &timeout) && timeout.Timeout():
		s.log.Debug("request body too slow", "limit", s.cfg.BodyTimeout, "ip", logIP(s.requestIP(r)))
		http.Error(w, fmt.Sprintf("Request timeout: the body took over %v", s.cfg.BodyTimeout), http.StatusRequestTimeout)
	default:
		badRequest(w, "Bad request")
	}
	return nil, false
}

// formMessages decodes a form body and returns its "message" fields.
func formMessages(body string) ([]string, error) {
	q, err := url.ParseQuery(body)
	if err != nil || len(q["message"]) == 0 {
		return nil, errBadRequest
	}
	return q["message"], nil
}

// mediaType returns the lower-cased media type of a Content-Type value.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// respond processes msgs, waits for a held connect if there is one, and
// writes the replies (as JSONP when callback is set). raw holds the request's
// JSON, forwarded as is when the session lives on another node.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, raw []string, msgs []Message, callback string) {
	owner, err := s.ownerElsewhere(r.Context(), msgs)
	if err != nil {
		s.log.Warn("cluster unavailable", "err", err)
		http.Error(w, "Cluster unavailable, retry later", http.StatusServiceUnavailable)
		return
	}
	if owner != "" {
		s.forwardHTTP(w, r, owner, raw, callback)
		return
	}
	a, ok := s.answer(r.Context(), r, msgs)
	if !ok {
		return // the client went away; its messages stay queued
	}
	_ = a.send(&s.stats, pollTransport(callback), func(items [][]byte) error { return s.writeReplies(w, items, callback) })
}

// answered is the response to an HTTP request: the replies, then the
// messages its connect takes from its session's queue.
type answered struct {
	items [][]byte
	take  *Session // the session whose queued messages go after items
	batch uint64   // the connect reply's batch (acknowledging sessions)
	x     *exchange
}

// send writes the answer with write. The queued messages it takes go back
// to the queue if writing fails (or, for an acknowledging session, are
// sent again after the client's next connect), so that nothing is lost.
// The messages written count as delivered over transport tr.
func (a *answered) send(c *counters, tr transport, write func(items [][]byte) error) error {
	defer a.x.finish()
	if a.take == nil {
		return write(a.items)
	}
	withReplies := func(queued [][]byte) error { return write(append(a.items, queued...)) }
	var (
		n   int
		err error
	)
	if a.take.ack != nil {
		n, err = a.take.drainBatch(a.batch, withReplies)
	} else {
		n, err = a.take.drain(withReplies)
	}
	if err == nil {
		c.wrote(tr, n, 0) // write counts the bytes
	}
	return err
}

// answer processes msgs and waits for a held connect. It reports false when
// ctx ended while the connect was held.
func (s *Server) answer(ctx context.Context, r *http.Request, msgs []Message) (*answered, bool) {
	x := s.newExchange(ctx, r, nil)
	x.run(msgs)
	a := &answered{items: x.replies, x: x}
	if c := x.connect; c != nil {
		// The response carries the replies, then the connect's messages:
		// replayed messages may join them, after the subscribe's reply.
		x.finish()
		take, ok := s.waitConnect(ctx, c)
		if !ok {
			return nil, false
		}
		a.batch = c.batch
		// The hold may outlast the batch's hook context: the reply
		// gets a context of its own.
		a.items = append(a.items, s.encodeAlone(ctx, r, &c.reply))
		if take {
			a.take = c.sess
		}
	}
	return a, true
}

// writeReplies writes items as the JSON array of a long-polling response,
// or as a JSONP script when callback is set, and counts the bytes written.
func (s *Server) writeReplies(w http.ResponseWriter, items [][]byte, callback string) error {
	var body []byte
	if callback != "" {
		body = append(body, "/**/"...)
		body = append(body, callback...)
		body = append(body, '(')
		body = appendArray(body, items)
		body = append(escapeJSSeparators(body), ");"...)
	} else {
		body = appendArray(make([]byte, 0, 64), items)
	}
	h := w.Header()
	if callback != "" {
		h["Content-Type"] = hdrJavaScript
		h["Content-Disposition"] = hdrAttachment
	} else {
		h["Content-Type"] = hdrJSON
	}
	h["Cache-Control"] = hdrNoCache
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	n, err := w.Write(body)
	s.stats.wrote(pollTransport(callback), 0, n)
	return err
}

// pollTransport is the transport of an HTTP response, in the counters:
// callback-polling when it has a JSONP callback, else long-polling.
func pollTransport(callback string) transport {
	if callback != "" {
		return trCallbackPolling
	}
	return trLongPolling
}

// waitConnect holds an HTTP connect until a message is queued for its
// session, its hold time ends, or the server shuts down, and says whether
// the connect takes the queued messages. It reports false when the request
// was cancelled first: the messages then stay queued for the client's next
// connect.
func (s *Server) waitConnect(ctx context.Context, c *pendingConnect) (take, ok bool) {
	p, take := c.sess.startPoll(c.hold)
	if p == nil {
		return take, true
	}
	timer := time.NewTimer(c.hold)
	defer timer.Stop()
	cancelled, shutdown := false, false
	select {
	case <-p.wake:
	case <-timer.C:
	case <-ctx.Done():
		cancelled = true
	case <-s.ctx.Done():
		shutdown = true
	}
	take, slow := c.sess.endPoll(p, cancelled)
	if cancelled {
		return false, false
	}
	switch {
	case slow:
		c.reply = s.slowReply(c.reply.ID)
	case shutdown:
		c.reply = s.drainReply(c.reply.ID)
	}
	c.sess.touch()
	return take, true
}

// escapeJSSeparators escapes U+2028 and U+2029, which JSON allows raw in
// strings but JavaScript did not, so a JSONP body is always valid script.
func escapeJSSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte("\u2028")) && !bytes.Contains(b, []byte("\u2029")) {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\u2028"), []byte(`\u2028`))
	return bytes.ReplaceAll(b, []byte("\u2029"), []byte(`\u2029`))
}

// corsAllowed adds the CORS headers of a response to a request with an
// Origin. It answers 403 and reports false when the origin is not allowed.
func (s *Server) corsAllowed(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !s.originAllowed(origin) {
		unreadBody(w)
		http.Error(w, "Origin not allowed", http.StatusForbidden)
		return false
	}
	h := w.Header()
	h["Access-Control-Allow-Origin"] = []string{origin}
	h["Access-Control-Allow-Credentials"] = hdrTrue
	return true
}

// servePreflight answers a CORS preflight. Allowed headers are faye's list
// plus whatever the browser asks for, so that pages which add their own
// headers work cross-origin.
func (s *Server) servePreflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" {
		origin = "*"
	} else if !s.originAllowed(origin) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	allow := corsHeaders
	if extra := r.Header.Get("Access-Control-Request-Headers"); extra != "" {
		allow += ", " + extra
	}
	h := w.Header()
	h["Access-Control-Allow-Origin"] = []string{origin}
	h["Access-Control-Allow-Credentials"] = hdrTrue
	h["Access-Control-Allow-Headers"] = []string{allow}
	h["Access-Control-Allow-Methods"] = hdrAllowMethod
	h["Access-Control-Max-Age"] = hdrMaxAge
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusOK)
}
