package bayeux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bayou-pubsub/bayou/channels"
)

// localSub is an in-process subscription made with Server.Subscribe.
type localSub struct {
	pattern string
	handler func(*Message)
}

// locals holds the in-process subscribers and the /service handlers.
type locals struct {
	subs  *channels.Index[*localSub]
	count atomic.Int64

	mu       sync.RWMutex
	services []service
}

type service struct {
	pattern string
	handler ServiceHandler
}

func (l *locals) active() bool { return l.count.Load() > 0 }

// dispatch calls the in-process subscribers whose pattern matches m's
// channel.
func (l *locals) dispatch(m *Message) {
	if !l.active() {
		return
	}
	for _, ls := range l.subs.AppendMatch(nil, m.Channel) {
		ls.handler(m)
	}
}

// ServiceHandler answers a message published to a /service channel, as a
// CometD client's remoteCall expects: the value it returns (marshalled to
// JSON, or a json.RawMessage as is) is sent to the publisher as the data of
// a message with the request's channel and id. A non-nil error sends its
// text as data with successful false. It runs on the goroutine handling the
// request, so keep it short. ctx is the one the extension hooks of the
// batch get (see Extension): the request's values, ended by the server's
// shutdown or Config.HookTimeout. (A WebSocket keeps its upgrade request,
// and so its values, only when extensions are configured.)
type ServiceHandler func(ctx context.Context, m *Message) (any, error)

// serviceFor returns the handler for a /service channel: an exact match
// first, then the first registered pattern that matches.
func (l *locals) serviceFor(channel string) ServiceHandler {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, sv := range l.services {
		if sv.pattern == channel {
			return sv.handler
		}
	}
	for _, sv := range l.services {
		if channels.Match(sv.pattern, channel) {
			return sv.handler
		}
	}
	return nil
}

// callService runs the handler of m's /service channel, if any, and sends
// its answer with the replies of this exchange.
func (x *exchange) callService(m *Message) {
	h := x.srv.local.serviceFor(m.Channel)
	if h == nil {
		return
	}
	r := Reply{ID: m.ID, Channel: m.Channel, Successful: true, Session: m.Session}
	v, err := h(x.hookContext(), m)
	if err != nil {
		r.Successful = false
		v = err.Error()
	}
	data, merr := rawJSON(v)
	if merr != nil {
		x.srv.log.Warn("service reply is not JSON", "channel", m.Channel, "err", merr)
		r.Successful, data = false, `"internal error"`
	}
	r.Data = data
	x.add(&r)
}

// rawJSON returns the JSON text of v: a json.RawMessage as is (when valid;
// invalid UTF-8 becomes U+FFFD), anything else marshalled.
func rawJSON(v any) (string, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return "", errors.New("bayeux: invalid JSON in json.RawMessage")
		}
		return validUTF8(string(raw)), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("bayeux: encoding data: %w", err)
	}
	return string(b), nil
}
