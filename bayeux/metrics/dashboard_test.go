package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bayou-pubsub/bayou/bayeux/metrics"
)

// TestDashboardNamesExist keeps deploy/grafana-dashboard.json in step with
// the collector: every bayou_ metric a panel queries is one the collector
// describes, and every panel has a query.
func TestDashboardNamesExist(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	described := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		metrics.NewCollector(nil).Describe(ch)
		close(ch)
	}()
	nameOf := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		described[nameOf.FindStringSubmatch(d.String())[1]] = true
	}
	used := regexp.MustCompile(`\bbayou_[a-z_]+`)
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range used.FindAllString(tg.Expr, -1) {
				seen[name] = true
				if !described[name] {
					t.Errorf("panel %q queries %s, which the collector does not export", p.Title, name)
				}
			}
		}
	}
	for _, name := range []string{"bayou_connections", "bayou_sessions", "bayou_messages_received_total",
		"bayou_deliveries_total", "bayou_errors_total", "bayou_sessions_ended_total", "bayou_engine_round_trips_total"} {
		if !seen[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}
