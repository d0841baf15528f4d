package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestSilentWithoutLogger checks that a client given no logger writes
// nothing to slog.Default, through its life and its failures, and that
// WithLogger turns logs on. It changes slog.Default, so it does not run in
// parallel with other tests.
func TestSilentWithoutLogger(t *testing.T) {
	var global bayeuxtest.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&global, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	srv, bs := startInproc(t, bayeux.Config{RetryInterval: 50 * time.Millisecond}, nil)
	ctx := ctxTimeout(t, 10*time.Second)
	states := newStateLog()
	c, err := client.Dial(ctx, srv.url, client.WithStateFunc(states.add), client.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "/quiet", 1); err != nil {
		t.Fatal(err)
	}
	// A recovery, which the client logs when it has a logger.
	old1 := c.ClientID()
	if err := bs.Disconnect(ctx, old1); err != nil {
		t.Fatal(err)
	}
	states.waitFor(t, client.StateDisconnected, "")
	states.waitFor(t, client.StateConnected, "")
	_ = c.Close()
	// The client's lines carry its URL.
	if strings.Contains(global.String(), srv.url) {
		t.Errorf("a client without a logger wrote to slog.Default:\n%s", global.String())
	}

	var own bayeuxtest.Buffer
	c, err = client.Dial(ctx, srv.url, client.WithLogger(slog.New(slog.NewTextHandler(&own, nil))))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if !strings.Contains(own.String(), "bayeux client connected") {
		t.Errorf("WithLogger: the logger got %q, want the connection logged", own.String())
	}
}

// TestWithHTTPClient checks that the RoundTripper of the client given with
// WithHTTPClient carries every HTTP request, and that WebSockets are
// dialled with the dial function of its transport.
func TestWithHTTPClient(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run("round tripper/"+string(tr), func(t *testing.T) {
			t.Parallel()
			var outside atomic.Int32 // requests that bypassed the RoundTripper
			srv, _ := startInproc(t, bayeux.Config{}, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Upgrade") == "" && r.Header.Get("X-Via") != "rt" {
						outside.Add(1)
					}
					h.ServeHTTP(w, r)
				})
			})
			base := http.DefaultTransport.(*http.Transport).Clone()
			t.Cleanup(base.CloseIdleConnections) // after the client's Close
			var carried atomic.Int32
			rt := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				carried.Add(1)
				r = r.Clone(r.Context())
				r.Header.Set("X-Via", "rt")
				return base.RoundTrip(r)
			})
			c := dial(t, srv.url, tr, client.WithHTTPClient(&http.Client{Transport: rt}))
			if _, err := c.Publish(ctxTimeout(t, 10*time.Second), "/rt", 1); err != nil {
				t.Fatal(err)
			}
			if carried.Load() == 0 || outside.Load() != 0 {
				t.Errorf("the RoundTripper carried %d requests, %d went around it", carried.Load(), outside.Load())
			}
		})
	}
	t.Run("websocket dial", func(t *testing.T) {
		t.Parallel()
		srv, _ := startInproc(t, bayeux.Config{}, nil)
		base := http.DefaultTransport.(*http.Transport).Clone()
		t.Cleanup(base.CloseIdleConnections)
		var dials atomic.Int32
		netDial := base.DialContext
		base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return netDial(ctx, network, addr)
		}
		var requests atomic.Int32
		c := dial(t, srv.url, client.TransportWebSocket, client.WithHTTPClient(&http.Client{Transport: base}),
			client.WithExtension(client.Extension{Outgoing: func(m *client.Message) {
				if m.Channel == "/meta/handshake" {
					requests.Add(1)
				}
			}}))
		if _, err := c.Publish(ctxTimeout(t, 10*time.Second), "/rt", 1); err != nil {
			t.Fatal(err)
		}
		// One connection for the handshake, one for the socket.
		if n := dials.Load(); n != requests.Load()+1 {
			t.Errorf("%d dials for %d handshakes: the WebSocket was not dialled with the transport's DialContext", n, requests.Load())
		}
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestWithDialer checks that WebSockets are opened with the dialer given
// with WithDialer.
func TestWithDialer(t *testing.T) {
	t.Parallel()
	srv, _ := startInproc(t, bayeux.Config{}, nil)
	var dials atomic.Int32
	d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var nd net.Dialer
		return nd.DialContext(ctx, network, addr)
	}}
	c := dial(t, srv.url, client.TransportWebSocket, client.WithDialer(d))
	in := newInbox()
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := c.Subscribe(ctx, "/dialer", in.handler); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "/dialer", 1); err != nil {
		t.Fatal(err)
	}
	in.next(t, 5*time.Second)
	if n := dials.Load(); n != 1 {
		t.Errorf("the dialer opened %d connections, want 1", n)
	}
}

