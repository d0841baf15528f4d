package main

import (
	"flag"
	"fmt"
	"net/netip"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// limitOptions are the limits on what one client may make the server do
// (see the README's "Limits and hardening").
type limitOptions struct {
	maxBatch           int
	maxNesting         int
	maxChannelLength   int
	maxChannelSegments int
	maxSubscriptions   int
	bodyTimeout        float64
	socketTimeout      float64
	maxConnsPerIP      int
	handshakeRate      float64
	handshakeBurst     int
	publishRate        float64
	publishBurst       int
	trustedProxies     string
}

func (l *limitOptions) register(fs *flag.FlagSet) {
	fs.IntVar(&l.maxBatch, "max-batch", 100, "messages one request or WebSocket frame may hold (more: HTTP 400, or close 1008)")
	fs.IntVar(&l.maxNesting, "max-nesting", 64, "how deeply a request's JSON arrays and objects may nest (deeper: HTTP 400)")
	fs.IntVar(&l.maxChannelLength, "max-channel-length", 1024, "bytes a channel name or pattern may have (longer: a 405 error)")
	fs.IntVar(&l.maxChannelSegments, "max-channel-segments", 64, "segments a channel name or pattern may have (more: a 405 error)")
	fs.IntVar(&l.maxSubscriptions, "max-subscriptions", 1024, "channels and patterns one client may subscribe to (more: a 403 error)")
	fs.Float64Var(&l.bodyTimeout, "body-timeout", 30, "seconds a client may take to send a request body (slower: HTTP 408)")
	fs.Float64Var(&l.socketTimeout, "socket-session-timeout", 10, "seconds a WebSocket may stay open before it connects a session (then: close 1008)")
	fs.IntVar(&l.maxConnsPerIP, "max-connections-per-ip", 0, "open WebSockets, streams and requests per client address (more: HTTP 429); 0: no limit")
	fs.Float64Var(&l.handshakeRate, "handshake-rate", 0, "handshakes per second per client address (more: a 429 error with retry advice); 0: no limit")
	fs.IntVar(&l.handshakeBurst, "handshake-burst", 0, "handshakes per client address allowed at once; 0: twice --handshake-rate")
	fs.Float64Var(&l.publishRate, "publish-rate", 0, "publishes per second per client, or per address for anonymous ones (more: a 429 error); 0: no limit")
	fs.IntVar(&l.publishBurst, "publish-burst", 0, "publishes allowed at once; 0: twice --publish-rate")
	fs.StringVar(&l.trustedProxies, "trusted-proxies", "", "comma-separated networks of reverse proxies (e.g. 127.0.0.1/32,10.0.0.0/8) whose X-Forwarded-For names the client address, on the Bayeux and the API listeners: the address the logs, the per-address limits and the auth callback see (the header of any other peer is ignored)")
}

func (l *limitOptions) validate() error {
	for _, v := range []struct {
		name   string
		value  float64
		zeroOK bool // 0 means no limit
	}{
		{"max-batch", float64(l.maxBatch), false}, {"max-nesting", float64(l.maxNesting), false},
		{"max-channel-length", float64(l.maxChannelLength), false},
		{"max-channel-segments", float64(l.maxChannelSegments), false},
		{"max-subscriptions", float64(l.maxSubscriptions), false}, {"body-timeout", l.bodyTimeout, false},
		{"socket-session-timeout", l.socketTimeout, false},
		{"max-connections-per-ip", float64(l.maxConnsPerIP), true}, {"handshake-rate", l.handshakeRate, true},
		{"handshake-burst", float64(l.handshakeBurst), true}, {"publish-rate", l.publishRate, true},
		{"publish-burst", float64(l.publishBurst), true},
	} {
		switch {
		case v.value < 0 && v.zeroOK:
			return fmt.Errorf("--%s must not be negative, got %v", v.name, v.value)
		case v.value <= 0 && !v.zeroOK:
			return fmt.Errorf("--%s must be positive, got %v", v.name, v.value)
		}
	}
	_, err := l.proxies()
	return err
}

// proxies parses --trusted-proxies: networks, or single addresses.
func (l *limitOptions) proxies() ([]netip.Prefix, error) {
	return prefixes("trusted-proxies", l.trustedProxies)
}

// apply sets the limits in c; the options are valid.
func (l *limitOptions) apply(c *bayeux.Config) {
	c.MaxBatch = l.maxBatch
	c.MaxNesting = l.maxNesting
	c.MaxChannelLength = l.maxChannelLength
	c.MaxChannelSegments = l.maxChannelSegments
	c.MaxSubscriptions = l.maxSubscriptions
	c.BodyTimeout = seconds(l.bodyTimeout)
	c.SocketSessionTimeout = seconds(l.socketTimeout)
	c.MaxConnectionsPerIP = l.maxConnsPerIP
	c.HandshakeRate, c.HandshakeBurst = l.handshakeRate, l.handshakeBurst
	c.PublishRate, c.PublishBurst = l.publishRate, l.publishBurst
	c.TrustedProxies, _ = l.proxies()
}
