package bayeux

import (
	"context"
	"errors"
	"fmt"
)

// Pinger is implemented by engines that depend on something that can be
// out of reach, such as a Redis server: Ping returns nil when it answers
// within ctx. Server.Ready asks it; an engine that is not a Pinger is
// always reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ErrDraining is the error of Ready once Drain or Shutdown was called.
var ErrDraining = errors.New("bayeux: server draining")

// Drain marks the server as going away, before Shutdown: from now on Ready
// returns ErrDraining, so that a load balancer watching it sends no new
// clients here, while the clients already here are still served as usual.
// Shutdown then answers their held connects with advice to handshake again
// (elsewhere). Drain cannot be undone.
func (s *Server) Drain() { s.draining.Store(true) }

// Ready says whether the server should get new clients: nil when it is
// neither draining (Drain, Shutdown) nor cut off from its engine (an engine
// that is a Pinger must answer its Ping within ctx), else an error saying
// why (ErrDraining, or the engine's error wrapped).
func (s *Server) Ready(ctx context.Context) error {
	if s.draining.Load() || s.ctx.Err() != nil {
		return ErrDraining
	}
	if p, ok := s.engine.(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return fmt.Errorf("bayeux: engine unreachable: %w", err)
		}
	}
	return nil
}

// drainReply answers a connect (with id) held when the server shuts down:
// unsuccessful, with advice to handshake again, which sends faye and
// CometD clients to a new session, through the load balancer on another
// node. (CometD honours "handshake" only on a failed reply.)
func (s *Server) drainReply(id string) Reply {
	return Reply{ID: id, Channel: "/meta/connect", Error: errShuttingDown, Advice: s.handshakeAdvice()}
}
