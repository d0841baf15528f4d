package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
)

func TestHistoryOptions(t *testing.T) {
	type rules = []bayeux.HistoryRule
	chat := bayeux.HistoryRule{Pattern: "/chat/**", Size: 100, TTL: 10 * time.Minute}
	news := bayeux.HistoryRule{Pattern: "/news/*", Size: 20}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string // config file contents, if any
		want    rules
		check   func(c bayeux.Config) bool // more checks, if any
		wantErr string
	}{
		{name: "defaults", check: func(c bayeux.Config) bool {
			return c.HistoryMaxBytes == 64<<20 && c.ReplayLost == bayeux.ReplayLostError && !c.NoAck && !c.ForwardExt
		}},
		{name: "one flag", args: []string{"--history", "/chat/**=100:10m"}, want: rules{chat}},
		{name: "repeated flags keep their order", args: []string{"--history", "/chat/**=100:10m", "--history", "/news/*=20"},
			want: rules{chat, news}},
		{name: "commas in one flag", args: []string{"--history", " /chat/**=100:10m , /news/*=20,"}, want: rules{chat, news}},
		{name: "a channel name", args: []string{"--history", "/topic/x=1:1.5s"},
			want: rules{{Pattern: "/topic/x", Size: 1, TTL: 1500 * time.Millisecond}}},
		{name: "environment", env: map[string]string{"BAYOU_HISTORY": "/chat/**=100:10m,/news/*=20"}, want: rules{chat, news}},
		{name: "flags replace the environment", args: []string{"--history", "/news/*=20"},
			env: map[string]string{"BAYOU_HISTORY": "/chat/**=100:10m"}, want: rules{news}},
		{name: "config file", file: `{"history": [{"pattern": "/chat/**", "size": 100, "ttl": "10m"}, {"pattern": "/news/*", "size": 20}]}`,
			want: rules{chat, news}},
		{name: "config file strings", file: `{"history": ["/chat/**=100:10m", "/news/*=20"]}`, want: rules{chat, news}},
		{name: "environment beats the file", env: map[string]string{"BAYOU_HISTORY": "/news/*=20"},
			file: `{"history": [{"pattern": "/chat/**", "size": 100}]}`, want: rules{news}},
		{name: "other settings by flag", args: []string{"--history-max-bytes", "1024", "--replay-lost", "report", "--no-ack", "--forward-ext"},
			check: func(c bayeux.Config) bool {
				return c.HistoryMaxBytes == 1024 && c.ReplayLost == bayeux.ReplayLostReport && c.NoAck && c.ForwardExt
			}},
		{name: "other settings by environment",
			env: map[string]string{"BAYOU_HISTORY_MAX_BYTES": "2048", "BAYOU_REPLAY_LOST": "report", "BAYOU_NO_ACK": "true"},
			check: func(c bayeux.Config) bool {
				return c.HistoryMaxBytes == 2048 && c.ReplayLost == bayeux.ReplayLostReport && c.NoAck
			}},
		{name: "other settings by file", file: `{"history-max-bytes": 4096, "replay-lost": "report", "no-ack": true}`,
			check: func(c bayeux.Config) bool {
				return c.HistoryMaxBytes == 4096 && c.ReplayLost == bayeux.ReplayLostReport && c.NoAck
			}},

		{name: "no size", args: []string{"--history", "/chat/**"}, wantErr: "want PATTERN=SIZE[:TTL]"},
		{name: "empty", args: []string{"--history", ","}, wantErr: "got nothing"},
		{name: "zero size", args: []string{"--history", "/chat/**=0"}, wantErr: "size must be at least 1"},
		{name: "negative size", args: []string{"--history", "/chat/**=-3"}, wantErr: "size must be at least 1"},
		{name: "size not a number", args: []string{"--history", "/chat/**=many"}, wantErr: `size "many" is not a whole number`},
		{name: "bad duration", args: []string{"--history", "/chat/**=10:10 minutes"}, wantErr: `ttl "10 minutes" is not a duration`},
		{name: "negative duration", args: []string{"--history", "/chat/**=10:-1s"}, wantErr: "ttl must not be negative"},
		{name: "bad pattern", args: []string{"--history", "chat=10"}, wantErr: `"chat" is not a channel name or pattern`},
		{name: "wildcard inside", args: []string{"--history", "/a/*/b=10"}, wantErr: "is not a channel name or pattern"},
		{name: "meta channel", args: []string{"--history", "/meta/**=10"}, wantErr: "outside /meta and /service"},
		{name: "service channel", args: []string{"--history", "/service/x=10"}, wantErr: "outside /meta and /service"},
		{name: "bad environment rule", env: map[string]string{"BAYOU_HISTORY": "/chat/**=100,/news/*"}, wantErr: "BAYOU_HISTORY"},
		{name: "file: zero size", file: `{"history": [{"pattern": "/chat/**", "size": 0}]}`, wantErr: "item 0: history rule \"/chat/**\": size must be at least 1"},
		{name: "file: bad ttl", file: `{"history": [{"pattern": "/chat/**", "size": 1, "ttl": "soon"}]}`, wantErr: `ttl "soon" is not a duration`},
		{name: "file: ttl as a number", file: `{"history": [{"pattern": "/chat/**", "size": 1, "ttl": 600}]}`, wantErr: "history: item 0"},
		{name: "file: unknown key", file: `{"history": [{"pattern": "/chat/**", "size": 1, "max": 3}]}`, wantErr: `unknown field "max"`},
		{name: "file: not an array", file: `{"history": {"pattern": "/chat/**"}}`, wantErr: "want an array"},
		{name: "replay-lost", args: []string{"--replay-lost", "ignore"}, wantErr: "--replay-lost must be error or report"},
		{name: "history-max-bytes", args: []string{"--history-max-bytes", "0"}, wantErr: "--history-max-bytes must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := parseCase(t, tt.args, tt.file, tt.env, tt.wantErr)
			if !ok {
				return
			}
			c := o.config(nil)
			if len(c.History) != 0 || len(tt.want) != 0 {
				if !reflect.DeepEqual(c.History, tt.want) {
					t.Errorf("History = %+v, want %+v", c.History, tt.want)
				}
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

// TestHistoryRulesString checks that the flag's text form parses back to
// the same rules, as flag.PrintDefaults and the logs show it.
func TestHistoryRulesString(t *testing.T) {
	var r historyRules
	for _, s := range []string{"/chat/**=100:10m0s", "/news/*=20", "/a=1:1.5s"} {
		if err := r.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	text := r.String()
	if text != "/chat/**=100:10m0s,/news/*=20,/a=1:1.5s" {
		t.Fatalf("String() = %q", text)
	}
	var back historyRules
	if err := back.Set(text); err != nil || !reflect.DeepEqual(back.list, r.list) {
		t.Fatalf("Set(String()) = %+v, %v; want %+v", back.list, err, r.list)
	}
}

func TestHelpShowsHistory(t *testing.T) {
	var out bytes.Buffer
	_, _ = parseOptions([]string{"--help"}, func(string) string { return "" }, &out)
	for _, want := range []string{"--history (BAYOU_HISTORY)", "PATTERN=SIZE[:TTL]", `"history": [{"pattern"`,
		"--history-max-bytes (BAYOU_HISTORY_MAX_BYTES)", "--replay-lost (BAYOU_REPLAY_LOST)", "--no-ack (BAYOU_NO_ACK)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}
