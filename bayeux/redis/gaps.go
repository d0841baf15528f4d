package redis

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

const (
	// fillPage is the number of stream entries read per round trip when
	// filling a gap.
	fillPage = 1000
	// maxFillPages bounds the round trips of one fill.
	maxFillPages = 1000
	// catchUpWorkers bounds the channels caught up at once after the
	// pub/sub connection came back.
	catchUpWorkers = 8
	// minTrackerIdle is how long a tracker is kept without publications
	// at least, even when its channel's stream lives shorter: a quiet
	// channel is still caught up after a short outage.
	minTrackerIdle = time.Minute
)

// historian holds the history side of the engine: the publish script and
// the trackers that close the gaps Redis pub/sub leaves.
type historian struct {
	publish *rueidis.Lua

	// stripes serialise the deliveries of a channel (live, gap fills,
	// catch-ups), so that they go out in offset order; the channel's
	// tracker's epoch, last and resume are guarded by its stripe.
	stripes [256]sync.Mutex
	seed    maphash.Seed

	mu sync.Mutex // guards trackers, and each tracker's seen, keep, lapsed
	// trackers holds a tracker per history channel this node receives
	// (one that a wanted pattern matches).
	trackers map[string]*tracker
	// minIdle is minTrackerIdle; tests lower it.
	minIdle time.Duration

	// Counters: gaps filled (fills that delivered something),
	// publications recovered from streams, offsets of gaps no longer
	// retained, and fills that failed.
	gaps, recovered, missed, fillErrors atomic.Uint64
	failing                             atomic.Bool // logged; cleared by a good fill
}

// tracker follows the offsets delivered on one channel.
type tracker struct {
	// Guarded by the channel's stripe:
	epoch string // "" until the first delivery
	last  uint64 // the last offset delivered in epoch
	// resume: the channel stopped being wanted and is wanted again; the
	// next publication is not gap-filled (what was published meanwhile
	// was not for this node), only checked for being a duplicate.
	resume bool

	// Guarded by historian.mu:
	seen   time.Time     // last live publication
	keep   time.Duration // the channel's stream lifetime (from the header)
	lapsed bool          // found unwanted while busy: to be dropped
}

func (h *historian) init() {
	h.publish = rueidis.NewLuaScript(publishScript)
	h.seed = maphash.MakeSeed()
	h.trackers = make(map[string]*tracker)
	h.minIdle = minTrackerIdle
}

func (h *historian) stripe(channel string) *sync.Mutex {
	return &h.stripes[maphash.String(h.seed, channel)%uint64(len(h.stripes))]
}

// wants reports whether a wanted pattern matches channel. The caller holds
// e.hist.mu (lock order: stripe, hist.mu, sub.mu).
func (e *Engine) wants(channel string) bool {
	var buf [8]string
	patterns := channels.AppendExpand(buf[:0], channel)
	s := &e.sub
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range patterns {
		if _, ok := s.wanted[p]; ok {
			return true
		}
	}
	return false
}

// tracker returns the tracker of channel, nil if the channel is not
// tracked. live (a publication just arrived) creates it when the node
// wants the channel, and dates it. The caller holds the channel's stripe.
func (e *Engine) tracker(channel string, live bool, keep time.Duration) *tracker {
	h := &e.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.trackers[channel]
	if t != nil && t.lapsed {
		if !e.wants(channel) {
			delete(h.trackers, channel)
			return nil
		}
		t.lapsed, t.resume = false, true
	}
	if t == nil {
		if !live || !e.wants(channel) {
			return nil
		}
		t = new(tracker)
		h.trackers[strings.Clone(channel)] = t // channel aliases a payload
	}
	if live {
		t.seen, t.keep = time.Now(), keep
	}
	return t
}

// onHistoryPublication delivers a publication that carries a position:
// once, in offset order per channel, after filling from the stream any
// gap before it.
func (e *Engine) onHistoryPublication(payload string) {
	hd, msg, err := decodeHistoryHeader(payload)
	if err != nil {
		if e.pub.dropped.Add(1) == 1 {
			e.log.Warn("dropping undecodable publication (reported once)", "err", err, "bytes", len(payload))
		}
		return
	}
	p := &bayeux.Publication{
		Channel:  hd.channel,
		Message:  unsafe.Slice(unsafe.StringData(msg), len(msg)), // as in onPublication
		Exclude:  hd.exclude,
		Position: hd.pos,
	}
	l := e.hist.stripe(hd.channel)
	l.Lock()
	defer l.Unlock()
	t := e.tracker(hd.channel, true, hd.keep)
	if t == nil {
		e.pub.deliver(p) // a late copy for a pattern no longer wanted
		return
	}
	epoch, off := hd.pos.Epoch, hd.pos.Offset
	switch {
	case t.epoch == epoch && off <= t.last:
		return // a copy (several patterns match), or filled already
	case t.resume || t.epoch == "":
		// Start from here: nothing before it was for this node.
		t.resume = false
	case t.epoch != epoch:
		// The history was lost or removed, and the node listened all
		// along: what the new epoch holds before off was missed. (Only
		// a live publication moves a tracker to a new epoch: it comes
		// after every publication of the old one on the connection, and
		// a connection's publications are all delivered before the next
		// connection opens.)
		t.epoch, t.last = epoch, 0
		fallthrough
	default:
		if off > t.last+1 {
			e.fill(hd.channel, t, off-1)
		}
	}
	t.epoch, t.last = epoch, off
	e.pub.deliver(p)
}

