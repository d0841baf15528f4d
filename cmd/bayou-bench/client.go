package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"
)

// target is the server under test.
type target struct {
	httpURL string
	wsURL   string
	http    *http.Client
	dialer  *websocket.Dialer
}

func newTarget(rawURL string, readBuf int) (*target, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("--url: want http://host:port/path, got %q", rawURL)
	}
	ws := *u
	ws.Scheme = "ws"
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &target{
		httpURL: u.String(),
		wsURL:   ws.String(),
		http:    &http.Client{Transport: tr},
		dialer: &websocket.Dialer{
			HandshakeTimeout: 15 * time.Second,
			ReadBufferSize:   readBuf,
			WriteBufferSize:  1024,
			WriteBufferPool:  &sync.Pool{},
		},
	}, nil
}

// post sends body and returns the response body appended to buf[:0].
func (t *target) post(ctx context.Context, body []byte, buf []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.httpURL, bytes.NewReader(body))
	if err != nil {
		return buf, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		return buf, err
	}
	buf, err = readInto(resp.Body, buf[:0])
	resp.Body.Close()
	if err != nil {
		return buf, err
	}
	if resp.StatusCode != http.StatusOK {
		return buf, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, buf)
	}
	return buf, nil
}

// readInto reads r to the end into buf, growing it only when full.
func readInto(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

var handshakeBody = []byte(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket","long-polling"],"id":"h"}]`)

// handshake returns a new clientId.
func (t *target) handshake(ctx context.Context) (string, error) {
	body, err := t.post(ctx, handshakeBody, nil)
	if err != nil {
		return "", fmt.Errorf("handshake: %w", err)
	}
	r := gjson.ParseBytes(body)
	if r.IsArray() {
		r = r.Get("0")
	}
	if !r.Get("successful").Bool() {
		return "", fmt.Errorf("handshake refused: %.200s", body)
	}
	id := r.Get("clientId").String()
	if id == "" {
		return "", fmt.Errorf("handshake: no clientId in %.200s", body)
	}
	return id, nil
}

func connectFrame(clientID, connType string) []byte {
	return fmt.Appendf(nil, `[{"channel":"/meta/connect","clientId":%q,"connectionType":%q,"id":"c"}]`, clientID, connType)
}

// subscribeFrame subscribes to every channel, one message each, in one
// frame.
func subscribeFrame(clientID string, channels ...string) []byte {
	b := []byte{'['}
	for i, ch := range channels {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"channel":"/meta/subscribe","clientId":%q,"subscription":%q,"id":"s%d"}`, clientID, ch, i)
	}
	return append(b, ']')
}

// events counts errors and notable events by kind, keeping a few samples.
type events struct {
	mu      sync.Mutex
	counts  map[string]int64
	samples map[string]string
}

func newEvents() *events {
	return &events{counts: map[string]int64{}, samples: map[string]string{}}
}

func (e *events) add(kind, detail string) { e.addN(kind, detail, 1) }

// addN counts n events of a kind.
func (e *events) addN(kind, detail string, n int64) {
	e.mu.Lock()
	e.counts[kind] += n
	if _, ok := e.samples[kind]; !ok && detail != "" {
		if len(detail) > 300 {
			detail = detail[:300]
		}
		e.samples[kind] = detail
	}
	e.mu.Unlock()
}

func (e *events) snapshot() (map[string]int64, map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := make(map[string]int64, len(e.counts))
	s := make(map[string]string, len(e.samples))
	for k, v := range e.counts {
		c[k] = v
	}
	for k, v := range e.samples {
		s[k] = v
	}
	return c, s
}

// shared is the state of a load run that subscribers and publishers share.
type shared struct {
	ev        *events
	stopping  atomic.Bool  // the run is over: socket errors are expected
	delivered atomic.Int64 // deliveries received by every subscriber
	owed      atomic.Int64 // deliveries owed to live subscribers for publishes sent
	sent      atomic.Int64 // publishes sent
	alive     atomic.Int64 // live subscribers (fan-out)
	dropped   atomic.Int64 // subscribers the server dropped or that failed

	// Flow control: publishers wait while owed-delivered > maxLag; the
	// subscriber whose delivery brings the lag back under wakes them.
	maxLag  int64
	waiters atomic.Int32
	gateMu  sync.Mutex
	gateCh  chan struct{}
}

// lagging reports whether publishers must wait.
func (sh *shared) lagging() bool {
	return sh.owed.Load()-sh.delivered.Load() > sh.maxLag
}

// addDelivered adds n deliveries and wakes waiting publishers when the lag is
// back under the limit.
func (sh *shared) addDelivered(n int64) {
	sh.delivered.Add(n)
	if sh.waiters.Load() > 0 && !sh.lagging() {
		sh.wake()
	}
}

func (sh *shared) wake() {
	sh.gateMu.Lock()
	if sh.gateCh != nil {
		close(sh.gateCh)
		sh.gateCh = nil
	}
	sh.gateMu.Unlock()
}

// waitCh returns the channel closed at the next wake-up.
func (sh *shared) waitCh() <-chan struct{} {
	sh.gateMu.Lock()
	defer sh.gateMu.Unlock()
	if sh.gateCh == nil {
		sh.gateCh = make(chan struct{})
	}
	return sh.gateCh
}

// subscriber is one client subscribed to one channel, over a WebSocket or
// long-polling.
type subscriber struct {
	idx      int
	channel  string
	also     []string // more channels, subscribed to in the same frame
	clientID string
	lp       bool
	sh       *shared
	t        *target

	conn    *websocket.Conn
	wmu     sync.Mutex
	connect []byte

	stats    *recvStats
	sentTo   atomic.Int64 // personal channels: publishes sent to this one
	expect   atomic.Int64 // personal channels: measured publishes acked for it
	gone     atomic.Bool  // dropped: no longer owed deliveries
	dead     bool         // reader goroutine only
	why      string
	done     chan struct{}
	personal bool
	leaving  atomic.Bool // it is being closed on purpose: errors are expected
	// onDelivery, when set, also sees every first arrival of one of our
	// messages (on the reader's goroutine).
	onDelivery func(f *msgFields, now int64)
}

// quiet reports whether socket errors are expected now: the run is over
// or the subscriber is leaving.
func (s *subscriber) quiet() bool { return s.sh.stopping.Load() || s.leaving.Load() }

// subscribe handshakes, subscribes and connects. It returns once the
// server has acknowledged the subscription; the reader runs afterwards.
func (s *subscriber) subscribe(ctx context.Context) error {
	id, err := s.t.handshake(ctx)
	if err != nil {
		return err
	}
	s.clientID = id
	if s.lp {
		body, err := s.t.post(ctx, subscribeFrame(id, s.channels()...), nil)
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		if err := checkSubscribed(body, len(s.channels())); err != nil {
			return err
		}
		s.connect = connectFrame(id, "long-polling")
		return nil
	}
	conn, _, err := s.t.dialer.DialContext(ctx, s.t.wsURL, nil)
	if err != nil {
		return fmt.Errorf("websocket dial: %w", err)
	}
	s.conn = conn
	s.connect = connectFrame(id, "websocket")
	if err := conn.WriteMessage(websocket.TextMessage, s.connect); err != nil {
		conn.Close()
		return fmt.Errorf("send connect: %w", err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, subscribeFrame(id, s.channels()...)); err != nil {
		conn.Close()
		return fmt.Errorf("send subscribe: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	confirmed := 0
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return fmt.Errorf("waiting for the subscribe reply: %w", err)
		}
		var it frameIter
		var f msgFields
		it.reset(data)
		for it.next(&f) {
			switch string(f.channel) {
			case "/meta/subscribe":
				if f.successful != 1 {
					conn.Close()
					return fmt.Errorf("subscribe refused: %s", f.errText)
				}
				if confirmed++; confirmed == len(s.channels()) {
					return nil
				}
			case "/meta/connect":
				if f.successful != 1 {
					conn.Close()
					return fmt.Errorf("connect refused: %s", f.errText)
				}
				if err := conn.WriteMessage(websocket.TextMessage, s.connect); err != nil {
					conn.Close()
					return err
				}
			}
		}
		if it.err != nil {
			conn.Close()
			return fmt.Errorf("subscribe: %w: %.200s", it.err, data)
		}
	}
}

// checkSubscribed checks that body holds n successful subscribe replies.
func checkSubscribed(body []byte, n int) error {
	var it frameIter
	var f msgFields
	it.reset(body)
	got := 0
	for it.next(&f) {
		if string(f.channel) == "/meta/subscribe" {
			if f.successful != 1 {
				return fmt.Errorf("subscribe refused: %s", f.errText)
			}
			got++
		}
	}
	if got != n {
		return fmt.Errorf("%d subscribe replies of %d in %.200s", got, n, body)
	}
	return nil
}

// channels returns the channels the subscriber subscribes to: also, then
// channel.
func (s *subscriber) channels() []string {
	return append(append([]string(nil), s.also...), s.channel)
}

// die marks the subscriber lost (once) and stops counting it as owed
// deliveries for the publishers' flow control.
func (s *subscriber) die(kind, detail string) {
	if s.dead {
		return
	}
	s.dead, s.why = true, kind
	s.gone.Store(true)
	if s.quiet() {
		return
	}
	s.sh.ev.add(kind, fmt.Sprintf("subscriber %d (%s): %s", s.idx, s.clientID, detail))
	s.sh.dropped.Add(1)
	if s.personal {
		s.sh.owed.Add(-(s.sentTo.Load() - s.stats.msgs))
	} else {
		s.sh.alive.Add(-1)
		s.sh.owed.Add(-(s.sh.sent.Load() - s.stats.msgs))
	}
	s.sh.addDelivered(0)
}

// handleFrame accounts for the messages of one frame, re-sends held
// connects, and marks the subscriber dead when the server ends its session.
func (s *subscriber) handleFrame(buf []byte, it *frameIter, f *msgFields) {
	now := time.Now().UnixNano()
	st := s.stats
	before := st.msgs
	it.reset(buf)
	for it.next(f) {
		if f.isMeta() {
			switch string(f.channel) {
			case "/meta/connect":
				if f.successful != 1 {
					s.die("subscriber dropped by the server (unsuccessful /meta/connect)", string(f.errText))
					continue
				}
				if !s.lp && !s.dead {
					s.wmu.Lock()
					err := s.conn.WriteMessage(websocket.TextMessage, s.connect)
					s.wmu.Unlock()
					if err != nil {
						s.die("subscriber write failed", err.Error())
					}
				}
			case "/meta/subscribe", "/meta/unsubscribe":
			default:
				if f.successful == 0 {
					s.sh.ev.add("unsuccessful meta reply to a subscriber", string(f.channel)+": "+string(f.errText))
				}
			}
			continue
		}
		if f.successful >= 0 {
			continue // a publish reply: not ours
		}
		if st.delivery(f, now) && s.onDelivery != nil {
			s.onDelivery(f, now)
		}
	}
	if it.err != nil {
		s.sh.ev.add("malformed frame", fmt.Sprintf("%.200s", buf))
	}
	st.frames++
	if n := st.msgs - before; n > 0 {
		s.sh.addDelivered(n)
	}
}

// readWS is the WebSocket subscriber's receive loop; it reuses one buffer.
func (s *subscriber) readWS() {
	defer close(s.done)
	buf := make([]byte, 0, 16<<10)
	var it frameIter
	var f msgFields
	for {
		_, r, err := s.conn.NextReader()
		if err != nil {
			if !s.quiet() {
				kind := "subscriber socket closed by the server"
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					kind = fmt.Sprintf("subscriber socket closed by the server (%d %s)", ce.Code, ce.Text)
				}
				s.die(kind, err.Error())
			}
			return
		}
		buf, err = readInto(r, buf[:0])
		if err != nil {
			if !s.quiet() {
				s.die("subscriber read failed", err.Error())
			}
			return
		}
		s.handleFrame(buf, &it, &f)
	}
}

// pollLP is the long-polling subscriber's loop of connects.
func (s *subscriber) pollLP(ctx context.Context) {
	defer close(s.done)
	buf := make([]byte, 0, 16<<10)
	var it frameIter
	var f msgFields
	for ctx.Err() == nil && !s.dead {
		var err error
		buf, err = s.t.post(ctx, s.connect, buf)
		if err != nil {
			if ctx.Err() == nil && !s.quiet() {
				s.die("long-poll request failed", err.Error())
			}
			return
		}
		s.handleFrame(buf, &it, &f)
	}
}

func (s *subscriber) close() {
	if s.conn != nil {
		s.wmu.Lock()
		_ = s.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		s.wmu.Unlock()
		s.conn.Close()
	}
}

// publisher sends numbered messages over a WebSocket (with a window of
// unacknowledged publishes) or as anonymous HTTP POSTs (one at a time, so
// that their order is defined).
type publisher struct {
	idx      int
	sh       *shared
	t        *target
	cfg      *loadConfig
	subs     []*subscriber
	http     bool
	clientID string
	conn     *websocket.Conn
	wmu      sync.Mutex
	connect  []byte
	window   chan struct{}
	done     chan struct{}

	sent          atomic.Int64
	acked         atomic.Int64
	failed        atomic.Int64
	measured      atomic.Int64 // measured publishes sent
	measuredAcked atomic.Int64 // ... and acknowledged as successful
	stalls        atomic.Int64
	rng           uint64
}

func (p *publisher) start(ctx context.Context) error {
	if p.http {
		return nil
	}
	var err error
	if p.clientID, p.conn, p.connect, err = p.t.openPublisher(ctx); err != nil {
		return err
	}
	p.window = make(chan struct{}, p.cfg.window)
	go p.readAcks()
	return nil
}

// openPublisher starts what a publisher over WebSocket needs: a session,
// its socket, and the connect it keeps held there (returned, to be sent
// again when answered).
func (t *target) openPublisher(ctx context.Context) (clientID string, conn *websocket.Conn, connect []byte, err error) {
	id, err := t.handshake(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	conn, _, err = t.dialer.DialContext(ctx, t.wsURL, nil)
	if err != nil {
		return "", nil, nil, fmt.Errorf("publisher websocket dial: %w", err)
	}
	connect = connectFrame(id, "websocket")
	if err := conn.WriteMessage(websocket.TextMessage, connect); err != nil {
		conn.Close()
		return "", nil, nil, err
	}
	return id, conn, connect, nil
}

// readAcks handles publish replies and re-sends held connects.
func (p *publisher) readAcks() {
	defer close(p.done)
	buf := make([]byte, 0, 4<<10)
	var it frameIter
	var f msgFields
	for {
		_, r, err := p.conn.NextReader()
		if err != nil {
			if !p.sh.stopping.Load() {
				p.sh.ev.add("publisher socket closed", err.Error())
			}
			return
		}
		if buf, err = readInto(r, buf[:0]); err != nil {
			if !p.sh.stopping.Load() {
				p.sh.ev.add("publisher read failed", err.Error())
			}
			return
		}
		it.reset(buf)
		for it.next(&f) {
			if string(f.channel) == "/meta/connect" {
				if f.successful != 1 {
					p.sh.ev.add("publisher connect refused", string(f.errText))
					continue
				}
				p.wmu.Lock()
				_ = p.conn.WriteMessage(websocket.TextMessage, p.connect)
				p.wmu.Unlock()
				continue
			}
			if f.successful < 0 {
				continue // a delivery
			}
			_, m, tgt, ok := parseID(f.id)
			if !ok {
				p.sh.ev.add("publish reply with an unknown id", string(f.id))
				continue
			}
			p.ack(&f, m, tgt)
			select {
			case <-p.window:
			default:
			}
		}
		if it.err != nil {
			p.sh.ev.add("malformed frame", fmt.Sprintf("%.200s", buf))
		}
	}
}

// ack accounts for the reply to a publish (measured or not, to target).
func (p *publisher) ack(f *msgFields, m bool, tgt int) {
	p.acked.Add(1)
	if f.successful != 1 {
		p.failed.Add(1)
		p.sh.ev.add("publish refused", string(f.errText))
		return
	}
	if m {
		p.measuredAcked.Add(1)
		if p.cfg.personal && tgt >= 0 && tgt < len(p.subs) {
			p.subs[tgt].expect.Add(1)
		}
	}
}

// parseID parses "seq-m-target".
func parseID(id []byte) (seq int64, measured bool, tgt int, ok bool) {
	parts := [3]int64{}
	k := 0
	for _, c := range id {
		switch {
		case c == '-':
			k++
			if k > 2 {
				return 0, false, 0, false
			}
		case c >= '0' && c <= '9':
			parts[k] = parts[k]*10 + int64(c-'0')
		default:
			return 0, false, 0, false
		}
	}
	if k != 2 {
		return 0, false, 0, false
	}
	return parts[0], parts[1] == 1, int(parts[2]), true
}

// next returns a pseudo-random number (xorshift64*), for personal targets.
func (p *publisher) next() uint64 {
	p.rng ^= p.rng >> 12
	p.rng ^= p.rng << 25
	p.rng ^= p.rng >> 27
	return p.rng * 2685821657736338717
}

// gate waits while the subscribers are more than maxLag deliveries behind
// the publishes sent, so that a fast-acking server cannot queue without
// bound. It gives up after stallTimeout (counted as a stall).
func (p *publisher) gate(ctx context.Context) {
	sh := p.sh
	if sh.maxLag <= 0 || !sh.lagging() {
		return
	}
	sh.waiters.Add(1)
	defer sh.waiters.Add(-1)
	timer := time.NewTimer(p.cfg.stallTimeout)
	defer timer.Stop()
	for sh.lagging() {
		ch := sh.waitCh()
		if !sh.lagging() { // a wake-up may have been missed meanwhile
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			p.stalls.Add(1)
			return
		case <-ctx.Done():
			return
		}
	}
}

// run publishes from start until t1 (unix ns); messages sent in [t0, t1)
// are marked as measured.
func (p *publisher) run(ctx context.Context, start time.Time, t0, t1 int64) {
	var interval time.Duration
	if p.cfg.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(p.cfg.publishers) / p.cfg.rate)
		start = start.Add(interval * time.Duration(p.idx) / time.Duration(p.cfg.publishers))
	}
	next := start
	buf := make([]byte, 0, 256+p.cfg.payload)
	var rbuf []byte
	pad := strings.Repeat("x", p.cfg.payload)
	var seq int64
	for ctx.Err() == nil {
		if !p.http {
			select {
			case p.window <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		p.gate(ctx)
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			next = next.Add(interval)
		}
		now := time.Now().UnixNano()
		if now >= t1 {
			if !p.http {
				<-p.window
			}
			return
		}
		seq++
		m := now >= t0
		tgt := 0
		ch := p.cfg.channel
		if p.cfg.personal {
			tgt = int(p.next() % uint64(len(p.subs)))
			ch = p.subs[tgt].channel
		}
		buf = appendPublish(buf[:0], benchMsg{channel: ch, seq: seq, sent: now, pub: p.idx, measured: m, pad: pad,
			clientID: p.clientID, target: tgt, wrap: !p.http})

		// Flow control bookkeeping before the send: the deliveries may
		// arrive before the call returns.
		p.sh.sent.Add(1)
		if p.cfg.personal {
			s := p.subs[tgt]
			s.sentTo.Add(1)
			if !s.gone.Load() {
				p.sh.owed.Add(1)
			}
		} else {
			p.sh.owed.Add(p.sh.alive.Load())
		}
		p.sent.Add(1)
		if m {
			p.measured.Add(1)
		}
		if p.http {
			var err error
			rbuf, err = p.t.post(ctx, buf, rbuf)
			if err != nil {
				if ctx.Err() == nil {
					p.sh.ev.add("HTTP publish failed", err.Error())
					p.acked.Add(1)
					p.failed.Add(1)
				}
				continue
			}
			var it frameIter
			var f msgFields
			it.reset(rbuf)
			got := false
			for it.next(&f) {
				if f.successful >= 0 && !f.isMeta() {
					got = true
					p.ack(&f, m, tgt)
				}
			}
			if !got {
				p.sh.ev.add("HTTP publish without a reply", fmt.Sprintf("%.200s", rbuf))
			}
			continue
		}
		p.wmu.Lock()
		err := p.conn.WriteMessage(websocket.TextMessage, buf)
		p.wmu.Unlock()
		if err != nil {
			if ctx.Err() == nil && !p.sh.stopping.Load() {
				p.sh.ev.add("publisher write failed", err.Error())
			}
			return
		}
	}
}

func (p *publisher) close() {
	if p.conn != nil {
		p.wmu.Lock()
		_ = p.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		p.wmu.Unlock()
		p.conn.Close()
	}
}
