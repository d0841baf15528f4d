package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// scaleRounds is how many publish rounds a scale run can have: the first,
// and one after a node's restart.
const scaleRounds = 2

// scaleState is what the clients of a scale run share. A round r
// (1-based) publishes one message to every client with "s":r.
type scaleState struct {
	ev         *events
	stopping   atomic.Bool // the run is over: socket errors are expected
	reconnect  atomic.Bool // dropped clients re-handshake and re-subscribe
	resubSem   chan struct{}
	dropped    atomic.Int64 // clients whose socket broke while reconnect was on
	resubbed   atomic.Int64 // ... and that subscribed again
	lastResub  atomic.Int64 // unix ns of the latest re-subscribe
	failed     atomic.Int64 // clients lost for good
	delivered  [scaleRounds]atomic.Int64
	duplicated [scaleRounds]atomic.Int64
	lastArrive [scaleRounds]atomic.Int64 // unix ns
	foreign    atomic.Int64

	histMu sync.Mutex
	hist   [scaleRounds]histogram
}

// scaleClient is one WebSocket client subscribed to its own channel. The
// subscriber does the handshake, connect and subscribe; the client then
// reads its deliveries and, when reconnect is on, subscribes again after
// its socket breaks.
type scaleClient struct {
	sub    subscriber
	st     *scaleState
	expect [scaleRounds]atomic.Bool  // the round's publish to it was acknowledged
	got    [scaleRounds]atomic.Int32 // deliveries of the round
	wmu    sync.Mutex                // guards writes, sub.conn while another may close it, and closed
	closed bool
	// onDelivery, when set, takes every delivery instead of the round
	// accounting (the probe's listener).
	onDelivery func(f *msgFields, now int64)
	done       chan struct{} // closed when the client has stopped for good
}

func newScaleClient(idx int, channel string, t *target, st *scaleState) *scaleClient {
	return &scaleClient{sub: subscriber{idx: idx, channel: channel, t: t}, st: st, done: make(chan struct{})}
}

// run reads deliveries until the socket breaks; then, while reconnect is
// on, it subscribes again (with a jittered back-off) and goes on.
func (c *scaleClient) run(ctx context.Context) {
	defer close(c.done)
	for {
		err := c.read()
		if c.st.stopping.Load() || ctx.Err() != nil {
			return
		}
		if !c.st.reconnect.Load() {
			c.st.failed.Add(1)
			c.st.ev.add("client socket broke", err.Error())
			return
		}
		c.st.dropped.Add(1)
		if !c.resubscribe(ctx) {
			if !c.st.stopping.Load() {
				c.st.failed.Add(1)
			}
			return
		}
		c.st.resubbed.Add(1)
		c.st.lastResub.Store(time.Now().UnixNano())
	}
}

// resubscribe handshakes and subscribes again, retrying with a jittered
// back-off from 100 ms up to 2 s, at most resubSem's capacity at once.
func (c *scaleClient) resubscribe(ctx context.Context) bool {
	backoff := 100 * time.Millisecond
	for attempt := 0; attempt < 100; attempt++ {
		wait := backoff/2 + rand.N(backoff)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		if c.st.stopping.Load() {
			return false
		}
		select {
		case c.st.resubSem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		s := subscriber{idx: c.sub.idx, channel: c.sub.channel, t: c.sub.t}
		err := s.subscribe(ctx)
		<-c.st.resubSem
		if err == nil {
			c.wmu.Lock()
			defer c.wmu.Unlock()
			if c.closed {
				s.conn.Close()
				return false
			}
			c.sub.conn, c.sub.clientID, c.sub.connect = s.conn, s.clientID, s.connect
			return true
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	c.st.ev.add("client could not subscribe again", fmt.Sprintf("client %d: 100 attempts", c.sub.idx))
	return false
}

// read handles frames until the socket breaks or the server ends the
// session.
func (c *scaleClient) read() error {
	conn := c.sub.conn
	defer conn.Close()
	buf := make([]byte, 0, 1024)
	var it frameIter
	var f msgFields
	for {
		_, r, err := conn.NextReader()
		if err != nil {
			return err
		}
		if buf, err = readInto(r, buf[:0]); err != nil {
			return err
		}
		now := time.Now().UnixNano()
		it.reset(buf)
		for it.next(&f) {
			if f.isMeta() {
				if string(f.channel) != "/meta/connect" {
					continue
				}
				if f.successful != 1 {
					return fmt.Errorf("unsuccessful /meta/connect: %s", f.errText)
				}
				c.wmu.Lock()
				err := conn.WriteMessage(websocket.TextMessage, c.sub.connect)
				c.wmu.Unlock()
				if err != nil {
					return err
				}
				continue
			}
			if f.successful >= 0 {
				continue
			}
			if c.onDelivery != nil {
				if f.hasData {
					c.onDelivery(&f, now)
				}
				continue
			}
			c.delivery(&f, now)
		}
		if it.err != nil {
			c.st.ev.add("malformed frame", fmt.Sprintf("%.200s", buf))
		}
	}
}

// delivery accounts for one delivered message of round f.seq.
func (c *scaleClient) delivery(f *msgFields, now int64) {
	st := c.st
	if !f.hasData || f.seq < 1 || f.seq > scaleRounds {
		st.foreign.Add(1)
		return
	}
	r := f.seq - 1
	if c.got[r].Add(1) > 1 {
		st.duplicated[r].Add(1)
		return
	}
	st.histMu.Lock()
	st.hist[r].record(time.Duration(now - f.sent))
	st.histMu.Unlock()
	storeMax(&st.lastArrive[r], now)
	st.delivered[r].Add(1)
}

// storeMax sets a to v unless it holds more already.
func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if old >= v || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// close ends the client: a close frame, then the socket. A client that
// subscribes again after it is closed finds stopping set and ends.
func (c *scaleClient) close() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.closed = true
	conn := c.sub.conn
	if conn == nil {
		return
	}
	_ = conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	conn.Close()
}

// scaleTargets returns one target per (URL, source address) pair: the
// WebSocket dialer of source k binds 127.0.0.(srcBase+k+1), so that the clients'
// connections spread over several addresses' ephemeral ports. The targets
// of one URL share an HTTP client (handshakes use a few pooled
// connections).
func scaleTargets(urls []string, srcBase, sources, readBuf int) ([][]*target, error) {
	out := make([][]*target, len(urls))
	for i, u := range urls {
		base, err := newTarget(u, readBuf)
		if err != nil {
			return nil, err
		}
		for k := 0; k < sources; k++ {
			t := *base
			d := *base.dialer
			nd := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1,
				LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(srcBase+k+1))}}
			d.NetDialContext = nd.DialContext
			t.dialer = &d
			out[i] = append(out[i], &t)
		}
	}
	return out, nil
}

// errNoClients is returned when no client could subscribe.
var errNoClients = errors.New("no client could subscribe")
