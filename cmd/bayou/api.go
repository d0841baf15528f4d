package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
)

// apiOptions configure the HTTP management API (package bayeux/api).
type apiOptions struct {
	addr    string
	keys    listValue
	allow   string
	maxBody int64
}

func (a *apiOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&a.addr, "api-addr", "", "address of the HTTP management API, host:port; empty disables it")
	fs.Var(&a.keys, "api-key", "key that clients of the management API must present (without one, only loopback addresses are served); repeat the flag or separate keys with commas to accept several, e.g. while rotating them")
	fs.StringVar(&a.allow, "api-allow", "", "comma-separated networks (or addresses) the management API answers, e.g. 10.0.0.0/8; empty: any source with a key, or the loopback addresses without one")
	fs.Int64Var(&a.maxBody, "api-max-body", api.DefaultMaxBodyBytes, "largest request body the management API accepts, in bytes")
}

func (a *apiOptions) validate() error {
	if a.maxBody <= 0 {
		return fmt.Errorf("--api-max-body must be positive, got %v", a.maxBody)
	}
	_, err := prefixes("api-allow", a.allow)
	return err
}

// handler returns the API of srv (with the status page, which shows the
// binary's version); trusted lists the proxies whose
// X-Forwarded-For names the caller (--trusted-proxies); presence answers
// GET /presence (nil: presence is off).
func (a *apiOptions) handler(srv *bayeux.Server, trusted []netip.Prefix, presence api.Presence, log *slog.Logger) http.Handler {
	allow, _ := prefixes("api-allow", a.allow)
	return api.New(srv, api.Config{Keys: a.keys.items, AllowNets: allow, TrustedProxies: trusted, MaxBodyBytes: a.maxBody,
		Presence: presence, Version: versionText(), Logger: log})
}
