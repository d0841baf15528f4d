package bayeux

import (
	"runtime/debug"
	"time"
)

// After a burst of new sessions (clients connecting after a deploy, a
// load balancer moving thousands of clients here) the heap holds the
// garbage of their handshakes, and the runtime would give that memory back
// to the operating system only slowly, over minutes. The server returns it
// once the burst is over, as it does after a mass expiry.
const (
	reclaimEvery  = time.Second // how often the server looks
	burstSessions = 10000       // sessions created since the last release that make a burst
	quietSessions = 100         // fewer created in the last second: the burst is over
)

// reclaim runs until the server shuts down, releasing memory once after
// each burst of new sessions.
func (s *Server) reclaim() {
	t := time.NewTicker(reclaimEvery)
	defer t.Stop()
	var released, prev int64
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		n := s.sessions.created.Load()
		if burstOver(n, prev, released) {
			debug.FreeOSMemory()
			released = n
		}
		prev = n
	}
}

// burstOver reports whether memory should be released now: n sessions were
// created in all, prev a second ago, released at the last release.
func burstOver(n, prev, released int64) bool {
	return n-released >= burstSessions && n-prev < quietSessions
}
