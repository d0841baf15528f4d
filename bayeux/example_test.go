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

	post := poster(hs.URL + "/bayeux")
	id := handshake(post)
	post(`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/chat/*"}`)
	_ = srv.Publish(context.Background(), "/chat/lobby", map[string]string{"text": "hello"})
	connect := post(`{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling","advice":{"timeout":0}}`)
	fmt.Println(connect[strings.Index(connect, `},{`)+2:])
	// Output: {"channel":"/chat/lobby","data":{"text":"hello"}}]
}

// poster returns a function that POSTs a JSON body to url and returns the
// answer, for the examples.
func poster(url string) func(body string) string {
	return func(body string) string {
		res, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
}

// handshake handshakes with post and returns the clientId.
func handshake(post func(string) string) string {
	reply := post(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`)
	return reply[strings.Index(reply, `"clientId":"`)+12:][:31]
}

// quietServer returns a server with extensions that logs nothing, for the
// examples.
func quietServer(extensions ...bayeux.Extension) *bayeux.Server {
	srv, err := bayeux.New(bayeux.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Extensions: extensions})
	if err != nil {
		panic(err)
	}
	return srv
}

// In-process subscribers see every publication on matching channels, from
// clients, the server API or other nodes.
func ExampleServer_Subscribe() {
	srv := quietServer()
	defer srv.Shutdown(context.Background())

	got := make(chan string, 1)
	cancel, err := srv.Subscribe("/prices/*", func(m *bayeux.Message) {
		got <- m.Channel + " " + m.Data // Data is the raw JSON
	})
	if err != nil {
		panic(err)
	}
	defer cancel()
	_ = srv.Publish(context.Background(), "/prices/acme", map[string]float64{"bid": 101.5})
	fmt.Println(<-got)
	// Output: /prices/acme {"bid":101.5}
}

// A /service handler answers the client that published (CometD's
// remoteCall): its return value is the reply's data.
func ExampleServer_HandleService() {
	srv := quietServer()
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	err := srv.HandleService("/service/echo", func(ctx context.Context, m *bayeux.Message) (any, error) {
		return map[string]string{"echo": m.ExtString("who")}, nil
	})
	if err != nil {
		panic(err)
	}
	res, err := http.Post(hs.URL+"/bayeux", "application/json",
		strings.NewReader(`{"channel":"/service/echo","data":{},"ext":{"who":"ana"},"id":"7"}`))
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	fmt.Println(string(b))
	// Output: [{"id":"7","channel":"/service/echo","successful":true},{"id":"7","channel":"/service/echo","successful":true,"data":{"echo":"ana"}}]
}

// tokenCheck is an Extension: it refuses subscriptions without the right
// token in ext, and removes the token so that it is never forwarded.
type tokenCheck struct{ bayeux.NopExtension }

func (tokenCheck) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel != "/meta/subscribe" {
		return
	}
	if m.ExtString("token") != "s3cret" {
		m.Error = "403::Forbidden"
	}
	m.DeleteExt("token")
}

// An Extension sees every incoming message before it is handled (and every
// reply before it is sent).
func ExampleExtension() {
	srv := quietServer(tokenCheck{})
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	post := poster(hs.URL + "/bayeux")
	id := handshake(post)
	fmt.Println(strings.Contains(post(`{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/a"}`), "403::Forbidden"))
	fmt.Println(strings.Contains(post(`{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/a","ext":{"token":"s3cret"}}`), `"successful":true`))
	// Output:
	// true
	// true
}

// redactor is a DeliveryFilter: only subscribers with the role "staff" see
// the "salary" field of messages on /people/**.
type redactor struct{ bayeux.NopExtension }

func (redactor) Delivery(_ context.Context, m *bayeux.Message) func(*bayeux.Session, *bayeux.Message) bool {
	if !strings.HasPrefix(m.Channel, "/people/") {
		return nil // everyone gets the shared encoding
	}
	return func(to *bayeux.Session, c *bayeux.Message) bool {
		if !to.Identity().HasRole("staff") {
			c.Data = `{"redacted":true}`
		}
		return true
	}
}

// A DeliveryFilter decides, per recipient, whether and how a publication is
// delivered.
func ExampleDeliveryFilter() {
	srv := quietServer(redactor{})
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	post := poster(hs.URL + "/bayeux")
	id := handshake(post)
	post(`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/people/*"}`)
	_ = srv.Publish(context.Background(), "/people/ana", map[string]int{"salary": 100})
	connect := post(`{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling","advice":{"timeout":0}}`)
	fmt.Println(connect[strings.Index(connect, `},{`)+2:])
	// Output: {"channel":"/people/ana","data":{"redacted":true}}]
}
