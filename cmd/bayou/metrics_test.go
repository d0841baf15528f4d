package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestMetricsFlag: --metrics-addr (or BAYOU_METRICS_ADDR, or the config
// key) sets the address.
func TestMetricsFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"default off", nil, nil, ""},
		{"flag", []string{"--metrics-addr", "127.0.0.1:9100"}, nil, "127.0.0.1:9100"},
		{"env", nil, map[string]string{"BAYOU_METRICS_ADDR": ":9101"}, ":9101"},
		{"flag wins", []string{"--metrics-addr", ":9102"}, map[string]string{"BAYOU_METRICS_ADDR": ":9101"}, ":9102"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.metricsAddr != tc.want {
				t.Errorf("metricsAddr %q, want %q", o.metricsAddr, tc.want)
			}
		})
	}
}

// TestRunServesMetrics starts the command with --metrics-addr and an API
// with a key: after a handshake both listeners serve /metrics (without the
// key) counting it, and the rest of the API still wants the key.
func TestRunServesMetrics(t *testing.T) {
	c := startCommand(t, "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--api-key", "k",
		"--metrics-addr", "127.0.0.1:0", "--timeout", "1", "--log-level", "error")
	urlOf := func(what string) string { return c.url(t, what) }
	bayeuxURL, apiURL, metricsURL := urlOf("Bayeux"), urlOf("the HTTP API"), urlOf("metrics")
	if !strings.HasSuffix(metricsURL, "/metrics") {
		t.Errorf("metrics served at %s", metricsURL)
	}
	if r := post(t, bayeuxURL, handshakeBody("")); r["successful"] != true {
		t.Fatalf("handshake: %v", r)
	}
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, url := range []string{metricsURL, apiURL + "metrics"} {
		status, body := get(url)
		if status != http.StatusOK || !regexp.MustCompile(`(?m)^bayou_handshakes_total 1$`).MatchString(body) ||
			!strings.Contains(body, "# HELP bayou_sessions ") || !strings.Contains(body, "go_goroutines") {
			t.Errorf("GET %s: %d\n%.600s", url, status, body)
		}
	}
	if status, _ := get(apiURL + "clients"); status != http.StatusUnauthorized {
		t.Errorf("GET /clients without the key: %d, want 401", status)
	}
	if status, _ := get(strings.TrimSuffix(metricsURL, "/metrics") + "/other"); status != http.StatusNotFound {
		t.Errorf("the metrics listener served /other: %d", status)
	}
}
