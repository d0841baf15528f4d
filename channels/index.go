package channels

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
)

const (
	// shardCount is the number of independently locked shards; a power of
	// two so that a hash selects a shard with a mask.
	shardCount = 64

	// posMapMin is the subscriber count above which an entry keeps a
	// subscriber -> position map; smaller entries are searched linearly,
	// which saves a map per pattern for the common one- or two-subscriber
	// (per-client) channels. posMapDrop < posMapMin gives hysteresis.
	posMapMin  = 16
	posMapDrop = 8

	// stackName is the longest channel name (plus the 3 bytes of "/**")
	// that AppendMatch expands in a stack buffer without allocating.
	stackName = 256

	// linearDedupBudget bounds the comparisons the linear de-duplication
	// may make; above it the pooled hash set is used instead.
	linearDedupBudget = 2048

	// maxPooledSet is the largest de-duplication table (in slots) put back
	// in the pool; bigger ones are left to the garbage collector.
	maxPooledSet = 1 << 16
)

// Index maps subscription patterns (channel names or wildcard patterns) to
// sets of subscribers, and finds the subscribers of a published channel.
//
// It is safe for concurrent use. Patterns are spread over 64 shards by an
// FNV-1a hash, each guarded by its own sync.RWMutex, so publishers only take
// read locks and subscriptions on different patterns rarely contend.
//
// Index does not validate patterns; check them with a Grammar before Add.
// Use NewIndex to create one (the zero value also works). An Index must not
// be copied after first use.
type Index[S comparable] struct {
	shards [shardCount]shard[S]
	sets   sync.Pool // *hashSet[S] for de-duplication, empty
}

type shard[S comparable] struct {
	mu sync.RWMutex
	m  map[string]*entry[S]
	_  [64]byte // keep neighbouring shards' hot words on separate cache lines
}

// entry holds the subscribers of one pattern. subs is what publishers copy;
// pos, when present, locates a subscriber in subs for O(1) swap-removal.
type entry[S comparable] struct {
	subs []S
	pos  map[S]int // nil while len(subs) <= posMapMin
}

// NewIndex returns an empty Index.
func NewIndex[S comparable]() *Index[S] {
	return new(Index[S])
}

// Add subscribes s to pattern. It reports whether s was newly added (false
// if it was already subscribed) and whether pattern went from zero to one
// subscriber.
func (x *Index[S]) Add(pattern string, s S) (added, first bool) {
	sh := x.shard(pattern)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[pattern]
	if e == nil {
		if sh.m == nil {
			sh.m = make(map[string]*entry[S])
		}
		e = &entry[S]{}
		// Clone so that the index never pins a larger buffer (such as a
		// decoded message) that pattern may be a substring of.
		sh.m[strings.Clone(pattern)] = e
		first = true
	} else if e.find(s) >= 0 {
		return false, false
	}
	e.subs = append(e.subs, s)
	switch {
	case e.pos != nil:
		e.pos[s] = len(e.subs) - 1
	case len(e.subs) > posMapMin:
		e.pos = make(map[S]int, 2*len(e.subs))
		for i, v := range e.subs {
			e.pos[v] = i
		}
	}
	return true, first
}

// Remove unsubscribes s from pattern. It reports whether s was subscribed
// and whether pattern went from one to zero subscribers, in which case the
// pattern is dropped from the index.
func (x *Index[S]) Remove(pattern string, s S) (removed, last bool) {
	sh := x.shard(pattern)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[pattern]
	if e == nil {
		return false, false
	}
	i := e.find(s)
	if i < 0 {
		return false, false
	}
	n := len(e.subs) - 1
	if i != n {
		moved := e.subs[n]
		e.subs[i] = moved
		if e.pos != nil {
			e.pos[moved] = i
		}
	}
	var zero S
	e.subs[n] = zero // do not keep the subscriber reachable
	e.subs = e.subs[:n]
	if n == 0 {
		delete(sh.m, pattern)
		return true, true
	}
	if e.pos != nil {
		delete(e.pos, s)
		if n < posMapDrop {
			e.pos = nil
		}
	}
	if c := cap(e.subs); c >= 64 && n <= c/4 {
		e.subs = slices.Clone(e.subs) // give back memory after mass unsubscription
	}
	return true, false
}

// AppendMatch appends to dst the subscribers of every pattern that matches
// channel (the patterns of Expand(channel)), each subscriber once however
// many of its patterns match, and returns the extended slice. The order of
// the appended subscribers is unspecified. Each matching pattern is read
// under its shard's read lock in turn, so the result is not an atomic
// snapshot of the whole index; no lock is held when AppendMatch returns.
//
// For an ill-formed channel (see Expand) it returns dst unchanged. When dst
// has enough capacity and channel is at most 253 bytes long, AppendMatch
// does not allocate.
func (x *Index[S]) AppendMatch(dst []S, channel string) []S {
	last, ok := wellFormed(channel)
	if !ok {
		return dst
	}
	// Build each expanded pattern in turn in buf, which starts as a copy of
	// channel: for a "/" at p, writing "**" at p+1 makes buf[:p+3] the
	// pattern prefix+"/**" and buf[:p+2] the pattern prefix+"/*". Map
	// lookups with string(buf[...]) do not allocate.
	var arr [stackName]byte
	var buf []byte
	if n := len(channel) + len("/**"); n <= len(arr) {
		buf = arr[:n]
	} else {
		buf = make([]byte, n)
	}
	copy(buf, channel)

	// The shard of each pattern comes from its FNV-1a hash, computed
	// incrementally: h is the hash of channel[:p], so each pattern costs
	// O(1) more than the scan, and the whole look-up O(len(channel)) hashing
	// instead of O(segments * len(channel)).
	start := len(dst)
	var g groups
	h := uint64(fnvOffset)
	for p := 0; p <= last; p++ {
		if channel[p] == '/' {
			b1, b2 := buf[p+1], buf[p+2]
			buf[p+1], buf[p+2] = '*', '*'
			before := len(dst)
			dst = x.appendSubs(dst, buf[:p+3], fnvStep(fnvStep(fnvStep(h, '/'), '*'), '*'))
			g.note(before, len(dst))
			if p == last {
				before = len(dst)
				dst = x.appendSubs(dst, buf[:p+2], fnvStep(fnvStep(h, '/'), '*'))
				g.note(before, len(dst))
			}
			buf[p+1], buf[p+2] = b1, b2
		}
		h = fnvStep(h, channel[p])
	}
	for p := last + 1; p < len(channel); p++ {
		h = fnvStep(h, channel[p])
	}
	before := len(dst)
	dst = x.appendSubs(dst, buf[:len(channel)], h)
	g.note(before, len(dst))
	if g.hits < 2 {
		return dst // one pattern's subscribers are distinct already
	}
	return x.dedup(dst, start, g.ls, g.le)
}

