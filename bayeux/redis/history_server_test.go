package redis

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// TestClusterHistory runs three Bayou nodes with history on /cnt/**: a
// client on one node receives what is published through the others with
// consecutive positions in ext, and the Redis commands per published
// message are the same with 10 and with 1,000 subscribers spread over the
// nodes: one EVALSHA, and one PUBLISH per expansion of the channel.
func TestClusterHistory(t *testing.T) {
	rs := startRedis(t)
	withHistory := func(_ int, c *bayeux.Config) {
		c.History = []bayeux.HistoryRule{{Pattern: "/cnt/**", Size: 100, TTL: time.Minute}}
	}
	nodes := startCluster(t, rs, 3, 5*time.Second, withHistory)
	raw := rs.raw()

	// Positions, end to end.
	id := nodes[2].handshake(t)
	if r := nodes[2].mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/cnt/x"}`); !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	const positioned = 20
	for i := range positioned {
		if r := nodes[i%2].mustPost(t, fmt.Sprintf(`{"channel":"/cnt/x","data":%d}`, i)); !r.Get("0.successful").Bool() {
			t.Fatalf("publish: %s", r.Raw)
		}
	}
	var got []gjson.Result
	for end := time.Now().Add(10 * time.Second); len(got) < positioned && time.Now().Before(end); {
		r := nodes[2].mustPost(t, connect(id, `,"advice":{"timeout":200}`))
		r.ForEach(func(_, v gjson.Result) bool {
			if v.Get("channel").String() == "/cnt/x" {
				got = append(got, v)
			}
			return true
		})
	}
	if len(got) != positioned {
		t.Fatalf("received %d of %d publications", len(got), positioned)
	}
	epoch := got[0].Get("ext.epoch").String()
	for i, v := range got {
		if v.Get("data").Int() != int64(i) || v.Get("ext.replayId").Uint() != uint64(i+1) || v.Get("ext.epoch").String() != epoch || epoch == "" {
			t.Fatalf("publication %d: %s (want data %d, replayId %d, epoch %q)", i, v.Raw, i, i+1, epoch)
		}
	}

	// Commands per publish.
	const publishes = 50
	subscribe := func(n int) {
		for i := range n {
			node := nodes[i%len(nodes)]
			id := node.handshake(t)
			if r := node.mustPost(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/cnt/h"}`); !r.Get("0.successful").Bool() {
				t.Fatalf("subscribe: %s", r.Raw)
			}
		}
	}
	measure := func() (publish, evalsha float64) {
		before := commandCalls(t, raw)
		for i := range publishes {
			if r := nodes[i%len(nodes)].mustPost(t, fmt.Sprintf(`{"channel":"/cnt/h","data":%d}`, i)); !r.Get("0.successful").Bool() {
				t.Fatalf("publish: %s", r.Raw)
			}
		}
		after := commandCalls(t, raw)
		return float64(after["publish"]-before["publish"]) / publishes, float64(after["evalsha"]-before["evalsha"]) / publishes
	}
	subscribe(10)
	p10, e10 := measure()
	subscribe(990)
	p1000, e1000 := measure()
	t.Logf("per published message on /cnt/h (history): %.2f PUBLISH and %.2f EVALSHA with 10 subscribers, %.2f and %.2f with 1,000",
		p10, e10, p1000, e1000)
	// /cnt/h expands to /**, /cnt/**, /cnt/* and /cnt/h.
	if p10 != 4 || p1000 != 4 || e10 != 1 || e1000 != 1 {
		t.Fatalf("PUBLISH and EVALSHA per publish: %.2f, %.2f at 10 subscribers, %.2f, %.2f at 1,000; want 4 and 1",
			p10, e10, p1000, e1000)
	}
}
