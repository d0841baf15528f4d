package bayeux

import (
	"context"
	"hash/maphash"
	"sync"
	"unsafe"

	"github.com/tidwall/gjson"
)

// deliver is called by the engine for every publication this node listens
// to.
func (s *Server) deliver(p *Publication) {
	if p.Position.Offset != 0 {
		p = positioned(p) // encoded once, for every subscriber
	}
	s.fanout(p, nil)
}

// fanout delivers a publication to the local sessions subscribed to a
// pattern matching its channel, one copy per session. The encoded message is
// shared by all of them unless the publication is not for every subscriber
// (an excluded sender, an Audience, a filter of PublishLocal given as only)
// or a DeliveryFilter asks to see each recipient.
func (s *Server) fanout(p *Publication, only func(*Session) bool) {
	if s.local.active() {
		m := parseDelivery(p.Message)
		s.local.dispatch(&m)
	}
	var rf recipients
	choosy := rf.init(s, p, only)
	bp, _ := s.matchPool.Get().(*[]*Session)
	if bp == nil {
		bp = new([]*Session)
	}
	subs := s.index.AppendMatch((*bp)[:0], p.Channel)
	// A delivery to few sessions is written on this goroutine when their
	// sockets can take it at once; to more, each socket's flush goroutine
	// writes it, in parallel and batched with what follows.
	now := len(subs) <= directFanout
	for _, sess := range subs {
		out := p.Message
		if choosy {
			var ok bool
			if out, ok = rf.copyFor(sess); !ok {
				continue
			}
		}
		if !sess.enqueueAt(out, p.Channel, p.Position, now) {
			s.log.Warn("dropping slow consumer", "clientId", sess.id, "maxQueueBytes", s.cfg.MaxQueueBytes)
			s.crew.spawn(func() { s.end(sess, EndSlow) })
		}
	}
	clear(subs)
	*bp = subs[:0]
	s.matchPool.Put(bp)
}

// directFanout is the most sessions a publication is written to directly
// by the goroutine that delivers it (see fanout).
const directFanout = 4

// recipients decides, for a publication that is not for every subscriber
// alike, whether each one gets it and in which encoding: the sender may be
// excluded, PublishTo names an audience, PublishLocal filters sessions,
// delivery filters may withhold or change each copy.
type recipients struct {
	p        *Publication
	audience *audienceSet // p.Audience, prepared; nil for everyone
	only     func(*Session) bool
	msg      *Message // parsed only for the delivery filters
	filters  []func(*Session, *Message) bool
}

// init prepares rf for p and reports whether recipients differ at all;
// when not, every subscriber gets p.Message (the fast path).
func (rf *recipients) init(s *Server, p *Publication, only func(*Session) bool) bool {
	rf.p, rf.only = p, only
	if p.Audience != nil {
		rf.audience = newAudienceSet(p.Audience)
	}
	if len(s.filters) > 0 {
		m := parseDelivery(p.Message)
		rf.msg = &m
		for _, f := range s.filters {
			if fn := f.Delivery(s.ctx, rf.msg); fn != nil {
				rf.filters = append(rf.filters, fn)
			}
		}
	}
	return p.Exclude != "" || only != nil || rf.audience != nil || rf.filters != nil
}

// copyFor returns the message sess gets, or false when it gets none.
func (rf *recipients) copyFor(sess *Session) ([]byte, bool) {
	if rf.p.Exclude != "" && sess.id == rf.p.Exclude {
		return nil, false
	}
	if rf.audience != nil && !rf.audience.includes(sess.id, sess.Identity()) {
		return nil, false
	}
	if rf.only != nil && !rf.only(sess) {
		return nil, false
	}
	if rf.filters == nil {
		return rf.p.Message, true
	}
	c := *rf.msg
	for _, fn := range rf.filters {
		if !fn(sess, &c) {
			return nil, false
		}
	}
	if c.Data != rf.msg.Data || c.Ext != rf.msg.Ext {
		return encodeDelivery(&c), true
	}
	return rf.p.Message, true
}

// parseDelivery reads an encoded delivery back into a Message (its strings
// alias msg, which is never modified).
func parseDelivery(msg []byte) Message {
	return parseMessage(gjson.Parse(unsafe.String(unsafe.SliceData(msg), len(msg))))
}

// interest counts, per pattern, the local subscribers (sessions and
// in-process handlers) so that the engine is told when this node starts and
// stops listening to a pattern. Changes for one pattern are serialised, so
// the engine never sees them out of order; different patterns go in
// parallel (a networked engine takes a round trip to subscribe).
type interest struct {
	seed    maphash.Seed
	stripes [64]struct {
		mu    sync.Mutex
		count map[string]int
	}
}

func newInterest() *interest {
	in := &interest{seed: maphash.MakeSeed()}
	for i := range in.stripes {
		in.stripes[i].count = make(map[string]int)
	}
	return in
}

func (in *interest) stripe(pattern string) (*sync.Mutex, map[string]int) {
	st := &in.stripes[maphash.String(in.seed, pattern)%uint64(len(in.stripes))]
	return &st.mu, st.count
}

// acquire adds a local subscriber to pattern, telling the engine on the
// first one.
func (s *Server) acquire(ctx context.Context, pattern string) error {
	mu, count := s.interest.stripe(pattern)
	mu.Lock()
	defer mu.Unlock()
	if count[pattern] == 0 {
		if err := s.engine.Subscribe(ctx, pattern); err != nil {
			return err
		}
	}
	count[pattern]++
	return nil
}

// release removes a local subscriber from pattern, telling the engine after
// the last one.
func (s *Server) release(pattern string) {
	mu, count := s.interest.stripe(pattern)
	mu.Lock()
	defer mu.Unlock()
	n := count[pattern] - 1
	if n > 0 {
		count[pattern] = n
		return
	}
	delete(count, pattern)
	if err := s.engine.Unsubscribe(s.ctx, pattern); err != nil {
		s.log.Warn("engine unsubscribe failed", "pattern", pattern, "err", err)
	}
}
