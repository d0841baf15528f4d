// Package testserver runs a bayeux.Server on a loopback httptest server for
// the extensions' tests (through internal/bayeuxtest), and speaks the Bayeux
// protocol to it as JSON POSTs.
package testserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
	"github.com/tidwall/gjson"
)

// Server is a running bayeux.Server and the URL of its mount.
type Server struct {
	*bayeux.Server
	URL string
}

// New starts a server with cfg (a discarding logger and a 2 s connect hold
// unless cfg sets them) and stops it when the test ends.
func New(t testing.TB, cfg bayeux.Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	srv, err := bayeux.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := bayeuxtest.Serve(t, srv, srv.Shutdown)
	return &Server{Server: srv, URL: hs.URL + "/bayeux"}
}

// Post sends body (one message or an array) and returns the reply array.
// headers are name, value pairs.
func (s *Server) Post(t testing.TB, body string, headers ...string) gjson.Result {
	t.Helper()
	return bayeuxtest.MustPost(t, s.URL, body, headers...)
}

// Ext renders an ext object holding key: value (a JSON string), or nothing
// when value is empty.
func Ext(key, value string) string {
	if value == "" {
		return ""
	}
	return `,"ext":{` + strconv.Quote(key) + `:` + strconv.Quote(value) + `}`
}

// Handshake sends a handshake with the raw ext fields extra (such as
// `,"ext":{...}`) and returns its reply.
func (s *Server) Handshake(t testing.TB, extra string) gjson.Result {
	t.Helper()
	return s.Post(t, `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]`+extra+`}`).Get("0")
}

// Connect makes a handshake that must succeed and returns the clientId.
func (s *Server) Connect(t testing.TB, extra string) string {
	t.Helper()
	r := s.Handshake(t, extra)
	id := r.Get("clientId").String()
	if !r.Get("successful").Bool() || id == "" {
		t.Fatalf("handshake %s failed: %s", extra, r.Raw)
	}
	return id
}

// Subscribe sends a subscribe and returns its reply.
func (s *Server) Subscribe(t testing.TB, id, pattern, extra string) gjson.Result {
	t.Helper()
	return s.Post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":`+strconv.Quote(pattern)+extra+`}`).Get("0")
}

// Publish sends a publish from client id ("" for an anonymous one) and
// returns its reply.
func (s *Server) Publish(t testing.TB, id, channel, data, extra string) gjson.Result {
	t.Helper()
	client := ""
	if id != "" {
		client = `"clientId":"` + id + `",`
	}
	return s.Post(t, `{`+client+`"channel":`+strconv.Quote(channel)+`,"data":`+data+extra+`}`).Get("0")
}

// ConnectMsg sends a /meta/connect that returns at once with whatever is
// queued, and returns the whole reply array.
func (s *Server) ConnectMsg(t testing.TB, id, extra string) gjson.Result {
	t.Helper()
	return s.Post(t, `{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling","advice":{"timeout":0}`+extra+`}`)
}

// Deliveries drains what is queued for id and returns the published
// messages in it (those with data), in order.
func (s *Server) Deliveries(t testing.TB, id string) []gjson.Result {
	t.Helper()
	var out []gjson.Result
	for _, m := range s.ConnectMsg(t, id, "").Array() {
		if m.Get("data").Exists() {
			out = append(out, m)
		}
	}
	return out
}

// Channels returns the channels of msgs joined with spaces.
func Channels(msgs []gjson.Result) string {
	var cs []string
	for _, m := range msgs {
		cs = append(cs, m.Get("channel").String())
	}
	return strings.Join(cs, " ")
}

// WantPartialSubscribe subscribes id to the channels of allowed and of
// refused (channel -> error) in one message, and checks that only the
// refused ones were refused, each with its error in the reply's
// ext.rejected, and that the allowed ones were subscribed.
func (s *Server) WantPartialSubscribe(t testing.TB, id string, allowed []string, refused map[string]string) {
	t.Helper()
	all := slices.Clone(allowed)
	for ch := range refused {
		all = append(all, ch)
	}
	subs, _ := json.Marshal(all)
	r := s.Post(t, `{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":`+string(subs)+`}`).Get("0")
	if r.Get("successful").Bool() != (len(refused) == 0) {
		t.Errorf("subscribe %s: %s", subs, r.Raw)
	}
	got := map[string]string{}
	r.Get("ext.rejected").ForEach(func(k, v gjson.Result) bool {
		got[k.String()] = v.String()
		return true
	})
	if !maps.Equal(got, refused) && !(len(got) == 0 && len(refused) == 0) {
		t.Errorf("subscribe %s: refused %v, want %v (%s)", subs, got, refused, r.Raw)
	}
	for _, ch := range allowed {
		if !s.Session(id).Subscribed(ch) {
			t.Errorf("subscribe %s: %s not subscribed (%s)", subs, ch, r.Raw)
		}
	}
}
