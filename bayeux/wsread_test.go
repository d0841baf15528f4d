package bayeux

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestWebSocketMessageSizes sends messages of several sizes, in one frame
// and in fragments (a client whose write buffer is smaller than the
// message), and over the size limit: each arrives whole, or closes the
// socket with 1009.
func TestWebSocketMessageSizes(t *testing.T) {
	ts := newTestServer(t, Config{MaxMessageSize: 32 << 10})
	tests := []struct {
		name      string
		pad       int
		writeBuf  int // the client's write buffer: frames are at most this big
		wantClose int
	}{
		{"small, one frame", 10, 4096, 0},
		{"empty ext value", 0, 4096, 0},
		{"fragments", 1500, 128, 0},
		{"4 KB in fragments", 3900, 256, 0},
		{"bigger than what is allocated first", 20000, 1024, 0},
		{"over the limit", 40000, 4096, websocket.CloseMessageTooBig},
		{"over the limit, fragments", 40000, 512, websocket.CloseMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := websocket.Dialer{WriteBufferSize: tt.writeBuf}
			c, _, err := d.Dial(bayeuxtest.WebSocketURL(ts.url), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msg := `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"ext":{"pad":"` +
				strings.Repeat("x", tt.pad) + `"},"id":"h"}]`
			wrote := make(chan error, 1)
			go func() { wrote <- c.WriteMessage(websocket.TextMessage, []byte(msg)) }()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := c.ReadMessage()
			werr := <-wrote
			if tt.wantClose != 0 {
				// A slow client may still be writing the fragments past the
				// limit when the server closes: its write then fails, and
				// the reset may overtake the close frame.
				if !websocket.IsCloseError(err, tt.wantClose) && (werr == nil || err == nil) {
					t.Fatalf("read: %v %s (write: %v), want close %d", err, b, werr, tt.wantClose)
				}
				return
			}
			if werr != nil {
				t.Fatal(werr)
			}
			if err != nil || !strings.Contains(string(b), `"successful":true`) || !strings.Contains(string(b), `"id":"h"`) {
				t.Fatalf("reply %s, %v", b, err)
			}
		})
	}
}
