package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/metrics"
)

// This example serves a Bayeux server and its metrics on one listener; a
// client handshakes, then Prometheus (here http.Get) scrapes /metrics.
func Example() {
	srv, err := bayeux.New(bayeux.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/bayeux", srv)
	mux.Handle("/metrics", metrics.Handler(srv))
	ts := httptest.NewServer(mux) // listens on 127.0.0.1
	defer ts.Close()

	res, err := http.Post(ts.URL+"/bayeux", "application/json",
		strings.NewReader(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`))
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()

	res, err = http.Get(ts.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "bayou_handshakes_total") || strings.HasPrefix(line, "bayou_sessions ") {
			fmt.Println(line)
		}
	}
	// Output:
	// bayou_handshakes_total 1
	// bayou_sessions 1
}

// NewCollector adds the server's metrics to a registry of the
// application's own, beside its other metrics.
func ExampleNewCollector() {
	srv, err := bayeux.New(bayeux.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(srv))
	fams, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "bayou_sessions" {
			fmt.Println(f.GetName(), f.GetType(), f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	// Output:
	// bayou_sessions GAUGE 0
}
