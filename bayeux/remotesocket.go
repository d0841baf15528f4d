package bayeux

import (
	"context"
	"sync"
	"time"
)

// remoteSocket is, on a session's owner, a WebSocket that lives on another
// node: its frames are pushed there. Frames from it are handled in order.
type remoteSocket struct {
	socket
	node, id string

	mu      sync.Mutex
	queue   []*nodeMsg
	running bool
}

// remoteSink pushes a remote socket's frames to its node.
type remoteSink struct {
	srv      *Server
	node, id string
}

func (k *remoteSink) writeFrames(items [][]byte) error {
	m := &nodeMsg{T: "push", ID: k.id, From: k.srv.cluster.self, Items: rawItems(items)}
	ctx, cancel := context.WithTimeout(k.srv.ctx, k.srv.cfg.WriteTimeout)
	defer cancel()
	return k.srv.cluster.send(ctx, k.node, m)
}

func (k *remoteSink) shut(code int, text string) {
	k.srv.cluster.remotes.Delete(k.node + "/" + k.id)
	if code == closeAbnormal {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = k.srv.cluster.send(ctx, k.node, &nodeMsg{T: "close", ID: k.id, From: k.srv.cluster.self, Code: code, Text: text})
}

// remoteSocket returns the remote socket a forwarded frame came from,
// creating it on its first frame.
func (s *Server) remoteSocket(m *nodeMsg) *remoteSocket {
	key := m.From + "/" + m.ID
	if rs, ok := s.cluster.remotes.Load(key); ok {
		return rs.(*remoteSocket)
	}
	rs := &remoteSocket{node: m.From, id: m.ID}
	rs.socket = socket{srv: s, sink: &remoteSink{srv: s, node: m.From, id: m.ID}, req: forwardedRequest(s.ctx, m), ip: peerAddr(m.Remote)}
	actual, _ := s.cluster.remotes.LoadOrStore(key, rs)
	return actual.(*remoteSocket)
}

// enqueue adds a forwarded frame and makes sure a goroutine handles the
// socket's frames, one at a time in arrival order.
func (rs *remoteSocket) enqueue(m *nodeMsg) {
	rs.mu.Lock()
	rs.queue = append(rs.queue, m)
	start := !rs.running
	rs.running = true
	rs.mu.Unlock()
	if start && !rs.srv.crew.spawn(rs.work) {
		rs.mu.Lock()
		rs.running = false
		rs.mu.Unlock()
	}
}

func (rs *remoteSocket) work() {
	s := rs.srv
	for {
		rs.mu.Lock()
		if len(rs.queue) == 0 {
			rs.running = false
			rs.mu.Unlock()
			return
		}
		m := rs.queue[0]
		rs.queue = rs.queue[1:]
		rs.mu.Unlock()
		if rs.closed.Load() {
			continue
		}
		msgs, err := s.lim.parseValues(m.Batches)
		if err != nil || len(msgs) == 0 {
			continue
		}
		x := s.newExchange(s.ctx, rs.req, &rs.socket)
		x.run(msgs)
		err = rs.write(rs.apply(x)...)
		x.finish()
		if err != nil {
			continue
		}
		if x.closeAfter {
			rs.close(closeNormal, "disconnected")
		}
	}
}
