package main

import (
	"context"
	"sync"
	"time"
)

// probe measures a cluster's latency while something else happens: it
// publishes every interval (anonymous HTTP publishes to one node) to a
// channel that a WebSocket client of another node listens to, so that each
// message crosses Redis.
type probe struct {
	client  *scaleClient
	pub     *target
	channel string
	every   time.Duration

	mu     sync.Mutex
	sent   []int64         // unix ns, by sequence number - 1
	arrive map[int64]int64 // sequence number -> latency ns

	cancel context.CancelFunc
	done   chan struct{}
}

// startProbe subscribes the probe's listener through sub and starts
// publishing through pub.
func startProbe(ctx context.Context, sub, pub *target, every time.Duration, ev *events) (*probe, error) {
	p := &probe{pub: pub, channel: "/bench-probe/latency", every: every, arrive: map[int64]int64{}, done: make(chan struct{})}
	p.client = newScaleClient(-1, p.channel, sub, &scaleState{ev: ev, resubSem: make(chan struct{}, 1)})
	p.client.onDelivery = p.record
	if err := p.client.sub.subscribe(ctx); err != nil {
		return nil, err
	}
	p.client.st.reconnect.Store(true) // the listener's node is not the one restarted, but be safe
	go p.client.run(ctx)
	ctx, p.cancel = context.WithCancel(ctx)
	go p.publish(ctx, ev)
	return p, nil
}

func (p *probe) record(f *msgFields, now int64) {
	p.mu.Lock()
	if _, seen := p.arrive[f.seq]; !seen {
		p.arrive[f.seq] = now - f.sent
	}
	p.mu.Unlock()
}

func (p *probe) publish(ctx context.Context, ev *events) {
	defer close(p.done)
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	var body, rbuf []byte
	for seq := int64(1); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now().UnixNano()
		p.mu.Lock()
		p.sent = append(p.sent, now)
		p.mu.Unlock()
		body = appendPublish(body[:0], benchMsg{channel: p.channel, seq: seq, sent: now, measured: true, wrap: true})
		var err error
		if rbuf, err = p.pub.post(ctx, body, rbuf); err != nil && ctx.Err() == nil {
			ev.add("probe publish failed", err.Error())
		}
	}
}

// stop ends the probe once the last publish had a second to arrive.
func (p *probe) stop() {
	time.Sleep(time.Second)
	p.cancel()
	<-p.done
	p.client.st.stopping.Store(true)
	p.client.close()
	<-p.client.done
}

// window returns the latency of the probes sent in [from, to) and how many
// of them never arrived.
func (p *probe) window(from, to time.Time) (Latency, int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var h histogram
	sent, lost := 0, 0
	for i, t := range p.sent {
		if t < from.UnixNano() || t >= to.UnixNano() {
			continue
		}
		sent++
		if lat, ok := p.arrive[int64(i+1)]; ok {
			h.record(time.Duration(lat))
		} else {
			lost++
		}
	}
	return latencyOf(&h), sent, lost
}

// latencyOf summarises h.
func latencyOf(h *histogram) Latency {
	return Latency{P50: msf(h.quantile(0.50)), P90: msf(h.quantile(0.90)), P99: msf(h.quantile(0.99)),
		Max: msf(time.Duration(h.max)), Mean: msf(h.mean()), N: h.n}
}