// Count returns the number of subscribers of exactly pattern (wildcards in
// pattern are not expanded).
func (x *Index[S]) Count(pattern string) int {
	sh := x.shard(pattern)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if e := sh.m[pattern]; e != nil {
		return len(e.subs)
	}
	return 0
}

// Len returns the number of patterns that have at least one subscriber.
func (x *Index[S]) Len() int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Patterns calls fn for each pattern that has subscribers, with its number
// of subscribers, until fn returns false. Each shard is snapshotted under
// its read lock and fn runs with no lock held, so fn may use the Index.
// The order is unspecified. Patterns has the shape of an iter.Seq2, so it
// can be ranged over: for pattern, n := range x.Patterns { ... }.
func (x *Index[S]) Patterns(fn func(pattern string, subscribers int) bool) {
	type patternCount struct {
		pattern string
		n       int
	}
	var snap []patternCount
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		snap = snap[:0]
		for p, e := range sh.m {
			snap = append(snap, patternCount{p, len(e.subs)})
		}
		sh.mu.RUnlock()
		for _, pc := range snap {
			if !fn(pc.pattern, pc.n) {
				return
			}
		}
	}
}

// find returns the position of s in e.subs, or -1.
func (e *entry[S]) find(s S) int {
	if e.pos != nil {
		if i, ok := e.pos[s]; ok {
			return i
		}
		return -1
	}
	return slices.Index(e.subs, s)
}

// shard returns the shard that holds pattern.
func (x *Index[S]) shard(pattern string) *shard[S] {
	return &x.shards[fnv1a(pattern)&(shardCount-1)]
}

// appendSubs appends the subscribers of the pattern spelled by key, whose
// FNV-1a hash is hash.
func (x *Index[S]) appendSubs(dst []S, key []byte, hash uint64) []S {
	sh := &x.shards[hash&(shardCount-1)]
	sh.mu.RLock()
	if e := sh.m[string(key)]; e != nil {
		dst = append(dst, e.subs...)
	}
	sh.mu.RUnlock()
	return dst
}

// groups tracks, during AppendMatch, how many patterns contributed
// subscribers and where the largest contribution lies in dst.
type groups struct {
	hits   int
	ls, le int // largest group is dst[ls:le]
}

func (g *groups) note(before, after int) {
	if after > before {
		g.hits++
		if after-before > g.le-g.ls {
			g.ls, g.le = before, after
		}
	}
}

// dedup removes repeated subscribers from dst[start:] in place, keeping one
// occurrence of each, and returns the shortened slice. dst[ls:le] is
// the largest group; every group came from a single pattern and so has no
// repeats of its own. When the other groups are small, the linear scan is
// cheapest; otherwise a pooled hash set is used.
func (x *Index[S]) dedup(dst []S, start, ls, le int) []S {
	others := len(dst) - start - (le - ls)
	if others*(len(dst)-start) <= linearDedupBudget {
		return dedupLinear(dst, start, ls, le)
	}
	set, _ := x.sets.Get().(*hashSet[S])
	if set == nil {
		set = &hashSet[S]{seed: maphash.MakeSeed()}
	}
	dst = set.dedup(dst, start)
	if len(set.keys) <= maxPooledSet {
		x.sets.Put(set)
	}
	return dst
}

// dedupLinear is dedup by comparison, for when the groups other than the
// largest are few: each of their subscribers is looked for among those
// already kept and in the largest group.
func dedupLinear[S comparable](dst []S, start, ls, le int) []S {
	largest := dst[ls:le]
	w := start
	for r := start; r < ls; r++ {
		v := dst[r]
		if !slices.Contains(dst[start:w], v) && !slices.Contains(largest, v) {
			dst[w] = v
			w++
		}
	}
	w += copy(dst[w:], largest) // kept elements precede ls, so this is a safe move
	for r := le; r < len(dst); r++ {
		v := dst[r]
		if !slices.Contains(dst[start:w], v) {
			dst[w] = v
			w++
		}
	}
	clear(dst[w:])
	return dst[:w]
}

// The 64-bit FNV-1a parameters.
const (
	fnvOffset = 14695981039522245341
	fnvPrime  = 1099511628211
)

// fnv1a is the 64-bit FNV-1a hash of s.
func fnv1a(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h = fnvStep(h, s[i])
	}
	return h
}

// fnvStep adds byte c to the FNV-1a hash h.
func fnvStep(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime }
