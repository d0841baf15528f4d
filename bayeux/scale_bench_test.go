package bayeux

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkSubscribeAt subscribes a session to one more channel and
// unsubscribes it, when the session already has n subscriptions: the cost
// must not grow with n.
func BenchmarkSubscribeAt(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srv, sessions := benchServer(b, 1, "/base")
			sess := sessions[0]
			ctx := context.Background()
			for i := 1; i < n; i++ {
				if err := srv.subscribeSession(ctx, sess, fmt.Sprintf("/c/%d", i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := srv.subscribeSession(ctx, sess, "/c/last"); err != nil {
					b.Fatal(err)
				}
				srv.unsubscribeSession(sess, "/c/last")
			}
		})
	}
}

// BenchmarkPersonalChannelMemory measures the heap that n sessions each
// subscribed to a channel of its own take in the server (index, interest
// counts and session state, sessions without connections), reported as
// bytes per session-and-channel.
func BenchmarkPersonalChannelMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				srv, _ := benchServer(b, 0, "")
				before := heapInUse()
				b.StartTimer()
				keep := make([]*Session, n)
				for i := range keep {
					s := srv.allocSession()
					srv.register(s)
					if err := srv.subscribeSession(context.Background(), s, fmt.Sprintf("/users/u%d", i)); err != nil {
						b.Fatal(err)
					}
					keep[i] = s
				}
				b.StopTimer()
				b.ReportMetric(float64(heapInUse()-before)/float64(n), "B/client")
				runtime.KeepAlive(keep)
				_ = srv.Shutdown(context.Background())
				b.StartTimer()
			}
		})
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
