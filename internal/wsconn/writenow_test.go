package wsconn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// tcpPair returns a Conn over a loopback TCP connection and the client's end.
func tcpPair(t *testing.T, writeTimeout time.Duration) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return New(server, writeTimeout), client.(*net.TCPConn)
}

// nextFrame reads one server frame from r and returns its first byte
// followed by its payload.
func nextFrame(r io.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	f := make([]byte, 1+n)
	f[0] = h[0]
	if _, err := io.ReadFull(r, f[1:]); err != nil {
		return nil, err
	}
	return f, nil
}

// readFrames reads the server's frames from r until it fails, sending the
// payload of each text frame to out.
func readFrames(r io.Reader, out chan<- string) {
	defer close(out)
	br := bufio.NewReader(r)
	for {
		f, err := nextFrame(br)
		if err != nil {
			return
		}
		if f[0] == 0x80|opText {
			out <- string(f[1:])
		}
	}
}

// item is the JSON item number i, padded to about size bytes.
func item(i, size int) []byte {
	b := []byte(`"` + strconv.Itoa(i) + ` `)
	b = append(b, bytes.Repeat([]byte{'x'}, max(size-len(b)-1, 0))...)
	return append(b, '"')
}

// TestWriteItemsNowPastTheWriteDeadline: the raw write fails once the
// connection's write deadline passed, so WriteItemsNow moves it on as
// WriteItems does (a connection writing only this way must not time out).
func TestWriteItemsNowPastTheWriteDeadline(t *testing.T) {
	const timeout = 20 * time.Millisecond
	c, client := tcpPair(t, timeout)
	frames := make(chan string, 4)
	go readFrames(client, frames)
	// A reply written the usual way sets the deadline.
	if err := writeErr(c.WriteItems([][]byte{item(0, 10)})); err != nil {
		t.Fatal(err)
	}
	<-frames
	for i := range 3 {
		waitPastDeadline(c)
		n, ok, rest, err := c.WriteItemsNow([][]byte{item(i, 10)})
		if err != nil || !ok || rest != nil || n == 0 {
			t.Fatalf("write %d: n %d ok %v rest %v err %v", i, n, ok, rest != nil, err)
		}
		if got, want := <-frames, "["+string(item(i, 10))+"]"; got != want {
			t.Fatalf("frame %d: %q, want %q", i, got, want)
		}
	}
}

