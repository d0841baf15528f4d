package metrics_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// Clients of the transports the Go client does not speak, in raw HTTP.

// rawSession handshakes over HTTP offering connType, subscribes to pattern
// and returns the clientId.
func rawSession(t *testing.T, endpoint, connType, pattern string) string {
	t.Helper()
	r := bayeuxtest.MustPost(t, endpoint, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["`+connType+`"]}`)
	id := r.Get("0.clientId").String()
	if id == "" {
		t.Fatalf("handshake: %s", r.Raw)
	}
	r = bayeuxtest.MustPost(t, endpoint, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"`+pattern+`"}`)
	if !r.Get("0.successful").Bool() {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	return id
}

// rawDisconnect ends session id.
func rawDisconnect(t *testing.T, endpoint, id string) {
	t.Helper()
	r := bayeuxtest.MustPost(t, endpoint, `{"channel":"/meta/disconnect","clientId":"`+id+`"}`)
	if !r.Get("0.successful").Bool() {
		t.Fatalf("disconnect: %s", r.Raw)
	}
}

// countMessages returns how many items of the JSON array msgs are
// messages (with data) on channel.
func countMessages(msgs gjson.Result, channel string) int {
	n := 0
	for _, m := range msgs.Array() {
		if m.Get("channel").String() == channel && m.Get("data").Exists() {
			n++
		}
	}
	return n
}

// eventStream is the EventSource stream of a session, read until it ends.
type eventStream struct {
	messages atomic.Int64 // messages on the channel counted
	done     chan struct{}
}

// openEventStream opens the stream of session id and counts the messages
// on channel it carries. It is closed at the end of the test.
func openEventStream(t *testing.T, endpoint, id, channel string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("event stream: status %d", res.StatusCode)
	}
	es := &eventStream{done: make(chan struct{})}
	go func() {
		defer close(es.done)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				es.messages.Add(int64(countMessages(gjson.Parse(data), channel)))
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-es.done
	})
	return es
}

// jsonpConnect sends a callback-polling connect of session id that returns
// at once, and returns the response body and the messages on channel it
// carried.
func jsonpConnect(t *testing.T, endpoint, id, channel string) (string, int) {
	t.Helper()
	q := url.Values{"jsonp": {"cb"}, "message": {`[{"channel":"/meta/connect","clientId":"` + id +
		`","connectionType":"callback-polling","advice":{"timeout":0}}]`}}
	res, err := http.Get(endpoint + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("JSONP connect: status %d, %v", res.StatusCode, err)
	}
	body := string(b)
	inner, ok := strings.CutPrefix(body, "/**/cb(")
	if !ok || !strings.HasSuffix(inner, ");") {
		t.Fatalf("JSONP connect answered %q", body)
	}
	return body, countMessages(gjson.Parse(strings.TrimSuffix(inner, ");")), channel)
}
