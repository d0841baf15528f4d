package bayeux

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Listing sessions across a cluster uses two node messages (see nodeMsg):
//
//	sessionsof  from a node to every other live node: list the sessions of
//	            user Text, answering request ID
//	sessions    the answer: Items are the SessionInfo of each session

// SessionInfo describes a session on any node of a cluster.
type SessionInfo struct {
	// ID is the session's clientId.
	ID string `json:"id"`
	// User is its identity's User.
	User string `json:"user"`
	// Node is the id of the node that owns it; empty on a server whose
	// engine is not a Cluster.
	Node string `json:"node,omitempty"`
}

// errNoNodeList is returned by SessionsOf when the engine is a Cluster
// that cannot list its nodes.
var errNoNodeList = errors.New("bayeux: the cluster engine cannot list its nodes (it is no NodeLister)")

// LocalSessions returns this node's sessions that filter accepts, all of
// them when filter is nil, in no particular order. filter runs once per
// session, with no lock held; it must not block.
func (s *Server) LocalSessions(filter func(*Session) bool) []*Session {
	var out []*Session
	s.sessions.each(func(sess *Session) {
		if filter == nil || filter(sess) {
			out = append(out, sess)
		}
	})
	return out
}

// SessionsOf returns the sessions whose identity's User is user, on every
// live node of a cluster (on this node only when the engine is not a
// Cluster), sorted by node and clientId. Anonymous sessions are never
// listed, and an empty user names no one. ctx bounds the question to the
// other nodes, and so does Config.WriteTimeout. When some node does not
// answer in time, SessionsOf returns the sessions found elsewhere with an
// error naming the silent nodes; a node found dead meanwhile is skipped,
// since its sessions died with it.
func (s *Server) SessionsOf(ctx context.Context, user string) ([]SessionInfo, error) {
	if user == "" {
		return nil, nil
	}
	out := s.localSessionsOf(user)
	if s.cluster == nil {
		return out, nil
	}
	lister, ok := s.cluster.Cluster.(NodeLister)
	if !ok {
		return out, errNoNodeList
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	nodes, err := lister.LiveNodes(ctx)
	if err != nil {
		return out, fmt.Errorf("bayeux: listing the sessions of %q: %w", user, err)
	}
	nodes = slices.DeleteFunc(nodes, func(n string) bool { return n == s.cluster.self })
	remote, silent := s.askNodes(ctx, nodes, user)
	out = append(out, remote...)
	slices.SortFunc(out, func(a, b SessionInfo) int { return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID)) })
	if len(silent) > 0 {
		slices.Sort(silent)
		return out, fmt.Errorf("bayeux: listing the sessions of %q: no answer from %v", user, silent)
	}
	return out, nil
}

// localSessionsOf lists this node's sessions of user.
func (s *Server) localSessionsOf(user string) []SessionInfo {
	var node string
	if s.cluster != nil {
		node = s.cluster.self
	}
	var out []SessionInfo
	for _, sess := range s.LocalSessions(func(sess *Session) bool {
		id := sess.Identity()
		return id != nil && id.User == user
	}) {
		out = append(out, SessionInfo{ID: sess.id, User: user, Node: node})
	}
	return out
}

// askNodes asks nodes, in parallel, for their sessions of user, and
// returns what they answered within ctx, and the nodes that did not answer
// (those found dead are neither).
func (s *Server) askNodes(ctx context.Context, nodes []string, user string) (found []SessionInfo, silent []string) {
	c := s.cluster
	id := newRequestID()
	answers := make(chan *nodeMsg, len(nodes))
	c.queries.Store(id, answers)
	defer c.queries.Delete(id)

	var mu sync.Mutex
	waiting := map[string]bool{}
	var wg sync.WaitGroup
	for _, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.send(ctx, node, &nodeMsg{T: "sessionsof", ID: id, From: c.self, Text: user})
			if errors.Is(err, ErrNodeGone) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.log.Debug("cluster: asking a node for sessions", "node", node, "err", err)
				silent = append(silent, node)
				return
			}
			waiting[node] = true
		}()
	}
	wg.Wait()
	for len(waiting) > 0 {
		select {
		case m := <-answers:
			if !waiting[m.From] {
				continue
			}
			delete(waiting, m.From)
			for _, it := range m.Items {
				var info SessionInfo
				if json.Unmarshal(it, &info) == nil && info.User == user {
					found = append(found, info)
				}
			}
		case <-ctx.Done():
			for node := range waiting {
				silent = append(silent, node)
			}
			return found, silent
		}
	}
	return found, silent
}

// onSessionsMessage handles the node messages of SessionsOf; it reports
// false for a message of another type. It runs on the engine's delivery
// goroutine: the answer is made on another.
func (s *Server) onSessionsMessage(m *nodeMsg) bool {
	switch m.T {
	case "sessionsof":
		s.crew.spawn(func() { s.answerSessionsOf(m) })
	case "sessions":
		if ch, ok := s.cluster.queries.Load(m.ID); ok {
			select {
			case ch.(chan *nodeMsg) <- m:
			default: // a node answering twice
			}
		}
	default:
		return false
	}
	return true
}

// answerSessionsOf answers another node's sessionsof.
func (s *Server) answerSessionsOf(m *nodeMsg) {
	infos := s.localSessionsOf(m.Text)
	items := make([]json.RawMessage, 0, len(infos))
	for _, info := range infos {
		b, err := json.Marshal(info)
		if err != nil {
			continue
		}
		items = append(items, b)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	c := s.cluster
	if err := c.send(ctx, m.From, &nodeMsg{T: "sessions", ID: m.ID, From: c.self, Items: items}); err != nil {
		s.log.Debug("cluster: answering a sessions request", "node", m.From, "err", err)
	}
}
