package callback

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// cache keeps the back end's answers for a while: a least-recently-used
// list capped at max entries, each valid for ttl. Keys are SHA-256 digests
// of everything the back end was sent that may decide its answer, so a key
// reveals nothing and has a fixed size.
type cache struct {
	mu  sync.Mutex
	max int
	ttl time.Duration
	now func() time.Time
	ll  *list.List // of *entry, most recently used first
	m   map[[sha256.Size]byte]*list.Element
}

type entry struct {
	key     [sha256.Size]byte
	answer  Answer
	expires time.Time
}

func newCache(max int, ttl time.Duration, now func() time.Time) *cache {
	return &cache{max: max, ttl: ttl, now: now, ll: list.New(), m: make(map[[sha256.Size]byte]*list.Element)}
}

// get returns the answer stored under key, if it has not expired.
func (c *cache) get(key [sha256.Size]byte) (Answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return Answer{}, false
	}
	e := el.Value.(*entry)
	if !c.now().Before(e.expires) {
		c.ll.Remove(el)
		delete(c.m, key)
		return Answer{}, false
	}
	c.ll.MoveToFront(el)
	return e.answer, true
}

// put stores a under key, evicting the least recently used entries beyond
// the cap.
func (c *cache) put(key [sha256.Size]byte, a Answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := c.now().Add(c.ttl)
	if el, ok := c.m[key]; ok {
		e := el.Value.(*entry)
		e.answer, e.expires = a, exp
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(&entry{key: key, answer: a, expires: exp})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*entry).key)
	}
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
