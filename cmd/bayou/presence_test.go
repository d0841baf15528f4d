package main

import (
	"log/slog"
	"strings"
	"testing"
)

func TestPresenceOptions(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		tracks  string // a channel the extension must track; "" for no extension
		wantErr string
	}{
		{name: "off by default"},
		{name: "flag", args: []string{"--presence", "/chat/*,/rooms/**"}, tracks: "/rooms/a/b"},
		{name: "environment", env: map[string]string{"BAYOU_PRESENCE": "/chat/*"}, tracks: "/chat/x"},
		{name: "config file", file: `{"presence": ["/chat/*"], "presence-prefix": "/who"}`, tracks: "/chat/x"},
		{name: "bad pattern", args: []string{"--presence", "/meta/*"}, wantErr: "--presence"},
		{name: "bad prefix", args: []string{"--presence", "/chat/*", "--presence-prefix", "/service/x"}, wantErr: "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := parseCase(t, tt.args, tt.file, tt.env, "")
			if !ok {
				return
			}
			p, err := o.presence.extension(quiet)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			switch {
			case err != nil:
				t.Fatal(err)
			case tt.tracks == "" && p != nil:
				t.Fatal("presence on without --presence")
			case tt.tracks != "" && (p == nil || !p.Tracks(tt.tracks)):
				t.Fatalf("presence does not track %s", tt.tracks)
			}
		})
	}
}
