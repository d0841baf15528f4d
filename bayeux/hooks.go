package bayeux

import (
	"context"
	"net/http"
)

// The context of the extension hooks and service handlers is the same on
// every transport (see Extension): the values of the request the batch
// arrived in, ended by the server's shutdown or Config.HookTimeout. The
// exchange's own ctx is another thing: over HTTP it is the request's,
// which also bounds how long a connect is held.

// hookContext returns the context of the batch's hooks, made when the
// first hook needs it; releaseHooks (called by finish) lets it go.
func (x *exchange) hookContext() context.Context {
	if x.hooks == nil {
		x.hooks, x.releaseHook = x.srv.hookContext(x.ctx, x.req)
	}
	return x.hooks
}

// releaseHooks ends the batch's hook context, if it was made.
func (x *exchange) releaseHooks() {
	if x.releaseHook != nil {
		x.releaseHook()
		x.hooks, x.releaseHook = nil, nil
	}
}

// encode runs the outgoing extensions on r and encodes it.
func (x *exchange) encode(r *Reply) []byte {
	if len(x.srv.cfg.Extensions) == 0 {
		x.srv.stats.countReply(r)
		return r.encoded()
	}
	return x.srv.encodeReply(x.hookContext(), r)
}

// hookContext returns a context for hooks run for request r (nil when
// there is none: then base gives the values and may end it), carrying the
// client address (ClientIP), ending when
// the server shuts down or after Config.HookTimeout, and its release.
func (s *Server) hookContext(base context.Context, r *http.Request) (context.Context, context.CancelFunc) {
	if r != nil {
		base = context.WithoutCancel(r.Context())
		if _, ok := ClientIP(base); !ok {
			base = withClientIP(base, s.requestIP(r))
		}
	}
	ctx, cancel := context.WithTimeout(base, s.cfg.HookTimeout)
	if base == s.ctx {
		return ctx, cancel
	}
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// encodeAlone runs the outgoing extensions on a reply sent outside its
// batch's hooks (a held connect answered later), with a hook context of
// its own, and encodes it.
func (s *Server) encodeAlone(base context.Context, r *http.Request, reply *Reply) []byte {
	if len(s.cfg.Extensions) == 0 {
		s.stats.countReply(reply)
		return reply.encoded()
	}
	ctx, release := s.hookContext(base, r)
	defer release()
	return s.encodeReply(ctx, reply)
}
