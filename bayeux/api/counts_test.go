package api_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/api"
	"github.com/bayou-pubsub/bayou/channels"
)

// truth is what the test set up: each client's subscriptions.
type truth map[string][]string

func (tr truth) channels(prefix string) string {
	counts := map[string]int{}
	for _, subs := range tr {
		for _, p := range subs {
			if prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/") {
				counts[p]++
			}
		}
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf(`{"channel":%q,"subscribers":%d}`, p, counts[p]))
	}
	return `{"channels":[` + strings.Join(parts, ",") + `]}`
}

func (tr truth) recipients(ch string) []string {
	ids := []string{}
	for id, subs := range tr {
		if slices.ContainsFunc(subs, func(p string) bool { return channels.Match(p, ch) }) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestCountsMatchTruth sets up 100 clients with varied subscriptions and
// checks every count the API gives against them, before and after
// disconnecting a quarter of the clients through the API.
func TestCountsMatchTruth(t *testing.T) {
	e := newEnv(t, bayeux.Config{}, api.Config{})
	tr := truth{}
	ids := make([]string, 100)
	for i := range ids {
		id := e.handshake(t)
		ids[i] = id
		var subs []string
		if i%20 != 19 { // every twentieth client subscribes to nothing
			subs = append(subs, fmt.Sprintf("/room/%d", i%10))
		}
		if i%3 == 0 {
			subs = append(subs, "/all")
		}
		if i%7 == 0 {
			subs = append(subs, "/room/*")
		}
		if i%11 == 0 {
			subs = append(subs, "/**")
		}
		if i%13 == 0 {
			subs = append(subs, "/room/5/private")
		}
		e.subscribe(t, id, subs...)
		tr[id] = subs
	}

	check := func(stage string) {
		t.Helper()
		if r := e.call(t, "GET", "/clients", ""); r.body.Get("count").Int() != int64(len(tr)) {
			t.Errorf("%s: count %s, want %d", stage, r.body.Raw, len(tr))
		}
		for _, prefix := range []string{"", "/room", "/room/5", "/all", "/none"} {
			target := "/channels"
			if prefix != "" {
				target += "?prefix=" + prefix
			}
			if r, want := e.call(t, "GET", target, ""), tr.channels(prefix); r.body.Raw != want+"\n" {
				t.Errorf("%s: GET %s = %s\nwant %s", stage, target, r.body.Raw, want)
			}
		}
		for _, ch := range []string{"/room/0", "/room/5", "/room/5/private", "/room/9/x", "/all", "/other"} {
			r := e.call(t, "GET", "/clients?channel="+ch, "")
			want := tr.recipients(ch)
			var got []string
			for _, id := range r.body.Get("clients").Array() {
				got = append(got, id.String())
			}
			if r.body.Get("count").Int() != int64(len(want)) || !slices.Equal(got, want) {
				t.Errorf("%s: recipients of %s: count %d, %d ids; want %d", stage, ch, r.body.Get("count").Int(), len(got), len(want))
			}
		}
		for id, subs := range tr {
			r := e.call(t, "GET", "/clients/"+id, "")
			var got []string
			for _, s := range r.body.Get("subscriptions").Array() {
				got = append(got, s.String())
			}
			if want := slices.Sorted(slices.Values(subs)); !slices.Equal(got, want) {
				t.Errorf("%s: %s subscribes to %q, want %q", stage, id, got, want)
			}
		}
	}
	check("set up")

	for i, id := range ids {
		if i%4 != 0 {
			continue
		}
		if r := e.call(t, "DELETE", "/clients/"+id, ""); r.status != 200 {
			t.Fatalf("disconnect %s: %d %s", id, r.status, r.body.Raw)
		}
		delete(tr, id)
	}
	if len(tr) != 75 {
		t.Fatalf("%d clients left", len(tr))
	}
	check("after disconnects")
}
