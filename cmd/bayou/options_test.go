package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*options) bool
		wantErr string
	}{
		{name: "defaults", check: func(o *options) bool {
			return o.addr == "127.0.0.1:8000" && o.mount == "/bayeux" && o.timeout == 25 && o.ping == 25 && o.maxMessageSize == 1<<20
		}},
		{name: "environment", env: map[string]string{"BAYOU_ADDR": ":9", "BAYOU_TIMEOUT": "3.5", "BAYOU_ALLOWED_ORIGINS": "http://a, http://b"},
			check: func(o *options) bool {
				return o.addr == ":9" && o.timeout == 3.5 && o.allowedOrigins == "http://a, http://b"
			}},
		{name: "flag beats environment", args: []string{"--addr", ":7"}, env: map[string]string{"BAYOU_ADDR": ":9"},
			check: func(o *options) bool { return o.addr == ":7" }},
		{name: "bad environment value", env: map[string]string{"BAYOU_TIMEOUT": "soon"}, wantErr: "BAYOU_TIMEOUT"},
		{name: "zero timeout", args: []string{"--timeout", "0"}, wantErr: "--timeout"},
		{name: "relative mount", args: []string{"--mount", "faye"}, wantErr: "--mount"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected"},
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
				t.Fatalf("options %+v", o)
			}
		})
	}
}

func TestConfigFromOptions(t *testing.T) {
	o, err := parseOptions([]string{"--ping", "0", "--allowed-origins", "http://a,,http://b "}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c := o.config(nil)
	if c.Ping >= 0 {
		t.Errorf("--ping 0 gives Ping %v, want disabled (negative)", c.Ping)
	}
	if strings.Join(c.AllowedOrigins, "|") != "http://a|http://b" {
		t.Errorf("AllowedOrigins = %q", c.AllowedOrigins)
	}
	if c.Timeout != 25*time.Second {
		t.Errorf("Timeout = %v", c.Timeout)
	}
}

func TestHelpListsEveryFlagWithItsVariable(t *testing.T) {
	var out bytes.Buffer
	_, err := parseOptions([]string{"--help"}, func(string) string { return "" }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"--addr (BAYOU_ADDR)", "--timeout (BAYOU_TIMEOUT)", "--allowed-origins (BAYOU_ALLOWED_ORIGINS)", "--max-message-size (BAYOU_MAX_MESSAGE_SIZE)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunServesAndDrains starts the whole command on free ports (Bayeux
// and the HTTP API), makes a handshake, counts it through the API, and stops
// the command through its context.
func TestRunServesAndDrains(t *testing.T) {
	c := startCommand(t, "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--timeout", "1", "--log-level", "error")
	url, apiURL := c.url(t, "Bayeux"), c.url(t, "the HTTP API")
	res, err := http.Post(url, "application/json", strings.NewReader(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("handshake status %d", res.StatusCode)
	}
	res, err = http.Get(apiURL + "clients")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.TrimSpace(string(body)) != `{"count":1}` {
		t.Fatalf("GET /clients: %d %s", res.StatusCode, body)
	}
	c.stop()
	if err := c.wait(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}
