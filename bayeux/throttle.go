package bayeux

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttle applies the per-address limits: open connections, handshakes
// per second, anonymous publishes per second. It keeps a small record per
// client address while the address is active, dropped by sweep once it is
// idle, so its memory follows the number of active addresses.
type throttle struct {
	maxConns  int
	handshake rate.Limit
	hsBurst   int
	publish   rate.Limit
	pubBurst  int

	seed   maphash.Seed
	shards [32]struct {
		mu sync.Mutex
		m  map[netip.Addr]*addrState
	}
}

// addrState is what the throttle knows of one client address.
type addrState struct {
	conns     int
	handshake *rate.Limiter // nil until the address handshakes
	publish   *rate.Limiter // nil until the address publishes anonymously
}

// newThrottle returns the throttle of c, or nil when c sets no per-address
// limit (the proxies alone need no record).
func newThrottle(c *Config) *throttle {
	if c.MaxConnectionsPerIP <= 0 && c.HandshakeRate <= 0 && c.PublishRate <= 0 {
		return nil
	}
	t := &throttle{
		maxConns:  c.MaxConnectionsPerIP,
		handshake: rate.Limit(c.HandshakeRate),
		hsBurst:   c.HandshakeBurst,
		publish:   rate.Limit(c.PublishRate),
		pubBurst:  c.PublishBurst,
		seed:      maphash.MakeSeed(),
	}
	for i := range t.shards {
		t.shards[i].m = make(map[netip.Addr]*addrState)
	}
	return t
}

// with calls fn with the record of addr, created if needed, under its
// shard's lock.
func (t *throttle) with(addr netip.Addr, fn func(*addrState)) {
	sh := &t.shards[maphash.Comparable(t.seed, addr)%uint64(len(t.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.m[addr]
	if st == nil {
		st = &addrState{}
		sh.m[addr] = st
	}
	fn(st)
}

// open counts a connection from addr, and reports false (counting
// nothing) when addr already has the most allowed.
func (t *throttle) open(addr netip.Addr) bool {
	if t.maxConns <= 0 {
		return true
	}
	ok := false
	t.with(addr, func(st *addrState) {
		if st.conns < t.maxConns {
			st.conns++
			ok = true
		}
	})
	return ok
}

// closed uncounts a connection counted by open.
func (t *throttle) closed(addr netip.Addr) {
	if t.maxConns > 0 {
		t.with(addr, func(st *addrState) { st.conns-- })
	}
}

// allowHandshake takes a handshake from addr's budget. When there is none
// left it returns false and how long until there is.
func (t *throttle) allowHandshake(addr netip.Addr) (bool, time.Duration) {
	if t.handshake <= 0 {
		return true, 0
	}
	var r *rate.Reservation
	now := time.Now()
	t.with(addr, func(st *addrState) {
		if st.handshake == nil {
			st.handshake = rate.NewLimiter(t.handshake, t.hsBurst)
		}
		r = st.handshake.ReserveN(now, 1)
	})
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused handshake does not spend the budget
		return false, d
	}
	return true, 0
}

// allowPublish takes an anonymous publish from addr's budget.
func (t *throttle) allowPublish(addr netip.Addr) bool {
	if t.publish <= 0 {
		return true
	}
	ok := false
	t.with(addr, func(st *addrState) {
		if st.publish == nil {
			st.publish = rate.NewLimiter(t.publish, t.pubBurst)
		}
		ok = st.publish.Allow()
	})
	return ok
}

// sweep forgets the addresses with no open connection whose budgets are
// full again: they are in the state a new record would have.
func (t *throttle) sweep(now time.Time) {
	full := func(l *rate.Limiter) bool { return l == nil || l.TokensAt(now) >= float64(l.Burst()) }
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for addr, st := range sh.m {
			if st.conns <= 0 && full(st.handshake) && full(st.publish) {
				delete(sh.m, addr)
			}
		}
		sh.mu.Unlock()
	}
}

// limitAddr returns the address the per-address limits count the client
// address a against: a itself, or for IPv6 its /64 network, which one host
// usually controls whole.
func limitAddr(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
