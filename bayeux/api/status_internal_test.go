package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// TestStatusEscapesHostileNames feeds channel names carrying markup
// straight to the status answer (the server's grammar refuses them, but
// the page must not depend on it): the JSON holds no < > &, and decodes
// back to the exact names.
func TestStatusEscapesHostileNames(t *testing.T) {
	hostile := []string{"/a/<script>", `/b/"><img src=x onerror=alert(1)>`, "/c/&amp;"}
	counts := map[string]int{}
	for i, name := range hostile {
		counts[name] = i + 1
	}
	st := buildStatus(bayeux.Stats{Errors: map[int]uint64{403: 2}}, 3, counts, "")
	rec := httptest.NewRecorder()
	writeEscapedJSON(rec, st)
	body := rec.Body.String()
	if strings.ContainsAny(body, "<>&") {
		t.Fatalf("unescaped markup: %s", body)
	}
	var back struct {
		TopChannels []channelCount `json:"topChannels"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.TopChannels) != 3 {
		t.Fatalf("top channels %+v", back.TopChannels)
	}
	for i, c := range back.TopChannels {
		if want := hostile[2-i]; c.Channel != want || c.Subscribers != 3-i {
			t.Errorf("top %d = %+v, want %q with %d", i, c, want, 3-i)
		}
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", rec.Header())
	}
}
