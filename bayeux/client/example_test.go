package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/bayeux/client"
)

// This example starts a Bayou server in the process, connects a client to
// it, subscribes to a wildcard pattern and publishes a message.
func Example() {
	quiet := slog.New(slog.DiscardHandler)
	srv, err := bayeux.New(bayeux.Config{Mount: "/bayeux", Timeout: 2 * time.Second, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv) // listens on 127.0.0.1
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, ts.URL+"/bayeux", client.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	got := make(chan *client.Message, 1)
	sub, err := c.Subscribe(ctx, "/greetings/*", func(m *client.Message) { got <- m })
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Publish(ctx, "/greetings/world", map[string]string{"text": "hello"}); err != nil {
		log.Fatal(err)
	}
	m := <-got
	fmt.Println(m.Channel, string(m.Data))

	if err := sub.Cancel(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("transport:", c.Transport())
	// Output:
	// /greetings/world {"text":"hello"}
	// transport: websocket
}

// Publishing to a channel the server forbids returns an *Error carrying
// the Bayeux error code.
func ExampleError() {
	quiet := slog.New(slog.DiscardHandler)
	srv, err := bayeux.New(bayeux.Config{Timeout: 2 * time.Second, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, ts.URL+"/bayeux", client.WithLogger(quiet), client.WithTransports(client.LongPolling))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.Subscribe(ctx, "/meta/secret", func(*client.Message) {})
	var berr *client.Error
	if errors.As(err, &berr) {
		fmt.Println(berr.Code, berr.Args, berr.Message)
	}
	// Output:
	// 403 [/meta/secret] Forbidden channel
}
