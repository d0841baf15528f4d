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
	c, err := client.Dial(ctx, ts.URL+"/bayeux", client.WithLogger(quiet), client.WithTransports(client.TransportLongPolling))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.Subscribe(ctx, "/meta/secret", func(*client.Message) {})
	var berr *client.Error
	if errors.As(err, &berr) {
		fmt.Println(berr.Code, berr.Args, berr.Message, berr.Code == client.CodeForbidden)
	}
	// Output:
	// 403 [/meta/secret] Forbidden channel true
}

// On a channel the server keeps history for, ReplayAll first delivers the
// retained messages, each with its Position; an application that saves the
// position of the last message it processed resumes after it with
// ReplayAfter (here on the same client, after cancelling).
func ExampleReplayAfter() {
	quiet := slog.New(slog.DiscardHandler)
	srv, err := bayeux.New(bayeux.Config{Timeout: 2 * time.Second, Logger: quiet,
		History: []bayeux.HistoryRule{{Pattern: "/news/**", Size: 100}}})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{"a", "b", "c"} {
		if err := srv.Publish(ctx, "/news/today", s); err != nil {
			log.Fatal(err)
		}
	}
	c, err := client.Dial(ctx, ts.URL+"/bayeux", client.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	got := make(chan *client.Message, 3)
	sub, err := c.Subscribe(ctx, "/news/today", func(m *client.Message) { got <- m }, client.ReplayAll())
	if err != nil {
		log.Fatal(err)
	}
	var saved client.Position
	for range 3 {
		m := <-got
		pos, _ := m.Position()
		fmt.Println(pos.ReplayID, string(m.Data))
		if string(m.Data) == `"a"` {
			saved = pos
		}
	}
	if err := sub.Cancel(ctx); err != nil {
		log.Fatal(err)
	}

	if _, err := c.Subscribe(ctx, "/news/today", func(m *client.Message) { got <- m }, client.ReplayAfter(saved)); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		fmt.Println("again:", string((<-got).Data))
	}
	// Output:
	// 1 "a"
	// 2 "b"
	// 3 "c"
	// again: "b"
	// again: "c"
}