// fill delivers, in order, the retained publications of channel after
// t.last in t.epoch, up to offset upto (0: the offset current at the first
// read), and advances t.last. A history found in another epoch ends the
// fill: the publications of t.epoch are gone. The caller holds the
// channel's stripe. An error is logged (once per episode) and counted;
// what was delivered stays delivered.
func (e *Engine) fill(channel string, t *tracker, upto uint64) {
	h := &e.hist
	from, got := t.last, 0
	complete := false
	for range maxFillPages {
		ctx, cancel := e.opContext(e.ctx)
		entries, pos, err := e.readHistory(ctx, channel, t.last, upto, fillPage)
		cancel()
		if err != nil {
			e.fillFailed(channel, err)
			break
		}
		if pos.Epoch != t.epoch {
			// A catch-up leaves a new epoch to the next live
			// publication, which fills it in: publications of the
			// old one may still be on their way.
			break
		}
		if upto == 0 {
			upto = pos.Offset
		}
		for _, ent := range entries {
			p := entryPublication(channel, t.epoch, ent)
			if p == nil || p.Position.Offset <= t.last || p.Position.Offset > upto {
				continue
			}
			e.pub.deliver(p)
			t.last = p.Position.Offset
			got++
		}
		if len(entries) < fillPage || t.last >= upto {
			complete = true
			break
		}
	}
	if complete {
		if upto > from+uint64(got) {
			h.missed.Add(upto - from - uint64(got))
		}
		if h.failing.Swap(false) {
			e.log.Info("redis gap filling works again")
		}
	}
	if got > 0 {
		h.gaps.Add(1)
		h.recovered.Add(uint64(got))
	}
}

// fillFailed logs and counts a failed read of a stream: at warn level
// once, then at debug level until a fill succeeds.
func (e *Engine) fillFailed(channel string, err error) {
	h := &e.hist
	h.fillErrors.Add(1)
	if e.ctx.Err() != nil {
		return
	}
	if !h.failing.Swap(true) {
		e.log.Warn("redis gap filling failed; delivering what arrived (further failures at debug level)", "channel", channel, "err", err)
		return
	}
	e.log.Debug("redis gap filling failed", "channel", channel, "err", err)
}

// catchUp reads from the streams, after the pub/sub connection came back,
// what each tracked channel missed while it was down, and delivers it.
// Live publications arriving meanwhile on the new connection are ordered
// with it by the channels' stripes and their offsets.
func (e *Engine) catchUp() {
	h := &e.hist
	h.mu.Lock()
	list := make([]string, 0, len(h.trackers))
	for ch := range h.trackers {
		list = append(list, ch)
	}
	h.mu.Unlock()
	if len(list) == 0 {
		return
	}
	began, before := time.Now(), h.recovered.Load()
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(catchUpWorkers, len(list)) {
		wg.Go(func() {
			for ch := range work {
				e.catchUpChannel(ch)
			}
		})
	}
feed:
	for _, ch := range list {
		select {
		case work <- ch:
		case <-e.ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	e.log.Info("redis history channels caught up", "channels", len(list),
		"recovered", h.recovered.Load()-before, "took", time.Since(began).Round(time.Microsecond))
}

// catchUpChannel catches up one channel (see catchUp).
func (e *Engine) catchUpChannel(channel string) {
	l := e.hist.stripe(channel)
	l.Lock()
	defer l.Unlock()
	if t := e.tracker(channel, false, 0); t != nil && !t.resume && t.epoch != "" {
		e.fill(channel, t, 0)
	}
}

// forgetTrackers drops the trackers of the channels that pattern matched
// and no wanted pattern matches any more, after pattern stopped being
// wanted: were the node to listen again, the publications in between were
// not for it, and must not be filled in as a gap. A tracker busy on
// another goroutine (or on this one: a deliver that unsubscribes) is
// marked instead, and dropped by its next use.
func (e *Engine) forgetTrackers(pattern string) {
	h := &e.hist
	var candidates []string
	h.mu.Lock()
	if channels.IsWildcard(pattern) {
		for ch := range h.trackers {
			if channels.Match(pattern, ch) {
				candidates = append(candidates, ch)
			}
		}
	} else if _, ok := h.trackers[pattern]; ok {
		candidates = append(candidates, pattern)
	}
	h.mu.Unlock()
	for _, ch := range candidates {
		l := h.stripe(ch)
		locked := l.TryLock()
		h.mu.Lock()
		if t := h.trackers[ch]; t != nil && !e.wants(ch) {
			if locked {
				delete(h.trackers, ch)
			} else {
				t.lapsed = true
			}
		}
		h.mu.Unlock()
		if locked {
			l.Unlock()
		}
	}
}

// pruneTrackers drops the trackers of channels silent for longer than
// their stream lives (and minIdle): there would be nothing left to fill.
// Busy ones wait for the next round.
func (e *Engine) pruneTrackers() {
	h := &e.hist
	idle := func(t *tracker, now time.Time) bool { return now.Sub(t.seen) > max(t.keep, h.minIdle) }
	var stale []string
	now := time.Now()
	h.mu.Lock()
	for ch, t := range h.trackers {
		if idle(t, now) || t.lapsed {
			stale = append(stale, ch)
		}
	}
	h.mu.Unlock()
	for _, ch := range stale {
		l := h.stripe(ch)
		if !l.TryLock() {
			continue
		}
		h.mu.Lock()
		if t := h.trackers[ch]; t != nil && (idle(t, time.Now()) || t.lapsed && !e.wants(ch)) {
			delete(h.trackers, ch)
		}
		h.mu.Unlock()
		l.Unlock()
	}
}

// historyLoop prunes the trackers every HeartbeatInterval until the
// engine closes.
func (e *Engine) historyLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			e.pruneTrackers()
		}
	}
}
