package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// keepAll is a history rule that keeps every publication of a test.
var keepAll = &bayeux.HistoryRule{Pattern: "/**", Size: 100_000, TTL: time.Minute}

// publishHistory publishes msg on channel from n under rule.
func (n *testNode) publishHistory(tb testing.TB, channel, msg string, rule *bayeux.HistoryRule) {
	tb.Helper()
	if err := n.Publish(context.Background(), &bayeux.Publication{Channel: channel, Message: []byte(msg), History: rule}); err != nil {
		tb.Fatalf("%s: publish %s: %v", n.NodeID(), channel, err)
	}
}

// publishSilently appends msg to channel's history the way Publish does,
// but publishes it to no pub/sub channel: every node misses it, as if
// Redis pub/sub had dropped it.
func (n *testNode) publishSilently(tb testing.TB, channel, msg string, rule *bayeux.HistoryRule) {
	tb.Helper()
	keep, metaKeep := n.lifetimes(rule.TTL)
	head := appendHistoryHead(nil, channel, "", keep)
	args := []string{strconv.Itoa(rule.Size), strconv.FormatInt(millis(keep), 10), strconv.FormatInt(millis(metaKeep), 10),
		newEpoch(), string(head), msg, ""}
	keys := []string{n.keys.hmeta + channel, n.keys.hist + channel}
	if err := n.hist.publish.Exec(context.Background(), n.client, keys, args).Error(); err != nil {
		tb.Fatal(err)
	}
}

// historyTail is what publishScript appends to the head of a payload.
func historyTail(offset uint64, epoch string) string {
	o := strconv.FormatUint(offset, 10)
	return string(rune(len(o))) + o + string(rune(len(epoch))) + epoch
}

// offsets returns the offsets of the publications on channel.
func offsets(ps []*bayeux.Publication, channel string) []uint64 {
	var out []uint64
	for _, p := range ps {
		if p.Channel == channel {
			out = append(out, p.Position.Offset)
		}
	}
	return out
}

// checkRun fails tb unless offs is first, first+1, …, first+len-1.
func checkRun(tb testing.TB, what string, offs []uint64, first uint64) {
	tb.Helper()
	for i, o := range offs {
		if o != first+uint64(i) {
			tb.Fatalf("%s: offset #%d is %d, want %d (offsets %v)", what, i, o, first+uint64(i), offs[max(0, i-5):min(len(offs), i+5)])
		}
	}
}

