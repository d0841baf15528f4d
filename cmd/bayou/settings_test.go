package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// TestOperatorSettings checks that the settings of the server, the API,
// the Redis engine, the logs, TLS and the lifecycle are reachable by flag,
// environment variable and config file key, and validated.
func TestOperatorSettings(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		check   func(o *options, c bayeux.Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(o *options, c bayeux.Config) bool {
			rc := o.redis.config(nil)
			return c.Interval == 0 && c.RetryInterval == time.Second && c.WriteTimeout == 10*time.Second &&
				c.HookTimeout == 10*time.Second && c.Grammar == channels.Strict && c.ExcludeSender == nil &&
				c.SessionLogRate == 20 && o.api.keys.items == nil && o.api.maxBody == 1<<20 &&
				rc.Namespace == "bayou" && rc.OpTimeout == time.Second && rc.NodeTTL == 10*time.Second &&
				o.lifecycle.healthPath == "/" && o.lifecycle.drainTimeout == 10 && o.lifecycle.preDrain == 0 &&
				o.log.format == "text" && o.tls.cert == ""
		}},
		{name: "server flags", args: []string{"--interval", "0.5", "--retry-interval", "3", "--write-timeout", "2",
			"--hook-timeout", "4", "--grammar", "wide", "--exclude-sender", "/chat/**,/game/*", "--session-log-rate", "0"},
			check: func(o *options, c bayeux.Config) bool {
				return c.Interval == 500*time.Millisecond && c.RetryInterval == 3*time.Second && c.WriteTimeout == 2*time.Second &&
					c.HookTimeout == 4*time.Second && c.Grammar == channels.Wide && len(c.ExcludeSender) == 2 &&
					c.ExcludeSender[1] == "/game/*" && c.SessionLogRate < 0
			}},
		{name: "server settings from the environment", env: map[string]string{"BAYOU_WRITE_TIMEOUT": "7", "BAYOU_GRAMMAR": "wide"},
			check: func(_ *options, c bayeux.Config) bool {
				return c.WriteTimeout == 7*time.Second && c.Grammar == channels.Wide
			}},
		{name: "server settings from the file", file: `{"hook-timeout": 1.5, "exclude-sender": ["/a/**"], "retry-interval": 2}`,
			check: func(_ *options, c bayeux.Config) bool {
				return c.HookTimeout == 1500*time.Millisecond && len(c.ExcludeSender) == 1 && c.RetryInterval == 2*time.Second
			}},
		{name: "API keys repeated", args: []string{"--api-key", "old", "--api-key", "new,newer"},
			check: func(o *options, _ bayeux.Config) bool { return o.api.keys.String() == "old,new,newer" }},
		{name: "API keys: flags replace the environment", args: []string{"--api-key", "b"}, env: map[string]string{"BAYOU_API_KEY": "a1,a2"},
			check: func(o *options, _ bayeux.Config) bool { return o.api.keys.String() == "b" }},
		{name: "API keys from the environment", env: map[string]string{"BAYOU_API_KEY": "a1,a2"},
			check: func(o *options, _ bayeux.Config) bool { return o.api.keys.String() == "a1,a2" }},
		{name: "API settings from the file", file: `{"api-key": ["k1", "k2"], "api-allow": ["10.0.0.0/8", "192.0.2.1"], "api-max-body": 4096}`,
			check: func(o *options, _ bayeux.Config) bool {
				allow, _ := prefixes("api-allow", o.api.allow)
				return o.api.keys.String() == "k1,k2" && len(allow) == 2 && allow[1].String() == "192.0.2.1/32" && o.api.maxBody == 4096
			}},
		{name: "Redis settings", args: []string{"--redis-node-id", "n1", "--redis-op-timeout", "0.5", "--redis-heartbeat", "1",
			"--redis-node-ttl", "3", "--redis-max-flush-delay", "0.00005", "--redis-history-meta-ttl", "60"},
			check: func(o *options, _ bayeux.Config) bool {
				rc := o.redis.config(nil)
				return rc.NodeID == "n1" && rc.OpTimeout == 500*time.Millisecond && rc.HeartbeatInterval == time.Second &&
					rc.NodeTTL == 3*time.Second && rc.MaxFlushDelay == 50*time.Microsecond && rc.HistoryMetaTTL == time.Minute
			}},
		{name: "lifecycle", args: []string{"--drain-timeout", "30", "--pre-drain", "5", "--health-path", "/ops"},
			check: func(o *options, _ bayeux.Config) bool {
				p := o.lifecycle.probePaths()
				return o.lifecycle.drainTimeout == 30 && o.lifecycle.preDrain == 5 && p[0] == "/ops/healthz" && p[1] == "/ops/readyz"
			}},
		{name: "no probes", args: []string{"--health-path", ""}, check: func(o *options, _ bayeux.Config) bool { return o.lifecycle.healthPath == "" }},
		{name: "log format", env: map[string]string{"BAYOU_LOG_FORMAT": "json"}, check: func(o *options, _ bayeux.Config) bool { return o.log.format == "json" }},

		{name: "BAYOU_VERSION is not --version", env: map[string]string{"BAYOU_VERSION": "1.2.3"},
			check: func(o *options, _ bayeux.Config) bool { return !o.showVersion }},
		{name: "version is no config key", file: `{"version": true}`, wantErr: `unknown setting "version"`},
		{name: "bad grammar", args: []string{"--grammar", "loose"}, wantErr: "--grammar"},
		{name: "zero write timeout", args: []string{"--write-timeout", "0"}, wantErr: "--write-timeout must be positive"},
		{name: "negative interval", args: []string{"--interval", "-1"}, wantErr: "--interval must not be negative"},
		{name: "bad API network", args: []string{"--api-allow", "intranet"}, wantErr: "--api-allow"},
		{name: "zero API body", args: []string{"--api-max-body", "0"}, wantErr: "--api-max-body"},
		{name: "node TTL under the heartbeat", args: []string{"--redis-heartbeat", "5", "--redis-node-ttl", "4"}, wantErr: "--redis-node-ttl"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, wantErr: "--log-format"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantErr: "--log-level"},
		{name: "certificate without key", args: []string{"--tls-cert", "c.pem"}, wantErr: "--tls-key"},
		{name: "API TLS without certificate", args: []string{"--api-tls"}, wantErr: "--api-tls"},
		{name: "probes inside the mount", args: []string{"--health-path", "/bayeux"}, wantErr: "inside --mount"},
		{name: "probes inside another mount", args: []string{"--mount", "/", "--health-path", "/"}, wantErr: "inside --mount"},
		{name: "relative probe path", args: []string{"--health-path", "ops"}, wantErr: "--health-path"},
		{name: "pattern in the probe path", args: []string{"--health-path", "/{x}"}, wantErr: "--health-path"},
		{name: "space in the probe path", args: []string{"--health-path", "/a b"}, wantErr: "--health-path"},
		{name: "zero drain timeout", args: []string{"--drain-timeout", "0"}, wantErr: "--drain-timeout"},
		{name: "negative pre-drain", args: []string{"--pre-drain", "-1"}, wantErr: "--pre-drain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := parseCase(t, tt.args, tt.file, tt.env, tt.wantErr)
			if !ok {
				return
			}
			if !tt.check(o, o.config(nil)) {
				t.Fatalf("options %+v", o)
			}
		})
	}
}

func TestHelpListsOperatorFlags(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseOptions([]string{"--help"}, noEnv, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"--tls-cert (BAYOU_TLS_CERT)", "--api-tls (BAYOU_API_TLS)", "--health-path (BAYOU_HEALTH_PATH)",
		"--drain-timeout (BAYOU_DRAIN_TIMEOUT)", "--pre-drain (BAYOU_PRE_DRAIN)", "--log-format (BAYOU_LOG_FORMAT)",
		"--session-log-rate (BAYOU_SESSION_LOG_RATE)", "--write-timeout (BAYOU_WRITE_TIMEOUT)", "--grammar (BAYOU_GRAMMAR)",
		"--api-allow (BAYOU_API_ALLOW)", "--redis-node-ttl (BAYOU_REDIS_NODE_TTL)", "  --version\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "BAYOU_VERSION") {
		t.Error("--help offers BAYOU_VERSION")
	}
}
