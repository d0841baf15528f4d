package bayeux

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/channels"
)

var benchPublish = []byte(`[{"channel":"/chat/room-42","data":{"user":"ana","text":"hello, everyone in the room","seq":12345},"clientId":"kpxlpe1y3vpqfd4ckhvnfxbsuy3dtwh","id":"1a"}]`)

func BenchmarkParseBatch(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPublish)))
	for b.Loop() {
		if _, err := testLimits.parseBatch(benchPublish); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDelivery(b *testing.B) {
	msgs, _ := testLimits.parseBatch(benchPublish)
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeDelivery(&msgs[0])
	}
}

func BenchmarkEncodeReply(b *testing.B) {
	r := Reply{ID: `"1a"`, ClientID: "kpxlpe1y3vpqfd4ckhvnfxbsuy3dtwh", Channel: channels.MetaConnect, Successful: true,
		Advice: &Advice{Reconnect: "retry", Timeout: 25000, HasTimeout: true}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.appendTo(buf[:0])
	}
}

// benchServer returns a server with n sessions subscribed to pattern,
// keeping history by the given rules.
func benchServer(b *testing.B, n int, pattern string, history ...HistoryRule) (*Server, []*Session) {
	srv, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxQueueBytes: 1 << 30, History: history})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Shutdown(b.Context()) })
	sessions := make([]*Session, n)
	for i := range sessions {
		sessions[i] = srv.allocSession()
		srv.register(sessions[i])
		if err := srv.subscribeSession(context.Background(), sessions[i], pattern); err != nil {
			b.Fatal(err)
		}
	}
	return srv, sessions
}

// drain empties every queue the way a connection does.
func drain(sessions []*Session) {
	for _, s := range sessions {
		s.drain(discard)
	}
}

// BenchmarkFanout1000 delivers one encoded message to 1,000 subscribed
// sessions in process: the index lookup plus 1,000 enqueues. Queues are
// drained every 32 messages, as connections would. Its allocs/op shows the
// cost per publish; divided by 1,000 it is the cost per recipient (zero in
// the steady state).
func BenchmarkFanout1000(b *testing.B) {
	srv, sessions := benchServer(b, 1000, "/chat/*")
	p := &Publication{Channel: "/chat/room-42", Message: []byte(`{"channel":"/chat/room-42","data":{"user":"ana","text":"hello"},"id":"1a"}`)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		srv.deliver(p)
		if i++; i%32 == 0 {
			drain(sessions)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/recipient")
}

// BenchmarkPublish1000 is the whole publish path of one message from a
// client: parsing, validation, encoding, the engine and the fan-out to 1,000
// sessions.
func BenchmarkPublish1000(b *testing.B) {
	srv, sessions := benchServer(b, 1000, "/chat/**")
	b.ReportAllocs()
	publishLoop(b, srv, sessions, benchPublish)
}

// BenchmarkPublish1000History is BenchmarkPublish1000 on a channel with
// history: the publication is kept (in memory), gets a position, and each
// node encodes it once more with the position in ext.
func BenchmarkPublish1000History(b *testing.B) {
	srv, sessions := benchServer(b, 1000, "/chat/**", HistoryRule{Pattern: "/chat/**", Size: 100})
	b.ReportAllocs()
	publishLoop(b, srv, sessions, benchPublish)
}

// publishLoop handles body as a client's request on every iteration,
// draining the sessions' queues every 32, as connections would.
func publishLoop(b *testing.B, srv *Server, sessions []*Session, body []byte) {
	i := 0
	for b.Loop() {
		msgs, err := testLimits.parseBatch(body)
		if err != nil {
			b.Fatal(err)
		}
		srv.newExchange(b.Context(), nil, nil).run(msgs)
		if i++; i%32 == 0 {
			drain(sessions)
		}
	}
}

// BenchmarkHandshake measures creating sessions.
func BenchmarkHandshake(b *testing.B) {
	srv, _ := benchServer(b, 0, "/x")
	msgs, _ := testLimits.parseBatch([]byte(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}`))
	b.ReportAllocs()
	for b.Loop() {
		x := srv.newExchange(b.Context(), nil, nil)
		x.run(msgs)
	}
	b.StopTimer()
	b.ReportMetric(float64(srv.Sessions())/float64(b.N), "sessions/op")
}

// BenchmarkPublishChannelLength is the whole publish path (parse, checks,
// encoding, engine, index look-ups, one subscriber on "/**") for channels
// of growing length: its ns/byte stays flat, so the cost per publish grows
// linearly with the channel's length. Within the limits a channel has 4
// segments here; "refused" channels are over the length limit (the request
// itself is at most MaxMessageSize) and cost one scan.
func BenchmarkPublishChannelLength(b *testing.B) {
	for _, tc := range []struct {
		name    string
		channel string
	}{
		{"4seg-16B", channelOf(4, 16)},
		{"4seg-64B", channelOf(4, 64)},
		{"4seg-256B", channelOf(4, 256)},
		{"4seg-1KiB", channelOf(4, 1024)},
		{"64seg-1KiB", channelOf(64, 1024)},
		{"refused-16KiB", channelOf(8192, 16<<10)},
		{"refused-256KiB", channelOf(131072, 256<<10)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv, sessions := benchServer(b, 1, "/**")
			body := []byte(`{"channel":"` + tc.channel + `","data":1}`)
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.channel)))
			publishLoop(b, srv, sessions, body)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(tc.channel)), "ns/byte")
		})
	}
}

// channelOf returns a channel of segs segments and n bytes.
func channelOf(segs, n int) string {
	seg := n/segs - 1
	var sb strings.Builder
	for i := range segs {
		sb.WriteByte('/')
		w := seg
		if i == segs-1 {
			w = max(n-sb.Len(), 1) // the last segment takes the rest
		}
		sb.WriteString(strings.Repeat("a", w))
	}
	return sb.String()
}

// discard drops what a session drains, as a connection that wrote it would.
func discard([][]byte) error { return nil }