func TestHistoryHeaderRoundTrip(t *testing.T) {
	tests := []historyHeader{
		{channel: "/a", keep: time.Millisecond, pos: bayeux.Position{Offset: 1, Epoch: "e"}},
		{channel: "/a/b/c", exclude: "client-1", keep: 24 * time.Hour, pos: bayeux.Position{Offset: math.MaxUint64, Epoch: strings.Repeat("z", 100)}},
		{channel: "/" + strings.Repeat("c", 500), exclude: strings.Repeat("x", 200), keep: 90 * time.Second, pos: bayeux.Position{Offset: 300, Epoch: "3w5e11264sgsg"}},
	}
	for _, h := range tests {
		for _, msg := range []string{"", `{"data":1}`} {
			payload := string(appendHistoryHead(nil, h.channel, h.exclude, h.keep)) + historyTail(h.pos.Offset, h.pos.Epoch) + msg
			got, gotMsg, err := decodeHistoryHeader(payload)
			if err != nil {
				t.Fatalf("%+v: %v", h, err)
			}
			if got != h || gotMsg != msg {
				t.Errorf("decoded %+v %q, want %+v %q", got, gotMsg, h, msg)
			}
			hdrLen := len(payload) - len(msg)
			for cut := range hdrLen {
				if _, _, err := decodeHistoryHeader(payload[:cut]); err == nil {
					t.Errorf("%+v: truncated at %d decoded", h, cut)
				}
			}
		}
	}
	head := string(appendHistoryHead(nil, "/a", "", time.Second))
	for name, payload := range map[string]string{
		"offset 0":            head + historyTail(0, "e"),
		"offset not a number": head + "\x02x1\x01e",
		"empty epoch":         head + historyTail(1, ""),
		"version 1":           "\x01" + head[1:] + historyTail(1, "e"),
	} {
		if _, _, err := decodeHistoryHeader(payload); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, _, err := decodeHeader(head + historyTail(1, "e")); err == nil {
		t.Error("a history payload decoded as a plain one")
	}
}

// TestHistoryPositions checks that offsets grow by one per channel, in
// one epoch, whoever publishes, and that a node listening to the channel
// through two patterns gets each publication once, in offset order, with
// its message unchanged.
func TestHistoryPositions(t *testing.T) {
	const perPublisher = 300
	srv := startRedis(t)
	a := newNode(t, srv, "a")
	b := newNode(t, srv, "b")
	b.mustSubscribe(t, "/h/**", "/h/a")
	type stream struct {
		from    *testNode
		channel string
	}
	streams := []stream{{a, "/h/a"}, {b, "/h/a"}, {a, "/h/b"}}
	var wg sync.WaitGroup
	errs := make(chan error, len(streams))
	for w, s := range streams {
		wg.Go(func() {
			for i := range perPublisher {
				p := &bayeux.Publication{Channel: s.channel, Message: fmt.Appendf(nil, "%d:%d", w, i), History: keepAll}
				if err := s.from.Publish(context.Background(), p); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := perPublisher * len(streams)
	b.got.waitFor(t, 20*time.Second, "every publication", func(ps []*bayeux.Publication) bool { return len(ps) >= total })
	ps := b.got.beyond(total, 50*time.Millisecond)
	if len(ps) != total {
		t.Fatalf("received %d publications, want %d", len(ps), total)
	}
	checkRun(t, "/h/a", offsets(ps, "/h/a"), 1)
	checkRun(t, "/h/b", offsets(ps, "/h/b"), 1)
	epochs := map[string]string{}
	next := make([]int, len(streams))
	for _, p := range ps {
		if p.Position.Epoch == "" || p.History != nil {
			t.Fatalf("delivered %+v", p)
		}
		if e, ok := epochs[p.Channel]; ok && e != p.Position.Epoch {
			t.Fatalf("%s: epoch changed from %s to %s", p.Channel, e, p.Position.Epoch)
		}
		epochs[p.Channel] = p.Position.Epoch
		var w, i int
		if _, err := fmt.Sscanf(string(p.Message), "%d:%d", &w, &i); err != nil || streams[w].channel != p.Channel {
			t.Fatalf("bad message %q on %s", p.Message, p.Channel)
		}
		if i != next[w] {
			t.Fatalf("publisher %d: got message %d, want %d", w, i, next[w])
		}
		next[w]++
	}
	if epochs["/h/a"] == epochs["/h/b"] {
		t.Errorf("two channels share epoch %s", epochs["/h/a"])
	}
	if n := b.hist.gaps.Load(); n != 0 {
		t.Errorf("%d gaps filled without any loss", n)
	}
	if n := a.got.beyond(0, 0); len(n) != 0 {
		t.Errorf("node a, which listens to nothing, got %d publications", len(n))
	}
}

// TestHistory checks History and RemoveHistory.
func TestHistory(t *testing.T) {
	srv := startRedis(t)
	raw := srv.raw()
	ctx := context.Background()
	a := newNode(t, srv, "a")
	const ch = "/hist/x"

	pubs, pos, err := a.History(ctx, ch, 0, 0)
	if err != nil || len(pubs) != 0 || pos != (bayeux.Position{}) {
		t.Fatalf("History of a new channel = %v, %+v, %v", pubs, pos, err)
	}
	for i := 1; i <= 10; i++ {
		p := &bayeux.Publication{Channel: ch, Message: []byte(strconv.Itoa(i)), History: keepAll}
		if i%3 == 0 {
			p.Exclude = "client-" + strconv.Itoa(i)
		}
		if err := a.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	_, pos, err = a.History(ctx, ch, 0, 0)
	if err != nil || pos.Offset != 10 || pos.Epoch == "" {
		t.Fatalf("position %+v, %v", pos, err)
	}
	epoch := pos.Epoch
	tests := []struct {
		since uint64
		limit int
		want  []uint64
	}{
		{0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{7, 0, []uint64{8, 9, 10}},
		{3, 2, []uint64{4, 5}},
		{0, -1, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{10, 0, nil},
		{99, 5, nil},
		{math.MaxUint64, 0, nil},
	}
	for _, tt := range tests {
		pubs, pos, err := a.History(ctx, ch, tt.since, tt.limit)
		if err != nil {
			t.Fatalf("since %d limit %d: %v", tt.since, tt.limit, err)
		}
		if pos != (bayeux.Position{Offset: 10, Epoch: epoch}) {
			t.Errorf("since %d limit %d: position %+v", tt.since, tt.limit, pos)
		}
		if got := offsets(pubs, ch); fmt.Sprint(got) != fmt.Sprint(tt.want) && len(got)+len(tt.want) > 0 {
			t.Errorf("since %d limit %d: offsets %v, want %v", tt.since, tt.limit, got, tt.want)
		}
		for _, p := range pubs {
			wantExclude := ""
			if p.Position.Offset%3 == 0 {
				wantExclude = "client-" + strconv.Itoa(int(p.Position.Offset))
			}
			if string(p.Message) != strconv.Itoa(int(p.Position.Offset)) || p.Exclude != wantExclude || p.Position.Epoch != epoch || p.History != nil {
				t.Errorf("publication %+v", p)
			}
		}
	}
	for _, bad := range []string{"/hist/*", "", "nope"} {
		if _, _, err := a.History(ctx, bad, 0, 0); !errors.Is(err, ErrInvalidChannel) {
			t.Errorf("History(%q) = %v", bad, err)
		}
	}

	if err := a.RemoveHistory(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if n, err := raw.Do(ctx, raw.B().Exists().Key("bayou:hist:"+ch, "bayou:hmeta:"+ch).Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("keys left after RemoveHistory: %d, %v", n, err)
	}
	pubs, pos, err = a.History(ctx, ch, 0, 0)
	if err != nil || len(pubs) != 0 || pos != (bayeux.Position{}) {
		t.Fatalf("History after RemoveHistory = %v, %+v, %v", pubs, pos, err)
	}
	a.publishHistory(t, ch, "again", keepAll)
	pubs, pos, err = a.History(ctx, ch, 0, 0)
	if err != nil || len(pubs) != 1 || pos.Offset != 1 || pos.Epoch == "" || pos.Epoch == epoch || string(pubs[0].Message) != "again" {
		t.Fatalf("after a new publication: %v, %+v, %v (old epoch %s)", pubs, pos, err, epoch)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.History(ctx, ch, 0, 0); !errors.Is(err, bayeux.ErrEngineClosed) {
		t.Errorf("History after Close = %v", err)
	}
}

// pttl returns the remaining lifetime of key.
func pttl(tb testing.TB, c rueidis.Client, key string) time.Duration {
	tb.Helper()
	ms, err := c.Do(context.Background(), c.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ms) * time.Millisecond
}

// TestHistoryRetention checks MAXLEN, the TTL of streams and the lifetime
// of the meta hash.
func TestHistoryRetention(t *testing.T) {
	srv := startRedis(t)
	raw := srv.raw()
	ctx := context.Background()
	const metaTTL = 800 * time.Millisecond
	a := newNode(t, srv, "a", func(c *Config) { c.HistoryMetaTTL = metaTTL })

	t.Run("size", func(t *testing.T) {
		rule := &bayeux.HistoryRule{Size: 5, TTL: time.Minute}
		for i := 1; i <= 12; i++ {
			a.publishHistory(t, "/keep/five", strconv.Itoa(i), rule)
		}
		if n, err := raw.Do(ctx, raw.B().Xlen().Key("bayou:hist:/keep/five").Build()).AsInt64(); err != nil || n != 5 {
			t.Fatalf("XLEN = %d, %v; want 5", n, err)
		}
		pubs, pos, err := a.History(ctx, "/keep/five", 0, 0)
		if err != nil || pos.Offset != 12 {
			t.Fatalf("position %+v, %v", pos, err)
		}
		if got := fmt.Sprint(offsets(pubs, "/keep/five")); got != "[8 9 10 11 12]" {
			t.Fatalf("retained %s, want [8 9 10 11 12]", got)
		}
		if d := pttl(t, raw, "bayou:hist:/keep/five"); d <= 59*time.Second || d > time.Minute {
			t.Errorf("stream PTTL %v, want the rule's TTL of 1m", d)
		}
		// The meta outlives the stream: HistoryMetaTTL, or the rule's TTL
		// when longer.
		if d := pttl(t, raw, "bayou:hmeta:/keep/five"); d <= 59*time.Second || d > time.Minute {
			t.Errorf("meta PTTL %v, want 1m", d)
		}
	})

	t.Run("ttl", func(t *testing.T) {
		const ch = "/keep/short"
		rule := &bayeux.HistoryRule{Size: 100, TTL: 150 * time.Millisecond}
		for i := 1; i <= 3; i++ {
			a.publishHistory(t, ch, strconv.Itoa(i), rule)
		}
		if d := pttl(t, raw, "bayou:hist:"+ch); d <= 0 || d > 150*time.Millisecond {
			t.Errorf("stream PTTL %v, want at most 150ms", d)
		}
		if d := pttl(t, raw, "bayou:hmeta:"+ch); d <= 150*time.Millisecond || d > metaTTL {
			t.Errorf("meta PTTL %v, want about %v", d, metaTTL)
		}
		_, pos, err := a.History(ctx, ch, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		epoch := pos.Epoch
		// The publications expire; the position stays, so that a client
		// that missed nothing is still told so.
		bayeuxtest.Eventually(t, 5*time.Second, func() bool {
			pubs, pos, err := a.History(ctx, ch, 0, 0)
			return err == nil && len(pubs) == 0 && pos == bayeux.Position{Offset: 3, Epoch: epoch}
		}, "the publications expire, the position stays")
		// Then the meta expires: a new history starts.
		bayeuxtest.Eventually(t, 5*time.Second, func() bool {
			_, pos, err := a.History(ctx, ch, 0, 0)
			return err == nil && pos == bayeux.Position{}
		}, "the position expires")
		a.publishHistory(t, ch, "new", rule)
		if _, pos, err := a.History(ctx, ch, 0, 0); err != nil || pos.Offset != 1 || pos.Epoch == epoch {
			t.Fatalf("after expiry: position %+v, %v (old epoch %s)", pos, err, epoch)
		}
	})

	t.Run("no_ttl", func(t *testing.T) {
		// Without a TTL the stream lives as long as the meta hash.
		a.publishHistory(t, "/keep/forever", "1", &bayeux.HistoryRule{Size: 10})
		for _, key := range []string{"bayou:hist:/keep/forever", "bayou:hmeta:/keep/forever"} {
			if d := pttl(t, raw, key); d <= metaTTL/2 || d > metaTTL {
				t.Errorf("%s PTTL %v, want about %v", key, d, metaTTL)
			}
		}
	})

	t.Run("lost_stream", func(t *testing.T) {
		// A stream that outlived its meta hash (evicted meta, say) is
		// replaced by a new history, not appended to.
		const ch = "/keep/orphan"
		rule := &bayeux.HistoryRule{Size: 10, TTL: time.Minute}
		for i := 1; i <= 4; i++ {
			a.publishHistory(t, ch, strconv.Itoa(i), rule)
		}
		if err := raw.Do(ctx, raw.B().Del().Key("bayou:hmeta:"+ch).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if pubs, pos, err := a.History(ctx, ch, 0, 0); err != nil || len(pubs) != 0 || pos != (bayeux.Position{}) {
			t.Fatalf("History without meta = %d publications, %+v, %v", len(pubs), pos, err)
		}
		a.publishHistory(t, ch, "fresh", rule)
		pubs, pos, err := a.History(ctx, ch, 0, 0)
		if err != nil || pos.Offset != 1 || len(pubs) != 1 || string(pubs[0].Message) != "fresh" {
			t.Fatalf("after the meta was lost: %d publications, %+v, %v", len(pubs), pos, err)
		}
	})

	if err := a.Publish(ctx, &bayeux.Publication{Channel: "/keep/bad", History: &bayeux.HistoryRule{Size: 0}}); err == nil {
		t.Error("publish with a history size of 0 succeeded")
	}
}

// TestHistoryGapFill makes a node miss publications, as a dropped pub/sub
// message would, and checks that it fills the gap from the stream before
// delivering what follows: in order, once each.
func TestHistoryGapFill(t *testing.T) {
	srv := startRedis(t)
	raw := srv.raw()
	ctx := context.Background()
	a := newNode(t, srv, "a")
	b := newNode(t, srv, "b")
	b.mustSubscribe(t, "/gap/**", "/gap/x")
	messages := func(ch string) string {
		var out []string
		for _, p := range b.got.snapshot() {
			if p.Channel == ch {
				out = append(out, fmt.Sprintf("%d:%s", p.Position.Offset, p.Message))
			}
		}
		return strings.Join(out, " ")
	}
	waitFor := func(ch, want string) {
		t.Helper()
		b.got.waitFor(t, 5*time.Second, want, func([]*bayeux.Publication) bool { return messages(ch) == want })
		if got := b.got.beyond(len(b.got.snapshot()), 30*time.Millisecond); messages(ch) != want {
			t.Fatalf("%s: got %s (%d publications), want %s", ch, messages(ch), len(got), want)
		}
	}

	t.Run("retained", func(t *testing.T) {
		a.publishHistory(t, "/gap/x", "a", keepAll)
		for _, m := range []string{"b", "c", "d"} {
			a.publishSilently(t, "/gap/x", m, keepAll)
		}
		a.publishHistory(t, "/gap/x", "e", keepAll)
		waitFor("/gap/x", "1:a 2:b 3:c 4:d 5:e")
		if g, r := b.hist.gaps.Load(), b.hist.recovered.Load(); g != 1 || r != 3 {
			t.Errorf("gaps %d, recovered %d; want 1 and 3", g, r)
		}
	})

	t.Run("trimmed", func(t *testing.T) {
		rule := &bayeux.HistoryRule{Size: 2, TTL: time.Minute}
		b.hist.gaps.Store(0)
		b.hist.recovered.Store(0)
		b.hist.missed.Store(0)
		a.publishHistory(t, "/gap/y", "a", rule)
		for _, m := range []string{"b", "c", "d", "e", "f"} {
			a.publishSilently(t, "/gap/y", m, rule)
		}
		a.publishHistory(t, "/gap/y", "g", rule)
		// Only f (and g) are retained.
		waitFor("/gap/y", "1:a 6:f 7:g")
		if g, r, m := b.hist.gaps.Load(), b.hist.recovered.Load(), b.hist.missed.Load(); g != 1 || r != 1 || m != 4 {
			t.Errorf("gaps %d, recovered %d, missed %d; want 1, 1, 4", g, r, m)
		}
	})

	t.Run("new_epoch", func(t *testing.T) {
		// The history is removed: what the new epoch holds before the
		// first publication the node sees is filled in.
		a.publishHistory(t, "/gap/z", "a", keepAll)
		waitFor("/gap/z", "1:a")
		old := b.got.snapshot()[len(b.got.snapshot())-1].Position.Epoch
		if err := a.RemoveHistory(ctx, "/gap/z"); err != nil {
			t.Fatal(err)
		}
		a.publishSilently(t, "/gap/z", "b", keepAll)
		a.publishSilently(t, "/gap/z", "c", keepAll)
		a.publishHistory(t, "/gap/z", "d", keepAll)
		waitFor("/gap/z", "1:a 1:b 2:c 3:d")
		last := b.got.snapshot()[len(b.got.snapshot())-1].Position.Epoch
		if last == old {
			t.Errorf("epoch unchanged after RemoveHistory")
		}
	})

	t.Run("catch_up", func(t *testing.T) {
		// What a node missed on a quiet channel is read after its
		// pub/sub connection comes back, without waiting for the next
		// publication.
		a.publishHistory(t, "/gap/q", "a", keepAll)
		waitFor("/gap/q", "1:a")
		a.publishSilently(t, "/gap/q", "b", keepAll)
		a.publishSilently(t, "/gap/q", "c", keepAll)
		b.catchUp() // as subscribeLoop does after a reconnect
		waitFor("/gap/q", "1:a 2:b 3:c")
		a.publishHistory(t, "/gap/q", "d", keepAll)
		waitFor("/gap/q", "1:a 2:b 3:c 4:d")
	})

	t.Run("catch_up_new_epoch", func(t *testing.T) {
		// A catch-up that finds a new epoch leaves it to the next live
		// publication: one of the old epoch may still be on its way,
		// and goes first.
		const ch = "/gap/late"
		a.publishHistory(t, ch, "a", keepAll)
		waitFor(ch, "1:a")
		old := b.got.snapshot()[len(b.got.snapshot())-1].Position.Epoch
		if err := a.RemoveHistory(ctx, ch); err != nil {
			t.Fatal(err)
		}
		a.publishSilently(t, ch, "b", keepAll)
		b.catchUp()
		late := string(appendHistoryHead(nil, ch, "", time.Minute)) + historyTail(2, old) + "late"
		for range 2 { // and a copy
			if err := raw.Do(ctx, raw.B().Publish().Channel("bayou:ch:/gap/**").Message(late).Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(ch, "1:a 2:late")
		a.publishHistory(t, ch, "c", keepAll)
		waitFor(ch, "1:a 2:late 1:b 2:c")
	})

	t.Run("fill_error", func(t *testing.T) {
		// The stream cannot be read: the live publication is delivered
		// anyway, and the failure counted.
		const ch = "/gap/broken"
		a.publishHistory(t, ch, "a", keepAll)
		waitFor(ch, "1:a")
		epoch := b.got.snapshot()[len(b.got.snapshot())-1].Position.Epoch
		if err := raw.Do(ctx, raw.B().Set().Key("bayou:hist:"+ch).Value("not a stream").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		payload := string(appendHistoryHead(nil, ch, "", time.Minute)) + historyTail(5, epoch) + "e"
		if err := raw.Do(ctx, raw.B().Publish().Channel("bayou:ch:/gap/**").Message(payload).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		waitFor(ch, "1:a 5:e")
		if n := b.hist.fillErrors.Load(); n != 1 {
			t.Errorf("fill errors %d, want 1", n)
		}
	})
}