// waitPastDeadline returns once the write deadline c set last has passed.
func waitPastDeadline(c *Conn) {
	for {
		c.wmu.Lock()
		d := c.deadline
		c.wmu.Unlock()
		if time.Now().After(d) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteItemsNowNeverWaits: against a client that stops reading,
// WriteItemsNow fills the connection and then refuses instead of waiting;
// a frame the connection took in part is finished by rest before any
// other frame, so that once the client reads, every frame is whole and
// every item reported written arrives, in order.
func TestWriteItemsNowNeverWaits(t *testing.T) {
	c, client := tcpPair(t, 5*time.Second)
	_ = client.SetReadBuffer(4096)
	_ = c.Conn.(*net.TCPConn).SetWriteBuffer(4096)
	var (
		written []int // items reported written, in order
		rests   []func() (int, error)
		refused int
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20000 && refused < 50; i++ {
			_, ok, rest, err := c.WriteItemsNow([][]byte{item(i, 3000)})
			if err != nil {
				t.Errorf("item %d: %v", i, err)
				return
			}
			if !ok {
				refused++
				continue
			}
			written = append(written, i)
			if rest != nil {
				// The writer stays taken until rest runs: every later
				// attempt is refused.
				rests = append(rests, rest)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("WriteItemsNow waited for a client that does not read")
	}
	if refused == 0 || len(written) == 0 {
		t.Fatalf("written %d, refused %d: the connection never filled up", len(written), refused)
	}
	if len(rests) > 1 {
		t.Fatalf("%d frames left unfinished; at most one may be", len(rests))
	}
	frames := make(chan string, len(written)+2)
	go readFrames(client, frames)
	for _, rest := range rests {
		if _, err := rest(); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeErr(c.WriteItems([][]byte{[]byte(`"end"`)})); err != nil {
		t.Fatal(err)
	}
	for _, want := range written {
		got := <-frames
		if got != "["+string(item(want, 3000))+"]" {
			t.Fatalf("want item %d, got a frame of %d bytes starting %q", want, len(got), got[:min(len(got), 20)])
		}
	}
	if got := <-frames; got != `["end"]` {
		t.Fatalf("last frame %q", got)
	}
	t.Logf("%d items written, %d refused, %d finished by rest", len(written), refused, len(rests))
}

// TestWriteItemsNowWhileWriting: another write under way makes it refuse.
func TestWriteItemsNowWhileWriting(t *testing.T) {
	c, _ := tcpPair(t, time.Second)
	c.wmu.Lock()
	_, ok, rest, err := c.WriteItemsNow([][]byte{[]byte(`1`)})
	c.wmu.Unlock()
	if ok || rest != nil || err != nil {
		t.Fatalf("ok %v rest %v err %v while another write holds the writer", ok, rest != nil, err)
	}
	big := make([][]byte, 0, 2)
	big = append(big, bytes.Repeat([]byte{'1'}, MaxFrameBytes), []byte(`2`))
	if _, ok, _, _ := c.WriteItemsNow(big); ok {
		t.Fatal("items of more than one frame were written")
	}
}

// TestReadAhead: nothing before the deadline leaves nothing pending; bytes
// that came are pending and handed over as the frame they start.
func TestReadAhead(t *testing.T) {
	c, client := tcpPair(t, time.Second)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if err := c.ReadAhead(); !errors.Is(err, os.ErrDeadlineExceeded) || c.Pending() {
		t.Fatalf("with nothing sent: err %v, pending %v", err, c.Pending())
	}
	frame := clientFrame(300, 'z')
	if _, err := client.Write(frame); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.ReadAhead(); err != nil || !c.Pending() {
		t.Fatalf("with a frame sent: err %v, pending %v", err, c.Pending())
	}
	got := make([]byte, 0, len(frame))
	for len(got) < len(frame) {
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, frame) || c.Pending() {
		t.Fatalf("read %d bytes (equal %v), pending %v", len(got), bytes.Equal(got, frame), c.Pending())
	}
}

// TestWriteItemsNowAllocates nothing on the way of a delivery.
func TestWriteItemsNowAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts under the race detector")
	}
	c, client := tcpPair(t, time.Second)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	items := [][]byte{[]byte(`{"channel":"/u/1","data":"x"}`)}
	if n := testing.AllocsPerRun(100, func() {
		if _, ok, _, err := c.WriteItemsNow(items); !ok || err != nil {
			t.Fatalf("ok %v err %v", ok, err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per write", n)
	}
}

// clientControl builds a masked client control frame.
func clientControl(op byte, payload string) []byte {
	b := []byte{0x80 | op, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i := range len(payload) {
		b = append(b, payload[i]^[]byte{1, 2, 3, 4}[i%4])
	}
	return b
}

func TestSkipPong(t *testing.T) {
	pong := clientControl(opPong, "abc")
	tests := []struct {
		name    string
		chunks  [][]byte
		skipped int  // pongs taken
		pending bool // bytes left for the library
	}{
		{"one pong", [][]byte{pong}, 1, false},
		{"two pongs", [][]byte{append(append([]byte{}, pong...), pong...)}, 2, false},
		{"a pong then a data frame", [][]byte{append(append([]byte{}, pong...), clientFrame(5, 'a')...)}, 1, true},
		{"a data frame first", [][]byte{clientFrame(5, 'a')}, 0, true},
		{"a ping", [][]byte{clientControl(opPing, "x")}, 0, true},
		{"half a pong", [][]byte{pong[:4]}, 0, true},
		{"an unmasked pong", [][]byte{{0x80 | opPong, 0}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(&chunkConn{chunks: tt.chunks}, time.Second)
			if err := c.fill(1); err != nil {
				t.Fatal(err)
			}
			n := 0
			for c.SkipPong() {
				n++
			}
			if n != tt.skipped || c.Pending() != tt.pending {
				t.Fatalf("skipped %d, pending %v; want %d, %v", n, c.Pending(), tt.skipped, tt.pending)
			}
		})
	}
}
