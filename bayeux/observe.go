package bayeux

import (
	"context"
	"sync"
	"sync/atomic"
)

// observers holds the Events that Server.Observe added, besides
// Config.Events. Readers load the slice without a lock; Observe and its
// cancel replace it.
type observers struct {
	mu   sync.Mutex // serialises writers
	list atomic.Pointer[[]*Events]
}

// Observe adds a set of event callbacks to those of Config.Events, with
// the same rules (see Events): called on this node, on the goroutine
// handling the action, after it took effect; they must not block. Nil
// callbacks are skipped. It returns a function that removes them.
//
// It lets a component built after the server (an Attacher extension, say)
// follow sessions without taking over Config.Events.
func (s *Server) Observe(ev Events) (cancel func()) {
	e := &ev
	o := &s.observers
	o.mu.Lock()
	defer o.mu.Unlock()
	var next []*Events
	if cur := o.list.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, e)
	o.list.Store(&next)
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			cur := *o.list.Load()
			next := make([]*Events, 0, len(cur))
			for _, x := range cur {
				if x != e {
					next = append(next, x)
				}
			}
			o.list.Store(&next)
		})
	}
}

// eachEvents calls f with Config.Events and then every observer's Events.
func (s *Server) eachEvents(f func(ev *Events)) {
	f(&s.cfg.Events)
	if l := s.observers.list.Load(); l != nil {
		for _, ev := range *l {
			f(ev)
		}
	}
}

func (s *Server) emitHandshake(sess *Session) {
	s.eachEvents(func(ev *Events) {
		if ev.Handshake != nil {
			ev.Handshake(sess)
		}
	})
}

func (s *Server) emitSubscribe(sess *Session, pattern string) {
	s.eachEvents(func(ev *Events) {
		if ev.Subscribe != nil {
			ev.Subscribe(sess, pattern)
		}
	})
}

func (s *Server) emitUnsubscribe(sess *Session, pattern string) {
	s.eachEvents(func(ev *Events) {
		if ev.Unsubscribe != nil {
			ev.Unsubscribe(sess, pattern)
		}
	})
}

func (s *Server) emitPublish(sess *Session, channel string, data []byte) {
	s.eachEvents(func(ev *Events) {
		if ev.Publish != nil {
			ev.Publish(sess, channel, data)
		}
	})
}

func (s *Server) emitDisconnect(sess *Session, why EndReason) {
	s.eachEvents(func(ev *Events) {
		if ev.Disconnect != nil {
			ev.Disconnect(sess, why)
		}
	})
}

// Go runs f on a goroutine that the server owns: ctx is done when the
// server shuts down, and Shutdown waits for f to return. It reports false,
// and runs nothing, when the server is already shutting down. Extensions
// use it for their background work (see Attacher).
func (s *Server) Go(f func(ctx context.Context)) bool {
	return s.crew.spawn(func() { f(s.ctx) })
}

// Engine returns the engine the server runs on (Config.Engine, or the
// in-memory engine). Extensions that keep state across nodes look for the
// capabilities they need on it (an interface of their own that a cluster
// engine implements).
func (s *Server) Engine() Engine { return s.engine }

// hasPublishEvents reports whether any Publish callback is set, so that a
// publish does not copy its data for nobody.
func (s *Server) hasPublishEvents() bool {
	if s.cfg.Events.Publish != nil {
		return true
	}
	if l := s.observers.list.Load(); l != nil {
		for _, ev := range *l {
			if ev.Publish != nil {
				return true
			}
		}
	}
	return false
}
