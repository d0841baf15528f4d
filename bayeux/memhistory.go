package bayeux

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// memHistory is the in-memory engine's channel history: a ring of recent
// publications per channel, bounded per channel by its rule (size and TTL)
// and, all channels together, by a byte budget spent oldest first.
//
// It also orders deliveries: the publications of one channel are delivered
// in the order of their offsets, one at a time, by whichever publisher
// found nobody delivering on that channel (a publisher that finds a
// delivery under way leaves its publication to it). No goroutine is
// started, and a subscriber that publishes on the same channel from its
// handler does not deadlock: its publication is delivered after the one it
// is handling.
type memHistory struct {
	mu      sync.Mutex
	budget  int64 // bytes; Config.HistoryMaxBytes
	bytes   int64 // retained publications plus per-channel overhead
	streams map[string]*memStream
	// fifo lists every retained publication in publication order, across
	// channels, for eviction under the budget. Entries already trimmed
	// from their channel (by size or TTL) are skipped when met, and the
	// list is compacted when they outnumber the live ones.
	fifo    []fifoRef
	head    int // fifo[head:] is pending
	entries int // retained publications, all channels
}

// memStream is the history of one channel.
type memStream struct {
	channel string
	epoch   string
	top     uint64 // offset of the latest publication
	ring    []memEntry
	first   int // ring[first:] are retained, oldest first
	removed bool

	pending    []*Publication // waiting to be delivered, in offset order
	delivering bool
}

type memEntry struct {
	pub     *Publication
	expires time.Time // zero: no TTL
	size    int64
}

type fifoRef struct {
	st     *memStream
	offset uint64
}

// streamOverhead approximates what a channel's history costs beyond its
// publications, for the budget.
const streamOverhead = 160

// entryOverhead approximates what a retained publication costs beyond its
// bytes.
const entryOverhead = 96

func newMemHistory(budget int64) *memHistory {
	return &memHistory{budget: budget, streams: make(map[string]*memStream)}
}

// setBudget sets the byte budget (Config.HistoryMaxBytes).
func (h *memHistory) setBudget(b int64) {
	h.mu.Lock()
	h.budget = b
	h.mu.Unlock()
}

// newEpoch returns a random epoch: 8 characters of base64url.
func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// publish appends p to its channel's history under p.History, and
// delivers it (with its position) in offset order.
func (h *memHistory) publish(p *Publication, deliver func(*Publication)) {
	now := time.Now()
	h.mu.Lock()
	st := h.streams[p.Channel]
	if st == nil {
		st = &memStream{channel: p.Channel, epoch: newEpoch()}
		h.streams[p.Channel] = st
		h.bytes += streamOverhead + int64(len(p.Channel))
	}
	rule := p.History
	st.top++
	q := &Publication{Channel: p.Channel, Message: p.Message, Exclude: p.Exclude,
		Position: Position{Offset: st.top, Epoch: st.epoch}}
	e := memEntry{pub: q, size: entryOverhead + int64(len(q.Message)+len(q.Exclude))}
	if rule.TTL > 0 {
		e.expires = now.Add(rule.TTL)
	}
	h.trim(st, now)
	for st.retained() >= rule.Size {
		h.drop(st)
	}
	st.ring = append(st.ring, e)
	h.bytes += e.size
	h.entries++
	h.fifo = append(h.fifo, fifoRef{st: st, offset: q.Position.Offset})
	h.evict(now)

	st.pending = append(st.pending, q)
	if st.delivering {
		h.mu.Unlock()
		return
	}
	st.delivering = true
	for len(st.pending) > 0 {
		batch := st.pending
		st.pending = nil
		h.mu.Unlock()
		for _, x := range batch {
			deliver(x)
		}
		h.mu.Lock()
	}
	st.delivering = false
	h.mu.Unlock()
}

func (st *memStream) retained() int { return len(st.ring) - st.first }

// oldest returns the offset of the oldest retained publication; st must
// retain one.
func (st *memStream) oldest() uint64 { return st.ring[st.first].pub.Position.Offset }

