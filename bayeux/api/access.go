package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"
)

// loopback returns the default allow-list, used when no API key is
// configured.
func loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// access decides which requests the API answers.
type access struct {
	keys    [][sha256.Size]byte // digests of the API keys
	nets    []netip.Prefix      // allowed sources; nil allows any
	proxies []netip.Prefix      // trusted reverse proxies
}

func newAccess(cfg Config) *access {
	a := &access{nets: normalize(cfg.AllowNets), proxies: normalize(cfg.TrustedProxies)}
	for _, k := range cfg.Keys {
		if k = strings.TrimSpace(k); k != "" {
			a.keys = append(a.keys, sha256.Sum256([]byte(k)))
		}
	}
	if len(a.nets) == 0 && len(a.keys) == 0 {
		a.nets = loopback()
	}
	return a
}

// normalize masks the prefixes. Invalid ones are kept: they match no
// address, so a broken allow-list refuses requests rather than falling back
// to a default.
func normalize(ps []netip.Prefix) []netip.Prefix {
	if len(ps) == 0 {
		return nil
	}
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		if p.IsValid() {
			p = p.Masked()
		}
		out[i] = p
	}
	return out
}

// authorize returns nil when r may be served, else the error to answer:
// 403 for a source outside the allow-list or, without keys, a request made
// by a web page; 401 for a missing or wrong key.
func (a *access) authorize(r *http.Request) *apiError {
	if a.nets != nil {
		src, ok := a.source(r)
		if !ok {
			return &apiError{status: http.StatusForbidden, code: codeForbidden, message: "unknown source address"}
		}
		if !contains(a.nets, src) {
			return &apiError{status: http.StatusForbidden, code: codeForbidden,
				message: "source address " + src.String() + " is not allowed"}
		}
	}
	if len(a.keys) > 0 {
		key, ok := presentedKey(r)
		if !ok {
			return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized,
				message: "an API key is required (Authorization: Bearer <key> or X-API-Key)"}
		}
		if !a.validKey(key) {
			return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, message: "invalid API key"}
		}
		return nil
	}
	// Authorized by its source alone: refuse what a browser sends on behalf
	// of a web page, so that a page the operator visits cannot drive a
	// loopback-only API (cross-site requests, DNS rebinding).
	if fromBrowser(r) {
		return &apiError{status: http.StatusForbidden, code: codeForbidden,
			message: "requests made by web pages are refused unless API keys are configured"}
	}
	return nil
}

// validKey compares key with every configured key in constant time. Keys
// are compared as SHA-256 digests so that their lengths do not leak either.
func (a *access) validKey(key string) bool {
	d := sha256.Sum256([]byte(key))
	match := 0
	for i := range a.keys {
		match |= subtle.ConstantTimeCompare(d[:], a.keys[i][:])
	}
	return match == 1
}

// presentedKey returns the key of "Authorization: Bearer <key>", or else
// of "X-API-Key: <key>".
func presentedKey(r *http.Request) (string, bool) {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if token = strings.TrimSpace(token); token != "" {
			return token, true
		}
	}
	if key := strings.TrimSpace(r.Header.Get("X-API-Key")); key != "" {
		return key, true
	}
	return "", false
}

// fromBrowser reports whether r was sent by a browser for a script or a
// form: browsers send Origin with such requests and Sec-Fetch-Site with all
// of theirs ("none" when the user typed the address). Back ends send
// neither.
func fromBrowser(r *http.Request) bool {
	if r.Header.Get("Origin") != "" {
		return true
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site != "" && site != "none"
}

// source returns the address the request comes from: the peer address,
// or, when the peer is a trusted proxy, the rightmost X-Forwarded-For
// address that is not a trusted proxy. It returns false when an address
// cannot be parsed.
func (a *access) source(r *http.Request) (netip.Addr, bool) {
	addr, ok := parseAddr(r.RemoteAddr)
	if !ok || !contains(a.proxies, addr) {
		return addr, ok
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop := strings.TrimSpace(hops[j])
			if hop == "" {
				continue
			}
			ip, ok := parseAddr(hop)
			if !ok {
				return netip.Addr{}, false
			}
			if !contains(a.proxies, ip) {
				return ip, true
			}
			addr = ip
		}
	}
	return addr, true // every hop is a trusted proxy
}

// sourceText is the source of r for the logs (see source): the peer
// address as given when it does not parse.
func (a *access) sourceText(r *http.Request) string {
	if src, ok := a.source(r); ok {
		return src.String()
	}
	return r.RemoteAddr
}

// parseAddr parses "ip", "ip:port" or "[ip]:port", without zone and with
// IPv4-mapped IPv6 addresses turned into IPv4.
func parseAddr(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	return ip.Unmap().WithZone(""), true
}

func contains(nets []netip.Prefix, ip netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
