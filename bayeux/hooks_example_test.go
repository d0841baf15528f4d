package bayeux_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// privateGuard rejects, one by one, the channels of a subscribe that reach
// /private/**, wildcards included.
type privateGuard struct{ bayeux.NopExtension }

func (privateGuard) Incoming(_ context.Context, m *bayeux.Message) {
	if m.Channel != channels.MetaSubscribe {
		return
	}
	for _, ch := range m.Subscriptions() {
		if channels.Reaches(ch, "/private/**") {
			m.RejectChannel(ch, bayeux.ErrorForbidden(ch))
		}
	}
}

// An extension may reject some channels of a subscribe and let the others
// through: the reply fails, names the first rejection in its error and
// every rejection in ext.rejected, and the other channels are subscribed.
func ExampleMessage_RejectChannel() {
	srv := quietServer(privateGuard{})
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	post := poster(hs.URL + "/bayeux")
	id := handshake(post)
	reply := gjson.Get(post(`{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":["/chat","/**"]}`), "0")
	fmt.Println(reply.Get("successful"), reply.Get("error"))
	fmt.Println(reply.Get("ext.rejected"))
	fmt.Println(srv.Session(id).Subscriptions())
	// Output:
	// false 403:/**:Forbidden channel
	// {"/**":"403:/**:Forbidden channel"}
	// [/chat]
}

// alertsGuard lets only the server publish on /alerts/**.
type alertsGuard struct{ bayeux.NopExtension }

func (alertsGuard) Incoming(_ context.Context, m *bayeux.Message) {
	if strings.HasPrefix(m.Channel, "/alerts/") && !m.FromServer() {
		m.Error = bayeux.ErrorForbidden(m.Channel)
	}
}

// FromServer tells the server's own publishes from clients' messages.
func ExampleMessage_FromServer() {
	srv := quietServer(alertsGuard{})
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	post := poster(hs.URL + "/bayeux")
	fmt.Println(post(`{"channel":"/alerts/fire","data":"from a client"}`))
	fmt.Println(srv.Publish(context.Background(), "/alerts/fire", "from the server"))
	// Output:
	// [{"channel":"/alerts/fire","successful":false,"error":"403:/alerts/fire:Forbidden channel"}]
	// <nil>
}

// tenants keeps the tenant a client named at handshake on its session, and
// stamps it on the client's publishes; the ext the client sent itself is
// not forwarded to subscribers.
type tenants struct{ bayeux.NopExtension }

func (tenants) Incoming(_ context.Context, m *bayeux.Message) {
	switch {
	case m.Channel == channels.MetaHandshake:
		m.Session.Set("tenant", m.ExtString("auth", "tenant"))
	case !channels.IsMeta(m.Channel) && m.Session != nil:
		if t, ok := m.Session.Get("tenant"); ok {
			m.SetExt("tenant", fmt.Sprintf("%q", t))
		}
	}
}

// Session attributes keep an extension's state between the messages of a
// client.
func ExampleSession_Set() {
	srv := quietServer(tenants{})
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	post := poster(hs.URL + "/bayeux")
	hs1 := post(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"auth":{"tenant":"acme"}}}`)
	id := gjson.Get(hs1, "0.clientId").String()
	post(`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/news"}`)
	post(`{"channel":"/news","clientId":"` + id + `","data":"hi","ext":{"token":"s3cret"}}`)
	connect := post(`{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling","advice":{"timeout":0}}`)
	fmt.Println(gjson.Get(connect, `#(channel=="/news")`))
	// Output: {"channel":"/news","data":"hi","ext":{"tenant":"acme"}}
}
