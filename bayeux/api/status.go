package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// topChannels is how many channels /status.json lists, those with the
// most subscribers.
const topChannels = 10

// status is the answer of GET /status.json: the figures of the status
// page. Counters count since the server started; the page turns them into
// rates.
type status struct {
	Time            time.Time      `json:"time"`
	UptimeSeconds   float64        `json:"uptimeSeconds"`
	Version         string         `json:"version,omitempty"`
	Connections     transports     `json:"connections"`
	Sessions        int            `json:"sessions"`
	ClusterSessions int            `json:"clusterSessions"`
	Subscriptions   int            `json:"subscriptions"`
	Channels        int            `json:"channels"`
	HeldConnects    int            `json:"heldConnects"`
	QueuedBytes     int64          `json:"queuedBytes"`
	Received        received       `json:"received"`
	Published       uint64         `json:"published"`
	Delivered       transports     `json:"delivered"`
	DeliveredTotal  uint64         `json:"deliveredTotal"`
	BytesWritten    transports     `json:"bytesWritten"`
	SlowDrops       uint64         `json:"slowConsumerDrops"`
	SessionsEnded   ended          `json:"sessionsEnded"`
	Errors          []codeCount    `json:"errors"`
	TopChannels     []channelCount `json:"topChannels"`
	Cluster         *clusterStatus `json:"cluster"`
}

// transports is bayeux.TransportCounts in JSON.
type transports struct {
	WebSocket       uint64 `json:"websocket"`
	LongPolling     uint64 `json:"longPolling"`
	CallbackPolling uint64 `json:"callbackPolling"`
	EventSource     uint64 `json:"eventSource"`
}

// received is bayeux.MessageCounts in JSON.
type received struct {
	Handshake   uint64 `json:"handshake"`
	Connect     uint64 `json:"connect"`
	Subscribe   uint64 `json:"subscribe"`
	Unsubscribe uint64 `json:"unsubscribe"`
	Disconnect  uint64 `json:"disconnect"`
	OtherMeta   uint64 `json:"otherMeta"`
	Publish     uint64 `json:"publish"`
}

// ended is bayeux.EndCounts in JSON.
type ended struct {
	Disconnect uint64 `json:"disconnect"`
	Expired    uint64 `json:"expired"`
	Slow       uint64 `json:"slowConsumer"`
	Server     uint64 `json:"server"`
}

// codeCount is the count of one Bayeux error code.
type codeCount struct {
	Code  int    `json:"code"`
	Count uint64 `json:"count"`
}

// clusterStatus describes the cluster when the engine reports figures
// (the Redis engine does).
type clusterStatus struct {
	Node       string `json:"node,omitempty"`
	LiveNodes  int    `json:"liveNodes"`
	RoundTrips uint64 `json:"roundTrips"`
	Errors     uint64 `json:"errors"`
	Reconnects uint64 `json:"reconnects"`
}

// nodeIDer is implemented by engines that name their node (the Redis
// engine).
type nodeIDer interface{ NodeID() string }

// statusMaxAge is how long a status answer is reused: Server.Stats looks
// at every session, so however many status pages are open, it runs at
// most about twice a second.
const statusMaxAge = 500 * time.Millisecond

// statusCache holds the last status answer.
type statusCache struct {
	mu sync.Mutex
	at time.Time // when st was made; zero: never
	st status
}

// statusJSON answers GET /status.json.
func (h *handler) statusJSON(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	c := &h.status
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); c.at.IsZero() || now.Sub(c.at) >= statusMaxAge || now.Before(c.at) {
		st, err := h.currentStatus(r.Context(), now)
		if err != nil {
			return err
		}
		c.at, c.st = now, st
	}
	writeEscapedJSON(w, c.st)
	return nil
}

// currentStatus assembles the status at now.
func (h *handler) currentStatus(ctx context.Context, now time.Time) (status, error) {
	sessions, counts, err := h.srv.Counts(ctx)
	if err != nil {
		return status{}, fmt.Errorf("counting subscribers: %w", err)
	}
	node := ""
	if n, ok := h.srv.Engine().(nodeIDer); ok {
		node = n.NodeID()
	}
	st := buildStatus(h.srv.Stats(), sessions, counts, node)
	st.Time = now.UTC()
	st.UptimeSeconds = now.Sub(h.started).Seconds()
	st.Version = h.version
	return st, nil
}

// buildStatus assembles the status from the server's figures: st, and
// the cluster's session count and subscribers per channel (Server.Counts).
func buildStatus(st bayeux.Stats, sessions int, counts map[string]int, node string) status {
	s := status{
		Connections:     transports(st.Connections),
		Sessions:        st.Sessions,
		ClusterSessions: sessions,
		Subscriptions:   st.Subscriptions,
		Channels:        st.Channels,
		HeldConnects:    st.HeldConnects,
		QueuedBytes:     st.QueuedBytes,
		Received:        received(st.Received),
		Published:       st.Published,
		Delivered:       transports(st.Delivered),
		BytesWritten:    transports(st.BytesWritten),
		SlowDrops:       st.SessionsEnded.Slow,
		SessionsEnded:   ended(st.SessionsEnded),
		Errors:          []codeCount{},
		TopChannels:     top(counts, topChannels),
	}
	d := st.Delivered
	s.DeliveredTotal = d.WebSocket + d.LongPolling + d.CallbackPolling + d.EventSource
	for code, n := range st.Errors {
		s.Errors = append(s.Errors, codeCount{Code: code, Count: n})
	}
	slices.SortFunc(s.Errors, func(a, b codeCount) int { return a.Code - b.Code })
	if e := st.Engine; e != nil {
		s.Cluster = &clusterStatus{Node: node, LiveNodes: e.Nodes, RoundTrips: e.RoundTrips, Errors: e.Errors,
			Reconnects: e.Reconnects}
	}
	return s
}

// top returns the n channels with the most subscribers, most first, ties
// in name order.
func top(counts map[string]int, n int) []channelCount {
	list := make([]channelCount, 0, len(counts))
	for ch, k := range counts {
		list = append(list, channelCount{Channel: ch, Subscribers: k})
	}
	slices.SortFunc(list, func(a, b channelCount) int {
		if a.Subscribers != b.Subscribers {
			return b.Subscribers - a.Subscribers
		}
		return strings.Compare(a.Channel, b.Channel)
	})
	return list[:min(n, len(list))]
}

// writeEscapedJSON answers v as JSON with < > & escaped (\u003c...):
// the status page shows channel names, which come from clients, so its
// data carries no markup even if a reader mistook it for HTML.
func writeEscapedJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		// Only the API's own types are encoded: this is a bug.
		writeJSON(w, http.StatusInternalServerError, struct {
			Error errorBody `json:"error"`
		}{errorBody{Code: codeInternal, Message: "encoding the response failed"}})
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
