package wsconn

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// chunkConn is a net.Conn whose reads return the given chunks in order.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	read   int // bytes handed out so far
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.read += n
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// clientFrame builds a masked client frame with a payload of n bytes.
func clientFrame(n int, fill byte) []byte {
	b := []byte{0x81}
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 1, 2, 3, 4) // mask key
	return append(b, bytes.Repeat([]byte{fill}, n)...)
}

func TestFrameConnHandsOverOneFrameAtATime(t *testing.T) {
	sizes := []int{5, 125, 126, 300, 65535, 70000}
	var stream []byte
	var frames [][]byte
	for i, n := range sizes {
		f := clientFrame(n, byte('a'+i))
		frames = append(frames, f)
		stream = append(stream, f...)
	}
	tests := []struct {
		name   string
		chunks [][]byte
	}{
		{"all at once", [][]byte{stream}},
		{"byte by byte", func() (c [][]byte) {
			for i := range stream {
				c = append(c, stream[i:i+1])
			}
			return c
		}()},
		{"odd chunks", [][]byte{stream[:3], stream[3:140], stream[140:1000], stream[1000:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := make([][]byte, len(tt.chunks))
			for i := range tt.chunks {
				chunks[i] = append([]byte(nil), tt.chunks[i]...)
			}
			cc := &chunkConn{chunks: chunks}
			fc := New(cc, time.Second)
			handed := 0
			for i, want := range frames {
				var got []byte
				buf := make([]byte, 512)
				for len(got) < len(want) {
					n, err := fc.Read(buf)
					if err != nil {
						t.Fatalf("frame %d: %v after %d of %d bytes", i, err, len(got), len(want))
					}
					got = append(got, buf[:n]...)
					handed += n
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("frame %d: a read crossed the frame's end or lost bytes (%d bytes, want %d)", i, len(got), len(want))
				}
				// Bytes taken from the connection but not handed over must
				// show as pending, or a wait for readability would strand them.
				if cc.read > handed && !fc.Pending() {
					t.Fatalf("after frame %d: %d bytes read ahead but Pending() is false", i, cc.read-handed)
				}
			}
			if fc.Pending() {
				t.Fatal("Pending() after the last frame")
			}
		})
	}
}

// TestTextFrame checks the three header lengths of the frames the server
// writes itself.
func TestTextFrame(t *testing.T) {
	for _, n := range []int{0, 1, 123, 124, 200, 65531, 65532, 70000} {
		item := []byte(`"` + string(bytes.Repeat([]byte{'x'}, n)) + `"`)
		bp := new([]byte)
		f := TextFrame(bp, [][]byte{item})
		payload := len(item) + 2 // the array brackets
		var hdr int
		switch {
		case payload < 126:
			hdr = 2
			if int(f[1]) != payload {
				t.Fatalf("payload %d: length byte %d", payload, f[1])
			}
		case payload < 1<<16:
			hdr = 4
			if f[1] != 126 || int(binary.BigEndian.Uint16(f[2:])) != payload {
				t.Fatalf("payload %d: header % x", payload, f[:4])
			}
		default:
			hdr = 10
			if f[1] != 127 || int(binary.BigEndian.Uint64(f[2:])) != payload {
				t.Fatalf("payload %d: header % x", payload, f[:10])
			}
		}
		if f[0] != 0x81 || len(f) != hdr+payload || string(f[hdr:]) != "["+string(item)+"]" {
			t.Fatalf("payload %d: frame of %d bytes starting % x", payload, len(f), f[:hdr])
		}
	}
}

// TestOneWriter writes data, ping and pong frames from many goroutines,
// then a close frame, and reads them back whole: every byte goes through
// one writer, so frames never interleave.
func TestOneWriter(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := New(server, 5*time.Second)
	const writers, each = 8, 50
	frames := make(chan []byte, writers*each*3+1)
	go func() {
		defer close(frames)
		for {
			f, err := nextFrame(client)
			if err != nil {
				return
			}
			frames <- f
		}
	}()
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			item := bytes.Repeat([]byte{'a' + byte(w)}, 200+w)
			for range each {
				if writeErr(c.WriteItems([][]byte{item})) != nil || c.Ping() != nil || c.Pong([]byte("p")) != nil {
					t.Error("write failed")
					return
				}
			}
		}()
	}
	for range writers {
		<-done
	}
	if err := c.Shut(1001, "going away"); err != nil {
		t.Fatal(err)
	}
	counts := map[byte]int{}
	var last []byte
	for f := range frames {
		counts[f[0]]++
		last = f
		if f[0] == 0x81 {
			body := f[1:]
			if body[0] != '[' || body[len(body)-1] != ']' || bytes.Count(body, body[1:2]) != len(body)-2 {
				t.Fatalf("a data frame is not whole: %q", body)
			}
		}
	}
	if counts[0x81] != writers*each || counts[0x89] != writers*each || counts[0x8a] != writers*each || counts[0x88] != 1 {
		t.Fatalf("frames by first byte: %v", counts)
	}
	if last[0] != 0x88 || binary.BigEndian.Uint16(last[1:]) != 1001 || string(last[3:]) != "going away" {
		t.Fatalf("last frame % x", last)
	}
}

// writeErr returns the error of a WriteItems.
func writeErr(_ int, err error) error { return err }
