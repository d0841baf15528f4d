package bayeux

import "slices"

// subSetMapMin is the number of subscriptions past which a session indexes
// them in a map; below it a linear search is faster and saves the map.
const subSetMapMin = 16

// subSet is a session's subscriptions (channels and patterns). Small sets
// are a slice in subscription order; past subSetMapMin a map locates each
// one, so that subscribing and unsubscribing cost the same at the 1,000th
// subscription as at the first (removal then swaps the last one into the
// hole). It is guarded by the session's mutex.
type subSet struct {
	list []string
	pos  map[string]int // nil while len(list) <= subSetMapMin
}

func (s *subSet) len() int { return len(s.list) }

func (s *subSet) index(p string) int {
	if s.pos != nil {
		if i, ok := s.pos[p]; ok {
			return i
		}
		return -1
	}
	return slices.Index(s.list, p)
}

func (s *subSet) has(p string) bool { return s.index(p) >= 0 }

// add appends p, which the set does not hold.
func (s *subSet) add(p string) {
	s.list = append(s.list, p)
	switch {
	case s.pos != nil:
		s.pos[p] = len(s.list) - 1
	case len(s.list) > subSetMapMin:
		s.pos = make(map[string]int, 2*len(s.list))
		for i, v := range s.list {
			s.pos[v] = i
		}
	}
}

// remove deletes p and reports whether the set held it.
func (s *subSet) remove(p string) bool {
	i := s.index(p)
	if i < 0 {
		return false
	}
	if s.pos == nil {
		s.list = slices.Delete(s.list, i, i+1)
		return true
	}
	last := len(s.list) - 1
	if i != last {
		moved := s.list[last]
		s.list[i] = moved
		s.pos[moved] = i
	}
	s.list[last] = ""
	s.list = s.list[:last]
	delete(s.pos, p)
	if len(s.list) <= subSetMapMin/2 {
		s.pos = nil
	}
	return true
}

// take returns the subscriptions and empties the set.
func (s *subSet) take() []string {
	l := s.list
	*s = subSet{}
	return l
}
