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
func (s *Server) deliver(p *Publication) { s.fanout(p, nil) }

// fanout delivers a publication to the local sessions subscribed to a
// pattern matching its channel, one copy per session. The encoded message is
// shared by all of them unless a DeliveryFilter (or the identity filter of
// PublishTo) asks to see each recipient.
func (s *Server) fanout(p *Publication, identities func(Identity) bool) {
	if s.local.active() {
		m := parseDelivery(p.Message)
		s.local.dispatch(&m)
	}
	var (
		msg     *Message // parsed only for the delivery filters
		filters []func(*Session, *Message) bool
	)
	if len(s.filters) > 0 {
		m := parseDelivery(p.Message)
		msg = &m
		for _, f := range s.filters {
			if fn := f.Delivery(s.ctx, msg); fn != nil {
				filters = append(filters, fn)
			}
		}
	}
	bp, _ := s.matchPool.Get().(*[]*Session)
	if bp == nil {
		bp = new([]*Session)
	}
	subs := s.index.AppendMatch((*bp)[:0], p.Channel)
	for _, sess := range subs {
		if p.Exclude != "" && sess.id == p.Exclude {
			continue
		}
		if identities != nil {
			var id Identity
			if v := sess.Identity(); v != nil {
				id = *v
			}
			if !identities(id) {
				continue
			}
		}
		out := p.Message
		if filters != nil {
			c, ok := *msg, true
			for _, fn := range filters {
				if ok = fn(sess, &c); !ok {
					break
				}
			}
			if !ok {
				continue
			}
			if c.Data != msg.Data || c.Ext != msg.Ext {
				out = encodeDelivery(&c)
			}
		}
		if !sess.enqueue(out) {
			s.log.Warn("dropping slow consumer", "clientId", sess.id, "maxQueueBytes", s.cfg.MaxQueueBytes)
			go s.end(sess, EndSlow)
		}
	}
	clear(subs)
	*bp = subs[:0]
	s.matchPool.Put(bp)
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
