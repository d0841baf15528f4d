package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"
)

// roundPublish is how one round's publishes fared.
type roundPublish struct {
	start  time.Time
	end    time.Time // every publish answered
	sent   int64
	failed int64
}

// publishAPI sends round's message to every client through the HTTP API,
// in batches (POST /publish with an array) from posters concurrent
// requests. A client's publish counts once the API answered ok for it.
func publishAPI(ctx context.Context, apiURL string, clients []*scaleClient, round, batch, posters int, ev *events) roundPublish {
	hc := &http.Client{Timeout: 60 * time.Second}
	url := strings.TrimSuffix(apiURL, "/") + "/publish"
	var next atomic.Int64
	var sent, failed atomic.Int64
	rp := roundPublish{start: time.Now()}
	var wg sync.WaitGroup
	for w := 0; w < posters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body, rbuf []byte
			for ctx.Err() == nil {
				lo := int(next.Add(int64(batch))) - batch
				if lo >= len(clients) {
					return
				}
				hi := min(lo+batch, len(clients))
				body = append(body[:0], '[')
				now := time.Now().UnixNano()
				for i := lo; i < hi; i++ {
					if i > lo {
						body = append(body, ',')
					}
					body = appendPublish(body, benchMsg{channel: clients[i].sub.channel, seq: int64(round), sent: now, measured: true})
				}
				body = append(body, ']')
				sent.Add(int64(hi - lo))
				var err error
				rbuf, err = postJSON(ctx, hc, url, body, rbuf)
				if err != nil {
					failed.Add(int64(hi - lo))
					ev.add("API publish failed", err.Error())
					continue
				}
				res := gjson.GetBytes(rbuf, "results")
				if !res.IsArray() || len(res.Array()) != hi-lo {
					failed.Add(int64(hi - lo))
					ev.add("API publish: unexpected answer", fmt.Sprintf("%.200s", rbuf))
					continue
				}
				for k, item := range res.Array() {
					if item.Get("ok").Bool() {
						clients[lo+k].expect[round-1].Store(true)
					} else {
						failed.Add(1)
						ev.add("API publish refused", item.Raw)
					}
				}
			}
		}()
	}
	wg.Wait()
	rp.end, rp.sent, rp.failed = time.Now(), sent.Load(), failed.Load()
	return rp
}

// postJSON POSTs body to url and returns the answer, appended to buf[:0].
func postJSON(ctx context.Context, hc *http.Client, url string, body, buf []byte) ([]byte, error) {
	t := &target{httpURL: url, http: hc}
	return t.post(ctx, body, buf)
}

// wsPublisher publishes the round's messages to its share of the clients
// over one WebSocket, with a window of unacknowledged publishes.
type wsPublisher struct {
	idx      int
	t        *target
	clientID string
	conn     *websocket.Conn
	wmu      sync.Mutex
	connect  []byte
	window   chan struct{}
	clients  []*scaleClient
	round    int
	acked    atomic.Int64
	failed   atomic.Int64
	ev       *events
	done     chan struct{}
	stopping atomic.Bool
}

// publishWS sends round's message to every client through pubs WebSocket
// publishers (publisher p on urls[p % len(urls)] serves the clients i with
// i % pubs == p), each with window publishes awaiting their reply.
func publishWS(ctx context.Context, targets []*target, clients []*scaleClient, round, pubs, window int, ev *events) roundPublish {
	rp := roundPublish{start: time.Now()}
	ps := make([]*wsPublisher, 0, pubs)
	defer func() {
		for _, p := range ps {
			p.close()
		}
	}()
	for i := 0; i < pubs; i++ {
		p := &wsPublisher{idx: i, t: targets[i%len(targets)], clients: clients, round: round, ev: ev,
			window: make(chan struct{}, window), done: make(chan struct{})}
		if err := p.start(ctx); err != nil {
			ev.add("publisher setup failed", err.Error())
			continue
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		rp.end = time.Now()
		return rp
	}
	var wg sync.WaitGroup
	var sent atomic.Int64
	for k, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent.Add(p.send(ctx, k, len(ps)))
		}()
	}
	wg.Wait()
	rp.end = time.Now()
	rp.sent = sent.Load()
	for _, p := range ps {
		rp.failed += p.failed.Load()
	}
	return rp
}

func (p *wsPublisher) start(ctx context.Context) error {
	var err error
	if p.clientID, p.conn, p.connect, err = p.t.openPublisher(ctx); err != nil {
		return err
	}
	go p.readAcks()
	return nil
}

// send publishes to the clients i with i % n == k, then waits (at most
// 60 s) for every reply; it returns the publishes sent.
func (p *wsPublisher) send(ctx context.Context, k, n int) int64 {
	var sent int64
	buf := make([]byte, 0, 256)
	for i := k; i < len(p.clients) && ctx.Err() == nil; i += n {
		select {
		case p.window <- struct{}{}:
		case <-ctx.Done():
			return sent
		case <-p.done:
			return sent
		}
		buf = appendPublish(buf[:0], benchMsg{channel: p.clients[i].sub.channel, seq: int64(p.round), sent: time.Now().UnixNano(),
			pub: p.idx, measured: true, clientID: p.clientID, target: i, wrap: true})
		p.wmu.Lock()
		err := p.conn.WriteMessage(websocket.TextMessage, buf)
		p.wmu.Unlock()
		if err != nil {
			p.ev.add("publisher write failed", err.Error())
			return sent
		}
		sent++
	}
	deadline := time.After(60 * time.Second)
	for int64(len(p.window)) > 0 {
		select {
		case <-deadline:
			p.ev.add("publish replies missing after 60 s", fmt.Sprintf("publisher %d: %d", p.idx, len(p.window)))
			p.failed.Add(int64(len(p.window)))
			return sent
		case <-p.done:
			p.failed.Add(int64(len(p.window)))
			return sent
		case <-time.After(5 * time.Millisecond):
		}
	}
	return sent
}

// readAcks handles publish replies and re-sends held connects.
func (p *wsPublisher) readAcks() {
	defer close(p.done)
	buf := make([]byte, 0, 4<<10)
	var it frameIter
	var f msgFields
	for {
		_, r, err := p.conn.NextReader()
		if err == nil {
			buf, err = readInto(r, buf[:0])
		}
		if err != nil {
			if !p.stopping.Load() {
				p.ev.add("publisher socket closed", err.Error())
			}
			return
		}
		it.reset(buf)
		for it.next(&f) {
			if string(f.channel) == "/meta/connect" {
				if f.successful == 1 {
					p.wmu.Lock()
					_ = p.conn.WriteMessage(websocket.TextMessage, p.connect)
					p.wmu.Unlock()
				}
				continue
			}
			if f.successful < 0 || f.isMeta() {
				continue
			}
			_, _, tgt, ok := parseID(f.id)
			if !ok || tgt < 0 || tgt >= len(p.clients) {
				p.ev.add("publish reply with an unknown id", string(f.id))
				continue
			}
			if f.successful == 1 {
				p.clients[tgt].expect[p.round-1].Store(true)
			} else {
				p.failed.Add(1)
				p.ev.add("publish refused", string(f.errText))
			}
			p.acked.Add(1)
			select {
			case <-p.window:
			default:
			}
		}
	}
}

func (p *wsPublisher) close() {
	p.stopping.Store(true)
	p.wmu.Lock()
	_ = p.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	p.wmu.Unlock()
	p.conn.Close()
	<-p.done
}
