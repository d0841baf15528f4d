package bayeux_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// A server mounted on a test listener; a client handshakes, subscribes and
// receives a message the server publishes, all over long-polling.
func Example() {
	srv, err := bayeux.New(bayeux.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	post := func(body string) string {
		res, err := http.Post(hs.URL+"/bayeux", "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	reply := post(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`)
	id := reply[strings.Index(reply, `"clientId":"`)+12:][:31]
	post(`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/chat/*"}`)
	_ = srv.Publish(context.Background(), "/chat/lobby", map[string]string{"text": "hello"})
	connect := post(`{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling","advice":{"timeout":0}}`)
	fmt.Println(connect[strings.Index(connect, `},{`)+2:])
	// Output: {"channel":"/chat/lobby","data":{"text":"hello"}}]
}
