package channels

import (
	"fmt"
	"testing"
)

var sinkBool bool

func BenchmarkValidName(b *testing.B) {
	for _, name := range []string{"/chat/room-42/messages", "/a"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(name)))
			for b.Loop() {
				sinkBool = ValidName(name)
			}
		})
	}
}

func BenchmarkValidPattern(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkBool = ValidPattern("/chat/room-42/**")
	}
}

func BenchmarkExpand(b *testing.B) {
	for _, name := range []string{"/a", "/chat/room-42/messages"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]string, 0, 16)
			for b.Loop() {
				dst = AppendExpand(dst[:0], name)
			}
		})
	}
}

type benchSession struct{ id int }

func BenchmarkAppendMatch(b *testing.B) {
	const subscribers = 1000
	sessions := make([]*benchSession, subscribers)
	for i := range sessions {
		sessions[i] = &benchSession{i}
	}
	for _, tc := range []struct {
		name     string
		patterns []string // subscriber i subscribes to patterns[i%len]
		overlap  bool     // also subscribe everyone to "/**" (all duplicates)
	}{
		{name: "one-pattern", patterns: []string{"/a/b"}},
		{name: "spread-3", patterns: []string{"/a/*", "/a/b", "/**"}},
		{name: "skewed", patterns: nil}, // 999 on /a/b, 1 on /**
		{name: "spread-3-overlap", patterns: []string{"/a/*", "/a/b", "/**"}, overlap: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			x := NewIndex[*benchSession]()
			for i, s := range sessions {
				switch {
				case tc.patterns == nil && i == 0:
					x.Add("/**", s)
				case tc.patterns == nil:
					x.Add("/a/b", s)
				default:
					x.Add(tc.patterns[i%len(tc.patterns)], s)
				}
				if tc.overlap {
					x.Add("/a/**", s)
				}
			}
			// Unrelated patterns in the index do not matter, but make it
			// look like a server's.
			for i := range 10000 {
				x.Add(fmt.Sprintf("/user/%d", i), sessions[i%subscribers])
			}
			dst := make([]*benchSession, 0, 4*subscribers)
			b.ReportAllocs()
			for b.Loop() {
				dst = x.AppendMatch(dst[:0], "/a/b")
			}
			if len(dst) != subscribers {
				b.Fatalf("got %d subscribers", len(dst))
			}
		})
	}
}

func BenchmarkAppendMatchParallel(b *testing.B) {
	x := NewIndex[*benchSession]()
	for i := range 1000 {
		x.Add("/a/b", &benchSession{i})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]*benchSession, 0, 1024)
		for pb.Next() {
			dst = x.AppendMatch(dst[:0], "/a/b")
		}
	})
}

func BenchmarkAddRemove(b *testing.B) {
	x := NewIndex[int]()
	for i := range 1000 {
		x.Add("/a/b", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		x.Add("/a/b", -1)
		x.Remove("/a/b", -1)
	}
}
