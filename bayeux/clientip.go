package bayeux

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
)

// The client address: what the logs, the per-address limits and the
// extensions see. It is the connection's peer address, unless the peer is
// one of Config.TrustedProxies: then it is the rightmost address of
// X-Forwarded-For that is not itself a trusted proxy. An exchange resolves
// it once per batch (a WebSocket once, at its upgrade); the hooks'
// contexts carry it (ClientIP), made only when hooks run, so that requests
// without extensions pay nothing for it.

// clientIPKey is the context key of the resolved client address.
type clientIPKey struct{}

// ClientIP returns the address of the client whose message is being
// handled, from ctx, the context of an extension hook or service handler
// (for a WebSocket, the address of its upgrade request). It is the peer
// address, or for a peer that is one of Config.TrustedProxies the client
// X-Forwarded-For names. ok is false when ctx carries none (the server's
// own publishes).
func ClientIP(ctx context.Context) (addr netip.Addr, ok bool) {
	addr, ok = ctx.Value(clientIPKey{}).(netip.Addr)
	return addr, ok
}

// withClientIP returns ctx carrying addr as the client address.
func withClientIP(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientIPKey{}, addr)
}

// requestIP returns the client address of r: the one its context carries
// (a request forwarded by another node of a cluster), or else resolved
// from its peer and headers.
func (s *Server) requestIP(r *http.Request) netip.Addr {
	if a, ok := ClientIP(r.Context()); ok {
		return a
	}
	return resolveClientIP(r, s.cfg.TrustedProxies)
}

// resolveClientIP returns r's client address: its peer's, or, when the
// peer is in trusted, the last address of X-Forwarded-For that is not in
// trusted (the first unparseable hop stops the walk: what is left of it
// was written by the client).
func resolveClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := peerAddr(r.RemoteAddr)
	if !inPrefixes(trusted, addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = a.Unmap().WithZone("")
		if !inPrefixes(trusted, addr) {
			break
		}
	}
	return addr
}

// inPrefixes reports whether a is in one of ps.
func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses an http.Request's RemoteAddr; an unparseable one (a
// test's, a Unix socket's) is the zero Addr, counted as one address.
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap().WithZone("")
}

// logIP is a client address for the logs: "" for the zero Addr.
func logIP(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