// drop removes the oldest retained publication of st. h.mu is held.
func (h *memHistory) drop(st *memStream) {
	e := &st.ring[st.first]
	h.bytes -= e.size
	h.entries--
	*e = memEntry{}
	st.first++
	if st.first == len(st.ring) {
		st.ring, st.first = st.ring[:0], 0
	} else if st.first > 32 && st.first*2 > len(st.ring) {
		n := copy(st.ring, st.ring[st.first:])
		clear(st.ring[n:])
		st.ring, st.first = st.ring[:n], 0
	}
}

// trim drops the publications of st whose TTL has passed. h.mu is held.
func (h *memHistory) trim(st *memStream, now time.Time) {
	for st.retained() > 0 {
		e := &st.ring[st.first]
		if e.expires.IsZero() || e.expires.After(now) {
			return
		}
		h.drop(st)
	}
}

// evict spends the budget: the oldest publications of all channels go
// first (and expired ones met on the way), then channels that retain
// nothing. h.mu is held.
func (h *memHistory) evict(now time.Time) {
scan:
	for h.head < len(h.fifo) {
		ref := h.fifo[h.head]
		st := ref.st
		switch {
		case st.removed || st.retained() == 0 || st.oldest() > ref.offset:
			// trimmed already: skip
		case st.oldest() < ref.offset:
			break scan // cannot happen: older publications come first
		default:
			e := &st.ring[st.first]
			if h.bytes <= h.budget && (e.expires.IsZero() || e.expires.After(now)) {
				break scan
			}
			h.drop(st)
		}
		h.fifo[h.head] = fifoRef{}
		h.head++
	}
	if h.head == len(h.fifo) {
		h.fifo, h.head = h.fifo[:0], 0
	} else if pending := len(h.fifo) - h.head; pending > 64 && pending > 2*h.entries {
		h.compact()
	}
	if h.bytes > h.budget {
		for ch, st := range h.streams {
			if st.retained() == 0 && !st.delivering {
				h.removeLocked(ch, st)
				if h.bytes <= h.budget {
					break
				}
			}
		}
	}
}

// compact keeps, in order, the fifo references to retained publications.
func (h *memHistory) compact() {
	kept := h.fifo[:0]
	for _, ref := range h.fifo[h.head:] {
		st := ref.st
		if st.removed || st.retained() == 0 {
			continue
		}
		if ref.offset >= st.oldest() {
			kept = append(kept, ref)
		}
	}
	clear(h.fifo[len(kept):])
	h.fifo, h.head = kept, 0
}

// removeLocked forgets channel's history. h.mu is held.
func (h *memHistory) removeLocked(channel string, st *memStream) {
	for st.retained() > 0 {
		h.drop(st)
	}
	st.removed = true
	delete(h.streams, channel)
	h.bytes -= streamOverhead + int64(len(channel))
}

// history implements Historian.History.
func (h *memHistory) history(channel string, since uint64, limit int) ([]*Publication, Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.streams[channel]
	if st == nil {
		return nil, Position{}
	}
	h.trim(st, time.Now())
	pos := Position{Offset: st.top, Epoch: st.epoch}
	n := st.retained()
	if n == 0 || since >= st.top {
		return nil, pos
	}
	start := st.first
	if oldest := st.oldest(); since >= oldest {
		start += int(since - oldest + 1)
	}
	end := len(st.ring)
	if limit > 0 && end-start > limit {
		end = start + limit
	}
	out := make([]*Publication, 0, end-start)
	for _, e := range st.ring[start:end] {
		out = append(out, e.pub)
	}
	return out, pos
}

// remove implements Historian.RemoveHistory.
func (h *memHistory) remove(channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.streams[channel]; st != nil {
		h.removeLocked(channel, st)
	}
}

// History returns the retained publications of channel after offset since
// (see Historian).
func (e *memoryEngine) History(_ context.Context, channel string, since uint64, limit int) ([]*Publication, Position, error) {
	pubs, pos := e.hist.history(channel, since, limit)
	return pubs, pos, nil
}

// RemoveHistory deletes channel's history (see Historian).
func (e *memoryEngine) RemoveHistory(_ context.Context, channel string) error {
	e.hist.remove(channel)
	return nil
}
