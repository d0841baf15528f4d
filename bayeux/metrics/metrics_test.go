package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/bayeux/metrics"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// scrape fetches url and parses the text exposition format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: status %d: %s", url, res.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// samples returns the counter and gauge samples of the metrics named
// prefix*, keyed `name{label="value",...}` (labels sorted).
func samples(fams map[string]*dto.MetricFamily, prefix string) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// mismatches returns, sorted, the samples of got that differ from want.
func mismatches(got, want map[string]float64) []string {
	var bad []string
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			bad = append(bad, fmt.Sprintf("%s = %v, want %v (present: %v)", k, g, v, ok))
		}
	}
	sort.Strings(bad)
	return bad
}

// TestScrapeAfterWorkload runs N clients over WebSocket and long-polling
// with the Go client, one over EventSource and one over callback-polling
// in raw HTTP, M publishes and a few errors against a server, then scrapes
// /metrics and finds exactly the expected figures.
func TestScrapeAfterWorkload(t *testing.T) {
	const (
		perTransport = 3 // clients on each of the two transports
		n            = 2 * perTransport
		m            = 10 // publishes
		unknown      = 2  // connects with an unknown clientId
	)
	quiet := slog.New(slog.DiscardHandler)
	srv, err := bayeux.New(bayeux.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/bayeux", srv)
	mux.Handle("/bayeux/", srv) // the EventSource stream is at /bayeux/{clientId}
	mux.Handle("/metrics", metrics.Handler(srv))
	hs := bayeuxtest.Serve(t, mux, srv.Shutdown)
	endpoint, metricsURL := hs.URL+"/bayeux", hs.URL+"/metrics"

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		received = map[int]int{} // client index: messages received
		clients  []*client.Client
	)
	for i := range n {
		tr := client.TransportWebSocket
		if i >= perTransport {
			tr = client.TransportLongPolling
		}
		c, err := client.Dial(ctx, endpoint, client.WithTransports(tr), client.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if c.Transport() != tr {
			t.Fatalf("client %d connected over %s, want %s", i, c.Transport(), tr)
		}
		if _, err := c.Subscribe(ctx, "/room/*", func(*client.Message) {
			mu.Lock()
			received[i]++
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	esID, jsonpID := rawSession(t, endpoint, "eventsource", "/room/*"), rawSession(t, endpoint, "callback-polling", "/room/*")
	es := openEventStream(t, endpoint, esID, "/room/a")
	for k := range m {
		if _, err := clients[k%n].Publish(ctx, "/room/a", map[string]int{"k": k}); err != nil {
			t.Fatal(err)
		}
	}
	var cerr *client.Error
	if _, err := clients[0].Publish(ctx, "/room/*", 1); !errors.As(err, &cerr) || cerr.Code != 405 {
		t.Fatalf("publishing to a pattern: %v, want a 405 error", err)
	}
	for range unknown {
		r := bayeuxtest.MustPost(t, endpoint, `{"channel":"/meta/connect","clientId":"nobody","connectionType":"long-polling"}`)
		if !strings.HasPrefix(r.Get("0.error").String(), "401:") {
			t.Fatalf("unknown client: %s", r.Raw)
		}
	}
	bayeuxtest.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			if received[i] < m {
				return false
			}
		}
		return es.messages.Load() >= m
	}, "every client received every message")
	jsonpBody, jsonpGot := jsonpConnect(t, endpoint, jsonpID, "/room/a")
	if jsonpGot != m {
		t.Fatalf("the callback-polling client got %d messages, want %d", jsonpGot, m)
	}
	const all = n + 2 // the Go clients, the EventSource and the JSONP client

	want := map[string]float64{
		`bayou_sessions`:                                          all,
		`bayou_subscriptions`:                                     all,
		`bayou_channels`:                                          1,
		`bayou_connections{transport="websocket"}`:                perTransport,
		`bayou_connections{transport="eventsource"}`:              1,
		`bayou_connections{transport="callback-polling"}`:         0,
		`bayou_handshakes_total`:                                  all,
		`bayou_publishes_total`:                                   m,
		`bayou_messages_received_total{type="handshake"}`:         all,
		`bayou_messages_received_total{type="subscribe"}`:         all,
		`bayou_messages_received_total{type="unsubscribe"}`:       0,
		`bayou_messages_received_total{type="disconnect"}`:        0,
		`bayou_messages_received_total{type="publish"}`:           m + 1,
		`bayou_deliveries_total{transport="websocket"}`:           perTransport * m,
		`bayou_deliveries_total{transport="long-polling"}`:        perTransport * m,
		`bayou_deliveries_total{transport="eventsource"}`:         m,
		`bayou_deliveries_total{transport="callback-polling"}`:    m,
		`bayou_errors_total{code="405"}`:                          1,
		`bayou_errors_total{code="401"}`:                          unknown,
		`bayou_sessions_ended_total{reason="slow_consumer"}`:      0,
		`bayou_queued_bytes`:                                      0,
		`bayou_written_bytes_total{transport="callback-polling"}`: float64(len(jsonpBody)),
	}
	// A delivery is counted once its write returned, which may be just
	// after the client saw it: wait for the figures to settle.
	var got map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = samples(scrape(t, metricsURL), "bayou_")
		if len(mismatches(got, want)) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, bad := range mismatches(got, want) {
		t.Error(bad)
	}
	for k := range got {
		if strings.HasPrefix(k, "bayou_errors_total") && !strings.Contains(k, `"405"`) && !strings.Contains(k, `"401"`) {
			t.Errorf("unexpected %s = %v", k, got[k])
		}
	}
	if c := got[`bayou_messages_received_total{type="connect"}`]; c < n {
		t.Errorf("%v connects received, want at least %d", c, n)
	}
	for _, tr := range []string{"websocket", "long-polling", "eventsource"} {
		if b := got[`bayou_written_bytes_total{transport="`+tr+`"}`]; b < m*20 {
			t.Errorf("%v bytes written over %s", b, tr)
		}
	}
	if _, ok := got["bayou_engine_nodes"]; ok {
		t.Error("the memory engine has engine metrics")
	}
	fams := scrape(t, metricsURL)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}

	for _, c := range clients {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rawDisconnect(t, endpoint, esID)
	rawDisconnect(t, endpoint, jsonpID)
	bayeuxtest.Eventually(t, 10*time.Second, func() bool {
		got := samples(scrape(t, metricsURL), "bayou_")
		return len(mismatches(got, map[string]float64{
			`bayou_sessions`: 0,
			`bayou_connections{transport="websocket"}`:         0,
			`bayou_connections{transport="eventsource"}`:       0,
			`bayou_sessions_ended_total{reason="disconnect"}`:  all,
			`bayou_messages_received_total{type="disconnect"}`: all,
			`bayou_subscriptions`:                              0,
			`bayou_channels`:                                   0,
		})) == 0
	}, "every client disconnected and counted")
}

// TestHandlerOptions checks what Handler serves with its options, and that
// HELP texts and types are given.
func TestHandlerOptions(t *testing.T) {
	srv, err := bayeux.New(bayeux.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	tests := []struct {
		name    string
		opts    []metrics.Option
		runtime bool
	}{
		{"default", nil, true},
		{"without runtime", []metrics.Option{metrics.WithoutRuntime()}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(metrics.Handler(srv, tc.opts...))
			defer hs.Close()
			fams := scrape(t, hs.URL)
			if (fams["go_goroutines"] != nil) != tc.runtime {
				t.Errorf("go_goroutines served: %v, want %v", fams["go_goroutines"] != nil, tc.runtime)
			}
			for name, f := range fams {
				if !strings.HasPrefix(name, "bayou_") {
					continue
				}
				if f.GetHelp() == "" {
					t.Errorf("%s has no HELP", name)
				}
				counter := f.GetType() == dto.MetricType_COUNTER
				if counter != strings.HasSuffix(name, "_total") {
					t.Errorf("%s is a %v", name, f.GetType())
				}
			}
			if fams["bayou_sessions"] == nil || fams["bayou_deliveries_total"] == nil {
				t.Error("the server's metrics are missing")
			}
		})
	}
}

// reportingEngine is a memory engine that reports figures, as the Redis
// engine does.
type reportingEngine struct {
	bayeux.Engine
	figures bayeux.EngineStats
}

func (e *reportingEngine) EngineStats() bayeux.EngineStats { return e.figures }

// TestEngineMetrics: an engine's figures become the bayou_engine_ metrics.
func TestEngineMetrics(t *testing.T) {
	e := &reportingEngine{Engine: bayeux.NewMemoryEngine(),
		figures: bayeux.EngineStats{RoundTrips: 12, Commands: 30, Errors: 2, Reconnects: 1, Nodes: 3}}
	srv, err := bayeux.New(bayeux.Config{Engine: e, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	hs := httptest.NewServer(metrics.Handler(srv, metrics.WithoutRuntime()))
	defer hs.Close()
	got := samples(scrape(t, hs.URL), "bayou_engine_")
	want := map[string]float64{
		"bayou_engine_round_trips_total": 12,
		"bayou_engine_commands_total":    30,
		"bayou_engine_errors_total":      2,
		"bayou_engine_reconnects_total":  1,
		"bayou_engine_nodes":             3,
	}
	for _, bad := range mismatches(got, want) {
		t.Error(bad)
	}
}