func TestConnectionOptionErrors(t *testing.T) {
	t.Parallel()
	bad := [][]client.Option{
		{client.WithHTTPClient(nil)},
		{client.WithDialer(nil)},
		{client.WithHTTPClient(&http.Client{}), client.WithTLSConfig(&tls.Config{})},
	}
	for i, opts := range bad {
		if c, err := client.New("http://127.0.0.1/bayeux", opts...); err == nil {
			_ = c.Close()
			t.Errorf("options %d accepted", i)
		} else if strings.Count(err.Error(), "client:") != 1 {
			t.Errorf("options %d: error %q", i, err)
		}
	}
}

// TestErrorText checks that errors name the package and the operation
// once, and still match the sentinel errors.
func TestErrorText(t *testing.T) {
	t.Parallel()
	srv, _ := startInproc(t, bayeux.Config{}, nil)
	ctx := ctxTimeout(t, 10*time.Second)
	c := dial(t, srv.url, client.TransportLongPolling)
	sub, err := c.Subscribe(ctx, "/t/sub", func(*client.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	_, forbidden := c.Publish(ctx, "/meta/x", 1)
	_ = c.Close()
	_, published := c.Publish(ctx, "/t/x", 1)
	async := (<-c.PublishAsync(ctx, "/t/y", 1)).Err
	_, subscribed := c.Subscribe(ctx, "/t/z", func(*client.Message) {})

	refused, _ := startInproc(t, bayeux.Config{Extensions: []bayeux.Extension{handshakeRefusal{}}}, nil)
	_, dialed := client.Dial(ctx, refused.url)

	var berr *client.Error
	tests := []struct {
		name string
		err  error
		want string
		is   error
	}{
		{"refused publish", forbidden, "client: publish /meta/x: 403:/meta/x:Forbidden channel", nil},
		{"publish after Close", published, "client: publish /t/x: client closed", client.ErrClosed},
		{"async publish after Close", async, "client: publish /t/y: client closed", client.ErrClosed},
		{"subscribe after Close", subscribed, "client: subscribe /t/z: client closed", client.ErrClosed},
		{"cancelled subscription", sub.Err(), "unsubscribed", client.ErrUnsubscribed},
		{"refused handshake", dialed, "client: dial " + refused.url + ": server advised not to reconnect: handshake: 401::Access denied", client.ErrStopped},
	}
	for _, tc := range tests {
		switch {
		case tc.err == nil:
			t.Errorf("%s: no error", tc.name)
		case tc.err.Error() != tc.want:
			t.Errorf("%s: error %q, want %q", tc.name, tc.err, tc.want)
		case tc.is != nil && !errors.Is(tc.err, tc.is):
			t.Errorf("%s: %v does not match %v", tc.name, tc.err, tc.is)
		}
	}
	if !errors.As(forbidden, &berr) || berr.Code != client.CodeForbidden {
		t.Errorf("refused publish: %v, want an *Error with CodeForbidden", forbidden)
	}
	if !errors.As(dialed, &berr) || berr.Code != client.CodeUnknownClient {
		t.Errorf("refused handshake: %v, want an *Error with CodeUnknownClient", dialed)
	}
}

// TestTransportNames checks the typed connection types against the names
// on the wire and the untyped constants kept for compatibility.
func TestTransportNames(t *testing.T) {
	t.Parallel()
	old := []client.Transport{client.WebSocket, client.LongPolling}
	if client.TransportWebSocket != "websocket" || client.TransportLongPolling != "long-polling" ||
		old[0] != client.TransportWebSocket || old[1] != client.TransportLongPolling {
		t.Error("connection type names differ from the protocol's")
	}
	srv, _ := startInproc(t, bayeux.Config{}, nil)
	for _, tr := range transports {
		states := newStateLog()
		c := dial(t, srv.url, tr, client.WithStateFunc(states.add))
		if sc := states.waitFor(t, client.StateConnected, ""); sc.Transport != tr || c.Transport() != tr {
			t.Errorf("connected over %q (Transport() %q), want %q", sc.Transport, c.Transport(), tr)
		}
	}
}
