package redis

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// BenchmarkPublish measures Publish throughput from one engine to another
// subscribed to a matching pattern, through a redis-server of its own. The
// time includes the delivery of every publication to the subscriber.
// Metrics: publishes/s, deliveries/s and Redis PUBLISH commands per publish
// (depth+2 = 5 for the depth-3 channel used). The history cases keep the
// channel's history (one EVALSHA per publish, running the same PUBLISHes).
func BenchmarkPublish(b *testing.B) {
	const channel = "/bench/a/b"
	msg := []byte(`{"channel":"/bench/a/b","data":{"text":"a message of about a hundred bytes, like a chat line"},"id":"1"}`)
	tests := []struct {
		name          string
		parallel      bool
		maxFlushDelay time.Duration
		history       *bayeux.HistoryRule
	}{
		{"serial", false, 0, nil},
		{"parallel", true, 0, nil},
		{"parallel_flush50us", true, 50 * time.Microsecond, nil},
		{"serial_history", false, 0, &bayeux.HistoryRule{Size: 1000, TTL: time.Minute}},
		{"parallel_history", true, 0, &bayeux.HistoryRule{Size: 1000, TTL: time.Minute}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			srv := startRedis(b)
			raw := srv.raw()
			tweak := func(c *Config) { c.MaxFlushDelay = tt.maxFlushDelay; c.OpTimeout = 5 * time.Second }
			pub := startEngine(b, srv, "bench-pub", func(*bayeux.Publication) {}, tweak)
			var delivered atomic.Int64
			sub := startEngine(b, srv, "bench-sub", func(*bayeux.Publication) { delivered.Add(1) }, tweak)
			if err := sub.Subscribe(context.Background(), "/bench/**"); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			before := publishCalls(b, raw)
			b.ReportAllocs()
			b.ResetTimer()
			began := time.Now()
			publish := func() {
				if err := pub.Publish(ctx, &bayeux.Publication{Channel: channel, Message: msg, History: tt.history}); err != nil {
					b.Error(err)
				}
			}
			if tt.parallel {
				b.SetParallelism(16) // 32 publishing goroutines on 2 CPUs
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						publish()
					}
				})
			} else {
				for b.Loop() {
					publish()
				}
			}
			published := time.Since(began)
			deadline := time.Now().Add(30 * time.Second)
			for delivered.Load() < int64(b.N) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(began)
			b.StopTimer()
			if got := delivered.Load(); got != int64(b.N) {
				b.Fatalf("delivered %d of %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/published.Seconds(), "publishes/s")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
			perPublish := float64(publishCalls(b, raw)-before) / float64(b.N)
			b.ReportMetric(perPublish, "PUBLISH/op")
			if want := float64(len(channels.Expand(channel))); perPublish != want {
				b.Errorf("PUBLISH per publish = %.2f, want %v", perPublish, want)
			}
		})
	}
}
