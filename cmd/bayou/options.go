package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/acl"
)

// options are the command-line settings. Each flag --name may also be set by
// the environment variable BAYOU_NAME (upper case, dashes as underscores) and
// by the key "name" of the JSON file named by --config. The command line wins
// over the environment, which wins over the file.
type options struct {
	configFile     string
	addr           string
	mount          string
	timeout        float64
	ping           float64
	allowedOrigins string
	maxMessageSize int64
	maxQueueBytes  int
	clientJS       string
	// showVersion is --version: print the version and exit.
	showVersion bool

	auth      authOptions
	limits    limitOptions
	history   historyOptions
	presence  presenceOptions
	tuning    tuningOptions
	log       logOptions
	tls       tlsOptions
	lifecycle lifecycleOptions
	api       apiOptions
	redis     redisOptions

	// acl holds the access rules of the config file ("acl"), nil when
	// there are none.
	acl *acl.Config

	// pprofAddr serves the runtime profiles when set.
	pprofAddr string
	// metricsAddr serves the Prometheus metrics (/metrics) when set.
	metricsAddr string
}

// envName returns the environment variable that sets flag name.
func envName(name string) string {
	return "BAYOU_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// usageHeader introduces --help.
const usageHeader = `bayou: a Bayeux (faye and CometD compatible) pub/sub server.

Usage: bayou [flags]

Every flag can also be set with an environment variable, shown in brackets,
or as a key of the JSON file given by --config (for example
{"addr": ":8000", "auth": "token", "protect": ["/private/**"]}); the command
line wins over the environment, which wins over the file. Access rules
(ACL) are set in the file only:

  "acl": {"default": "anyone", "rules": [
    {"pattern": "/users/{sub}/**", "subscribe": "identified", "publish": "identified"}]}

History rules (--history PATTERN=SIZE[:TTL], repeatable) are an array of
objects in the file and comma-separated in BAYOU_HISTORY:

  "history": [{"pattern": "/chat/**", "size": 100, "ttl": "10m"}]
  BAYOU_HISTORY='/chat/**=100:10m,/news/*=20'

Flags:
`

// parseOptions reads args, the environment (getenv) and the config file.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bayou", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHeader)
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name == "version" {
				fmt.Fprintf(stderr, "  --%s\n    \t%s\n", f.Name, f.Usage)
				return
			}
			fmt.Fprintf(stderr, "  --%s (%s)\n    \t%s (default %q)\n", f.Name, envName(f.Name), f.Usage, f.DefValue)
		})
	}
	fs.StringVar(&o.configFile, "config", "", "JSON file of settings: flag names as keys, plus \"acl\" (see above)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8000", "address to listen on, host:port (port 0 picks a free port)")
	fs.StringVar(&o.mount, "mount", "/bayeux", "path of the Bayeux endpoint; every transport is served under it")
	fs.Float64Var(&o.timeout, "timeout", 25, "seconds a /meta/connect is held waiting for messages (advice.timeout); keep it below your proxies' idle timeout")
	fs.Float64Var(&o.ping, "ping", 25, "seconds of silence after which a WebSocket is pinged, and between EventSource keep-alives; 0 disables them")
	fs.StringVar(&o.allowedOrigins, "allowed-origins", "", "comma-separated browser origins allowed to connect (e.g. https://app.example.com); empty allows any origin")
	fs.Int64Var(&o.maxMessageSize, "max-message-size", 1<<20, "largest WebSocket frame or HTTP request body accepted, in bytes")
	fs.IntVar(&o.maxQueueBytes, "max-queue-bytes", 4<<20, "bytes that may wait for one client before it is dropped as a slow consumer")
	fs.StringVar(&o.clientJS, "client-js", "", "path of a browser bundle to serve at <mount>.js and <mount>/client.js (e.g. node_modules/faye/client/faye-browser-min.js)")
	fs.BoolVar(&o.showVersion, "version", false, "print the version (module version and VCS revision) and exit; so does the command bayou version")
	o.log.register(fs)
	o.auth.register(fs)
	o.limits.register(fs)
	o.history.register(fs)
	o.presence.register(fs)
	o.tuning.register(fs)
	o.tls.register(fs)
	o.lifecycle.register(fs)
	o.api.register(fs)
	o.redis.register(fs)
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "address to serve Prometheus metrics on (/metrics), e.g. 127.0.0.1:9100; empty disables it (with --api-addr, /metrics is also served there)")
	fs.StringVar(&o.pprofAddr, "pprof", "", "address to serve Go runtime profiles on (/debug/pprof/), e.g. 127.0.0.1:6060; empty disables it")

	// Environment values become the flags' values before the command line
	// is parsed, so that the command line overrides them; the flags either
	// set are not taken from the config file.
	explicit := map[string]bool{}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" {
			return // a command, not a setting: BAYOU_VERSION may well mean something else
		}
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
			explicit[f.Name] = true
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	// --history and --api-key flags replace the environment's items.
	o.history.rules.restart, o.api.keys.restart = true, true
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.showVersion {
		return o, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if o.configFile != "" {
		acl, err := applyConfigFile(o.configFile, fs, explicit)
		if err != nil {
			return nil, err
		}
		o.acl = acl
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// validate checks the values once every source is applied.
func (o *options) validate() error {
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %v", o.timeout)
	}
	if o.ping < 0 {
		return fmt.Errorf("--ping must not be negative, got %v", o.ping)
	}
	if !strings.HasPrefix(o.mount, "/") {
		return fmt.Errorf("--mount must start with /, got %q", o.mount)
	}
	for _, validate := range []func() error{o.log.validate, o.limits.validate, o.history.validate, o.tuning.validate,
		o.tls.validate, func() error { return o.lifecycle.validate(o.mount) }, o.api.validate, o.redis.validate, o.auth.validate} {
		if err := validate(); err != nil {
			return err
		}
	}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// listValue is a repeatable flag of comma-separated items (such as
// --api-key): each Set adds the items of its text, except that the first
// Set after restart replaces them, so that the command line replaces the
// environment's items rather than adding to them.
type listValue struct {
	items   []string
	restart bool
}

// String returns the items, comma-separated.
func (l *listValue) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.items, ",")
}

// Set adds the comma-separated items of s.
func (l *listValue) Set(s string) error {
	if l.restart {
		l.items, l.restart = nil, false
	}
	l.items = append(l.items, list(s)...)
	return nil
}

// prefixes parses the comma-separated networks or single addresses of the
// flag name.
func prefixes(name, s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list(s) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("--%s: %q is neither a network nor an address", name, item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// list splits a comma-separated flag value, dropping empty items.
func list(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// config turns the options into the server's configuration, extensions
// aside (see extensions).
func (o *options) config(log *slog.Logger) bayeux.Config {
	c := bayeux.Config{
		Mount:          o.mount,
		Timeout:        seconds(o.timeout),
		Ping:           seconds(o.ping),
		MaxMessageSize: o.maxMessageSize,
		MaxQueueBytes:  o.maxQueueBytes,
		ClientScript:   o.clientJS,
		Logger:         log,
		SessionLogRate: o.log.sessionLogRate(),
	}
	if o.ping == 0 {
		c.Ping = -1 // disabled
	}
	c.AllowedOrigins = list(o.allowedOrigins)
	o.limits.apply(&c)
	o.history.apply(&c)
	o.tuning.apply(&c)
	return c
}

// aclRules returns the number of ACL rules, for the start-up log.
func (o *options) aclRules() int {
	if o.acl == nil {
		return 0
	}
	return len(o.acl.Rules)
}
