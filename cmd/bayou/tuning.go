package main

import (
	"flag"
	"fmt"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// tuningOptions are the protocol and timing settings of the server that
// are neither limits nor history (see bayeux.Config).
type tuningOptions struct {
	interval      float64
	retryInterval float64
	writeTimeout  float64
	hookTimeout   float64
	grammar       string
	excludeSender string
}

func (t *tuningOptions) register(fs *flag.FlagSet) {
	fs.Float64Var(&t.interval, "interval", 0, "seconds clients are advised to wait between two connects (advice.interval)")
	fs.Float64Var(&t.retryInterval, "retry-interval", 1, "seconds a client refused at handshake or connect is advised to wait before it handshakes again")
	fs.Float64Var(&t.writeTimeout, "write-timeout", 10, "seconds a write to a client connection may take; a client that does not read for this long is disconnected")
	fs.Float64Var(&t.hookTimeout, "hook-timeout", 10, "seconds the extensions (authentication, callback) may take for one batch of messages")
	fs.StringVar(&t.grammar, "grammar", "strict", "channel names: strict (faye's characters) or wide (CometD's: also space # + . { })")
	fs.StringVar(&t.excludeSender, "exclude-sender", "", "comma-separated channel patterns (e.g. /chat/**) on which clients do not receive their own publishes")
}

func (t *tuningOptions) validate() error {
	for _, v := range []struct {
		name  string
		value float64
		zero  bool // 0 is allowed
	}{
		{"interval", t.interval, true}, {"retry-interval", t.retryInterval, false},
		{"write-timeout", t.writeTimeout, false}, {"hook-timeout", t.hookTimeout, false},
	} {
		switch {
		case v.value < 0 && v.zero:
			return fmt.Errorf("--%s must not be negative, got %v", v.name, v.value)
		case v.value <= 0 && !v.zero:
			return fmt.Errorf("--%s must be positive, got %v", v.name, v.value)
		}
	}
	_, err := t.parseGrammar()
	return err
}

// parseGrammar parses --grammar.
func (t *tuningOptions) parseGrammar() (channels.Grammar, error) {
	switch t.grammar {
	case "strict":
		return channels.Strict, nil
	case "wide":
		return channels.Wide, nil
	}
	return 0, fmt.Errorf("--grammar must be strict or wide, got %q", t.grammar)
}

// apply sets the settings in c; the options are valid.
func (t *tuningOptions) apply(c *bayeux.Config) {
	c.Interval = seconds(t.interval)
	c.RetryInterval = seconds(t.retryInterval)
	c.WriteTimeout = seconds(t.writeTimeout)
	c.HookTimeout = seconds(t.hookTimeout)
	c.Grammar, _ = t.parseGrammar()
	c.ExcludeSender = list(t.excludeSender)
}
