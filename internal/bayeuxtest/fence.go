package bayeuxtest

import (
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// UntilFence calls connect (an immediate /meta/connect of one client,
// returning its reply array) until a message on channel whose data is
// "fence" arrives, within the given time, and returns the data of the
// messages received on channel, fence included. A connect that fails fails
// t.
func UntilFence(t testing.TB, within time.Duration, connect func() gjson.Result, channel string) []string {
	t.Helper()
	var got []string
	Eventually(t, within, func() bool {
		r := connect()
		if !r.Get("0.successful").Bool() {
			t.Fatalf("connect: %s", r.Raw)
		}
		fence := false
		r.ForEach(func(_, v gjson.Result) bool {
			if v.Get("channel").String() == channel {
				got = append(got, v.Get("data").String())
				fence = fence || v.Get("data").String() == "fence"
			}
			return true
		})
		return fence
	}, "the fence on "+channel)
	return got
}
