package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/extensions/acl"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const sampleConfig = `{
  "addr": "127.0.0.1:9100",
  "timeout": 7.5,
  "ping": 0,
  "auth": "token",
  "token-secret": "from-file",
  "protect": ["/private/**", "/admin"],
  "require-handshake": true,
  "api-addr": "127.0.0.1:9101",
  "api-key": "k",
  "acl": {"default": "identified", "rules": [
    {"pattern": "/users/{sub}/**", "subscribe": "identified", "publish": "identified"},
    {"pattern": "/news/*", "subscribe": "anyone", "publish": "role:editor"}
  ]}
}`

func TestConfigFile(t *testing.T) {
	path := writeFile(t, "bayou.json", sampleConfig)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*options) bool
		wantErr string
	}{
		{name: "values from the file", args: []string{"--config", path}, check: func(o *options) bool {
			return o.addr == "127.0.0.1:9100" && o.timeout == 7.5 && o.ping == 0 && o.auth.mode == "token" &&
				o.auth.tokenSecret == "from-file" && o.auth.protect == "/private/**,/admin" && o.auth.requireHandshake &&
				o.api.addr == "127.0.0.1:9101" && o.api.keys.String() == "k" && o.mount == "/bayeux"
		}},
		{name: "file named by the environment", env: map[string]string{"BAYOU_CONFIG": path},
			check: func(o *options) bool { return o.addr == "127.0.0.1:9100" }},
		{name: "environment beats the file", args: []string{"--config", path}, env: map[string]string{"BAYOU_TOKEN_SECRET": "from-env"},
			check: func(o *options) bool { return o.auth.tokenSecret == "from-env" && o.addr == "127.0.0.1:9100" }},
		{name: "flag beats the environment and the file", args: []string{"--config", path, "--token-secret", "from-flag", "--require-handshake=false"},
			env:   map[string]string{"BAYOU_TOKEN_SECRET": "from-env"},
			check: func(o *options) bool { return o.auth.tokenSecret == "from-flag" && !o.auth.requireHandshake }},
		{name: "ACL rules", args: []string{"--config", path}, check: func(o *options) bool {
			return o.acl != nil && o.acl.Default == acl.Identified && len(o.acl.Rules) == 2 &&
				o.acl.Rules[0] == acl.Rule{Pattern: "/users/{sub}/**", Subscribe: "identified", Publish: "identified"}
		}},
		{name: "missing file", args: []string{"--config", path + ".nope"}, wantErr: "--config"},
		{name: "unknown key", args: []string{"--config", writeFile(t, "u.json", `{"adress": ":1"}`)}, wantErr: `unknown setting "adress"`},
		{name: "nested config", args: []string{"--config", writeFile(t, "n.json", `{"config": "other.json"}`)}, wantErr: `unknown setting "config"`},
		{name: "not JSON", args: []string{"--config", writeFile(t, "y.yaml", "addr: :1\n")}, wantErr: "--config"},
		{name: "bad value type", args: []string{"--config", writeFile(t, "v.json", `{"timeout": {"s": 1}}`)}, wantErr: "timeout"},
		{name: "bad value", args: []string{"--config", writeFile(t, "b.json", `{"timeout": "soon"}`)}, wantErr: "timeout"},
		{name: "invalid value from the file is validated", args: []string{"--config", writeFile(t, "z.json", `{"timeout": 0}`)}, wantErr: "--timeout"},
		{name: "unknown ACL field", args: []string{"--config", writeFile(t, "a.json", `{"acl": {"rulez": []}}`)}, wantErr: "acl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, func(k string) string { return tt.env[k] }, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(o) {
				t.Fatalf("options %+v (auth %+v, acl %+v)", o, o.auth, o.acl)
			}
		})
	}
}

func TestFlagText(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{`"s"`, "s", true},
		{`12.50`, "12.50", true},
		{`true`, "true", true},
		{`false`, "false", true},
		{`["/a/**", "/b"]`, "/a/**,/b", true},
		{`[]`, "", true},
		{`["a,b"]`, "", false},
		{`[1]`, "", false},
		{`null`, "", false},
		{`{}`, "", false},
	}
	for _, tt := range tests {
		got, err := flagText([]byte(tt.raw))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("flagText(%s) = %q, %v", tt.raw, got, err)
		}
	}
}
