package redis

// The background work of a node in Redis: its count reports and the
// renewal of its session claims.

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"
)

// TestCountReportsWriteWhatChanged: a node with 1,000 patterns writes its
// report whole once; an unchanged report then costs a PEXPIRE only, a
// changed one an HSET and an HDEL of the fields concerned; a report whose
// hash was lost is written whole again.
func TestCountReportsWriteWhatChanged(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	n := newNode(t, srv, "w1")
	raw := srv.raw()
	subs := make(map[string]int, 1000)
	for i := range 1000 {
		subs[fmt.Sprintf("/users/%d", i)] = 1
	}
	check := func(step string, sessions int, want map[string]int) {
		t.Helper()
		s, got, err := n.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s != sessions || !maps.Equal(got, want) {
			t.Fatalf("%s: counts %d and %d patterns, want %d and %d", step, s, len(got), sessions, len(want))
		}
	}
	report := func(step string, sessions int, subs map[string]int) map[string]int64 {
		t.Helper()
		before := commandCalls(t, raw)
		if err := n.ReportCounts(ctx, sessions, subs); err != nil {
			t.Fatal(err)
		}
		after := commandCalls(t, raw)
		diff := map[string]int64{}
		for _, cmd := range []string{"hset", "hdel", "del", "pexpire", "exec"} {
			if d := after[cmd] - before[cmd]; d != 0 {
				diff[cmd] = d
			}
		}
		check(step, sessions, subs)
		return diff
	}

	if d := report("first", 1000, subs); d["exec"] != 1 || d["hset"] != 1 {
		t.Errorf("first report: %v, want it written whole (MULTI ... EXEC)", d)
	}
	if d := report("unchanged", 1000, subs); !maps.Equal(d, map[string]int64{"pexpire": 1}) {
		t.Errorf("unchanged report: %v, want one PEXPIRE", d)
	}
	delete(subs, "/users/7")
	subs["/users/8"] = 2
	if d := report("changed", 999, subs); !maps.Equal(d, map[string]int64{"pexpire": 2, "hset": 1, "hdel": 1}) {
		t.Errorf("changed report: %v, want PEXPIRE, HSET, HDEL, PEXPIRE", d)
	}
	if err := raw.Do(ctx, raw.B().Del().Key("bayou:counts:w1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if d := report("lost", 999, subs); d["exec"] != 1 {
		t.Errorf("report after the hash was lost: %v, want it written whole", d)
	}
}

// TestClaimSessions extends claims in one call; a session released before
// is not claimed again.
func TestClaimSessions(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	n := newNode(t, srv, "k1")
	raw := srv.raw()
	ids := []string{"s1", "s2", "s3"}
	for _, id := range ids {
		if err := n.ClaimSession(ctx, id, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.ReleaseSession(ctx, "s3"); err != nil {
		t.Fatal(err)
	}
	before := commandCalls(t, raw)["set"]
	if err := n.ClaimSessions(ctx, ids, time.Minute); err != nil {
		t.Fatal(err)
	}
	if sets := commandCalls(t, raw)["set"] - before; sets != 2 {
		t.Errorf("%d SETs, want 2 (s3 was released)", sets)
	}
	for _, tt := range []struct {
		id     string
		minTTL time.Duration // 0: no key
	}{{"s1", 50 * time.Second}, {"s2", 50 * time.Second}, {"s3", 0}} {
		ms, err := raw.Do(ctx, raw.B().Pttl().Key("bayou:sess:"+tt.id).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Duration(ms) * time.Millisecond; (tt.minTTL == 0 && ms != -2) || (tt.minTTL > 0 && got < tt.minTTL) {
			t.Errorf("%s: PTTL %d ms, want at least %v (or no key)", tt.id, ms, tt.minTTL)
		}
	}
}
