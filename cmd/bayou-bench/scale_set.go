package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// clientSet holds the clients of a scale run: in this process (localSet)
// or spread over worker processes (procSet), when one process may not
// open enough sockets.
type clientSet interface {
	// ramp connects and subscribes the clients; it returns the indexes
	// of those that made it and the CPU time the tool used.
	ramp(ctx context.Context) (live []int, cpu time.Duration, err error)
	// round waits until deadline for round r's deliveries to the clients
	// for which expected is true, and counts them.
	round(ctx context.Context, r int, expected func(i int) bool, deadline time.Time) (roundCounts, error)
	// reconnect has the clients subscribe again when their socket breaks.
	reconnect(ctx context.Context) error
	// status tells how many clients dropped and came back.
	status(ctx context.Context) (restartStatus, error)
	// close ends every client and returns the errors seen.
	close(ctx context.Context) (map[string]int64, map[string]string)
}

// roundCounts is what the clients saw of one round.
type roundCounts struct {
	Expected   int64     `json:"expected"`
	Received   int64     `json:"received"`
	Lost       int64     `json:"lost"`
	Duplicated int64     `json:"duplicated"`
	LastArrive int64     `json:"last_arrive"` // unix ns
	Hist       histogram `json:"hist"`
}

func (a *roundCounts) add(b *roundCounts) {
	a.Expected += b.Expected
	a.Received += b.Received
	a.Lost += b.Lost
	a.Duplicated += b.Duplicated
	a.LastArrive = max(a.LastArrive, b.LastArrive)
	a.Hist.merge(&b.Hist)
}

// restartStatus is how many clients dropped and subscribed again.
type restartStatus struct {
	Dropped   int64 `json:"dropped"`
	Resubbed  int64 `json:"resubscribed"`
	Failed    int64 `json:"failed"`
	LastResub int64 `json:"last_resub"` // unix ns
}

func (a *restartStatus) add(b restartStatus) {
	a.Dropped += b.Dropped
	a.Resubbed += b.Resubbed
	a.Failed += b.Failed
	a.LastResub = max(a.LastResub, b.LastResub)
}

// histJSON is a histogram on the wire: its non-empty buckets.
type histJSON struct {
	Buckets [][2]uint64 `json:"b"` // bucket, count
	N       uint64      `json:"n"`
	Sum     uint64      `json:"s"`
	Max     uint64      `json:"m"`
}

// MarshalJSON encodes the non-empty buckets of h.
func (h histogram) MarshalJSON() ([]byte, error) {
	j := histJSON{N: h.n, Sum: h.sum, Max: h.max, Buckets: [][2]uint64{}}
	for b, c := range h.counts {
		if c > 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(b), uint64(c)})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encoded.
func (h *histogram) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = histogram{n: j.N, sum: j.Sum, max: j.Max}
	for _, bc := range j.Buckets {
		if bc[0] >= histBuckets {
			return fmt.Errorf("histogram bucket %d out of range", bc[0])
		}
		h.counts[bc[0]] += uint32(bc[1])
	}
	return nil
}

// localSet is a clientSet in this process.
type localSet struct {
	st   *scaleState
	all  []*scaleClient
	live []*scaleClient
	conc int
}

// newLocalSet makes clients first, first+step, ... below n; client i is
// on urls[i % len(urls)] and connects from source address srcBase +
// (i / len(urls)) % sources.
func newLocalSet(cfg *scaleConfig, st *scaleState, first, step, srcBase, sources int) (*localSet, error) {
	targets, err := scaleTargets(cfg.urls, srcBase, sources, cfg.readBuf)
	if err != nil {
		return nil, err
	}
	l := &localSet{st: st, conc: cfg.concurrency}
	for i := first; i < cfg.clients; i += step {
		node := i % len(cfg.urls)
		src := (i / len(cfg.urls)) % sources
		l.all = append(l.all, newScaleClient(i, fmt.Sprintf("%s/%d", cfg.channel, i), targets[node][src], st))
	}
	return l, nil
}

func (l *localSet) ramp(ctx context.Context) ([]int, time.Duration, error) {
	c0 := selfCPU()
	l.live = setupAll(ctx, l.all, l.conc, l.st.ev,
		func(c *scaleClient) *subscriber { return &c.sub },
		func(c *scaleClient) { go c.run(ctx) })
	ids := make([]int, len(l.live))
	for k, c := range l.live {
		ids[k] = c.sub.idx
	}
	return ids, selfCPU() - c0, nil
}

func (l *localSet) round(ctx context.Context, r int, expected func(i int) bool, deadline time.Time) (roundCounts, error) {
	st := l.st
	var rc roundCounts
	for _, c := range l.live {
		e := expected(c.sub.idx)
		c.expect[r-1].Store(e)
		if e {
			rc.Expected++
		}
	}
	for time.Now().Before(deadline) && ctx.Err() == nil && st.delivered[r-1].Load() < rc.Expected {
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range l.live {
		got := c.got[r-1].Load() > 0
		if got {
			rc.Received++
		}
		if c.expect[r-1].Load() && !got {
			rc.Lost++
		}
	}
	rc.Duplicated = st.duplicated[r-1].Load()
	rc.LastArrive = st.lastArrive[r-1].Load()
	st.histMu.Lock()
	rc.Hist = st.hist[r-1]
	st.histMu.Unlock()
	return rc, nil
}

func (l *localSet) reconnect(context.Context) error {
	l.st.reconnect.Store(true)
	return nil
}

func (l *localSet) status(context.Context) (restartStatus, error) {
	st := l.st
	return restartStatus{Dropped: st.dropped.Load(), Resubbed: st.resubbed.Load(), Failed: st.failed.Load(),
		LastResub: st.lastResub.Load()}, nil
}

func (l *localSet) close(context.Context) (map[string]int64, map[string]string) {
	closeScale(l.st, l.live)
	return l.st.ev.snapshot()
}
