package presence

import (
	"context"
	"maps"
	"sync"
)

// A Store keeps who is present on which channel. The nodes of a cluster
// share one: the Redis engine (bayeux/redis.Engine) is a Store, and New
// uses the server's engine when it is one. Members are JSON, written and
// read by the extension; a Store keeps them as they are.
type Store interface {
	// PresenceAdd records that clientID, a session of this node, is
	// present on channel, described by member.
	PresenceAdd(ctx context.Context, channel, clientID string, member []byte) error
	// PresenceRemove forgets clientID on channel and returns the member it
	// was recorded with, or nil when it was not present.
	PresenceRemove(ctx context.Context, channel, clientID string) ([]byte, error)
	// PresenceMembers returns the members present on channel by clientID,
	// leaving out those of nodes that are no longer alive.
	PresenceMembers(ctx context.Context, channel string) (map[string][]byte, error)
	// PresenceSweep removes the entries of nodes that are no longer alive
	// and calls gone for each, once in the whole cluster.
	PresenceSweep(ctx context.Context, gone func(channel, clientID string, member []byte)) error
}

// MemoryStore is the Store of a single node: a map in memory.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]map[string][]byte // channel -> clientId -> member
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{m: make(map[string]map[string][]byte)}
}

// PresenceAdd records clientID on channel.
func (s *MemoryStore) PresenceAdd(_ context.Context, channel, clientID string, member []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m[channel]
	if m == nil {
		m = make(map[string][]byte)
		s.m[channel] = m
	}
	m[clientID] = member
	return nil
}

// PresenceRemove forgets clientID on channel.
func (s *MemoryStore) PresenceRemove(_ context.Context, channel, clientID string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m[channel]
	member, ok := m[clientID]
	if !ok {
		return nil, nil
	}
	delete(m, clientID)
	if len(m) == 0 {
		delete(s.m, channel)
	}
	return member, nil
}

// PresenceMembers returns a copy of the members of channel.
func (s *MemoryStore) PresenceMembers(_ context.Context, channel string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m[channel]), nil
}

// PresenceSweep does nothing: a single node has no other nodes to outlive.
func (s *MemoryStore) PresenceSweep(context.Context, func(channel, clientID string, member []byte)) error {
	return nil
}
