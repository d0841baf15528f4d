package bayeux_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// serverName adds the server's name to the ext of every handshake reply,
// keeping what the server put there (such as {"ack": true}).
type serverName struct{ bayeux.NopExtension }

func (serverName) Outgoing(_ context.Context, r *bayeux.Reply) {
	if r.Channel != channels.MetaHandshake || !r.Successful {
		return
	}
	if r.Ext == "" {
		r.Ext = `{"server":"bayou-1"}`
	} else {
		r.Ext = r.Ext[:len(r.Ext)-1] + `,"server":"bayou-1"}`
	}
}

// Outgoing sees each reply before it is encoded, and may change it.
func ExampleExtension_outgoing() {
	srv := quietServer(serverName{})
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	post := poster(hs.URL + "/bayeux")
	plain := post(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`)
	acked := post(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"ack":true}}`)
	fmt.Println(gjson.Get(plain, "0.ext"))
	fmt.Println(gjson.Get(acked, "0.ext"))
	// Output:
	// {"server":"bayou-1"}
	// {"ack":true,"server":"bayou-1"}
}

// Events report what happens to this node's sessions, on the goroutine
// handling it, after it took effect.
func ExampleEvents() {
	srv, err := bayeux.New(bayeux.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Events: bayeux.Events{
			Handshake: func(s *bayeux.Session) { fmt.Println("handshake") },
			Subscribe: func(s *bayeux.Session, ch string) { fmt.Println("subscribe", ch) },
			Publish: func(s *bayeux.Session, ch string, data []byte) {
				fmt.Println("publish", ch, string(data), "by a client:", s != nil)
			},
			Unsubscribe: func(s *bayeux.Session, ch string) { fmt.Println("unsubscribe", ch) },
			Disconnect:  func(s *bayeux.Session, why bayeux.EndReason) { fmt.Println("disconnect:", why) },
		},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	post := poster(hs.URL + "/bayeux")
	id := handshake(post)
	post(`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/news/*"}`)
	post(`{"channel":"/news/today","clientId":"` + id + `","data":{"n":1}}`)
	_ = srv.Publish(context.Background(), "/news/today", 2)
	post(`{"channel":"/meta/disconnect","clientId":"` + id + `"}`)
	// Output:
	// handshake
	// subscribe /news/*
	// publish /news/today {"n":1} by a client: true
	// publish /news/today 2 by a client: false
	// unsubscribe /news/*
	// disconnect: disconnect
}

// A ServiceHandler's error is sent to the caller as the data of a reply
// that is not successful; its value otherwise.
func ExampleServiceHandler() {
	srv := quietServer()
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	err := srv.HandleService("/service/square", func(_ context.Context, m *bayeux.Message) (any, error) {
		n := gjson.Get(m.Data, "n")
		if n.Type != gjson.Number {
			return nil, errors.New("n must be a number")
		}
		return map[string]float64{"square": n.Num * n.Num}, nil
	})
	if err != nil {
		panic(err)
	}
	post := poster(hs.URL + "/bayeux")
	fmt.Println(gjson.Get(post(`{"channel":"/service/square","data":{"n":7},"id":"1"}`), "1"))
	fmt.Println(gjson.Get(post(`{"channel":"/service/square","data":{"n":"x"},"id":"2"}`), "1"))
	// Output:
	// {"id":"1","channel":"/service/square","successful":true,"data":{"square":49}}
	// {"id":"2","channel":"/service/square","successful":false,"data":"n must be a number"}
}
