package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
)

func TestLimitOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		file    string // config file contents, if any
		check   func(c bayeux.Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c bayeux.Config) bool {
			return c.MaxBatch == 100 && c.MaxNesting == 64 && c.MaxChannelLength == 1024 && c.MaxChannelSegments == 64 &&
				c.MaxSubscriptions == 1024 && c.BodyTimeout == 30*time.Second && c.SocketSessionTimeout == 10*time.Second &&
				c.MaxConnectionsPerIP == 0 && c.HandshakeRate == 0 && c.PublishRate == 0 && c.TrustedProxies == nil
		}},
		{name: "flags", args: []string{"--max-batch", "10", "--max-subscriptions", "5", "--body-timeout", "1.5",
			"--handshake-rate", "20", "--handshake-burst", "40", "--publish-rate", "0.5", "--max-connections-per-ip", "100",
			"--trusted-proxies", "10.0.0.0/8, 127.0.0.1"},
			check: func(c bayeux.Config) bool {
				return c.MaxBatch == 10 && c.MaxSubscriptions == 5 && c.BodyTimeout == 1500*time.Millisecond &&
					c.HandshakeRate == 20 && c.HandshakeBurst == 40 && c.PublishRate == 0.5 && c.MaxConnectionsPerIP == 100 &&
					len(c.TrustedProxies) == 2 && c.TrustedProxies[1].String() == "127.0.0.1/32"
			}},
		{name: "config file", file: `{"max-channel-length": 200, "trusted-proxies": ["192.168.0.0/16"], "socket-session-timeout": 3}`,
			check: func(c bayeux.Config) bool {
				return c.MaxChannelLength == 200 && len(c.TrustedProxies) == 1 && c.SocketSessionTimeout == 3*time.Second
			}},
		{name: "zero batch", args: []string{"--max-batch", "0"}, wantErr: "--max-batch must be positive"},
		{name: "negative rate", args: []string{"--publish-rate", "-1"}, wantErr: "--publish-rate must not be negative"},
		{name: "bad proxy", args: []string{"--trusted-proxies", "proxy.example"}, wantErr: "--trusted-proxies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := parseCase(t, tt.args, tt.file, nil, tt.wantErr)
			if !ok {
				return
			}
			if c := o.config(nil); !tt.check(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

// parseCase parses the options of a table case: args, plus file as a
// --config file when not empty, with env as the environment. With wantErr
// set it checks that parsing fails with an error mentioning it and reports
// false; otherwise parsing must succeed.
func parseCase(t *testing.T, args []string, file string, env map[string]string, wantErr string) (*options, bool) {
	t.Helper()
	if file != "" {
		path := filepath.Join(t.TempDir(), "bayou.json")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	o, err := parseOptions(args, func(k string) string { return env[k] }, &bytes.Buffer{})
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want one mentioning %q", err, wantErr)
		}
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return o, true
}
