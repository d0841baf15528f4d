package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// Collector is a prometheus.Collector of a Bayeux server's figures: it
// reads bayeux.Server.Stats at each collection, so the server does no work
// for metrics while nobody scrapes. Register it on a prometheus.Registerer,
// or serve it with Handler.
type Collector struct {
	srv *bayeux.Server
}

// NewCollector returns the collector of srv's figures.
func NewCollector(srv *bayeux.Server) *Collector { return &Collector{srv: srv} }

// desc describes one metric of the collector.
type desc struct {
	*prometheus.Desc
	kind prometheus.ValueType
}

func newDesc(name, help string, kind prometheus.ValueType, labels ...string) desc {
	return desc{Desc: prometheus.NewDesc(name, help, labels, nil), kind: kind}
}

// The collector's metrics. Names are listed in the package documentation.
var (
	connections = newDesc("bayou_connections", "Connections open now, by transport: WebSockets, long-polling and callback-polling requests being answered (held connects among them), EventSource streams.", prometheus.GaugeValue, "transport")
	sessions    = newDesc("bayou_sessions", "Sessions (clientIds) on this node.", prometheus.GaugeValue)
	subscripts  = newDesc("bayou_subscriptions", "Subscriptions of this node's sessions (a session subscribed to 3 channels counts 3).", prometheus.GaugeValue)
	chans       = newDesc("bayou_channels", "Channel names and patterns that at least one session of this node subscribes to.", prometheus.GaugeValue)
	queued      = newDesc("bayou_queued_bytes", "Message bytes held for this node's sessions: waiting for a connection, held back during a replay, or not yet acknowledged.", prometheus.GaugeValue)
	held        = newDesc("bayou_held_connects", "/meta/connect requests held now, waiting for messages or their timeout.", prometheus.GaugeValue)
	received    = newDesc("bayou_messages_received_total", "Messages received from clients, by type: handshake, connect, subscribe, unsubscribe, disconnect, other_meta, publish (any channel outside /meta).", prometheus.CounterValue, "type")
	published   = newDesc("bayou_publishes_total", "Publishes accepted, from clients and the server's API, /service channels included.", prometheus.CounterValue)
	delivered   = newDesc("bayou_deliveries_total", "Published messages written to clients, by transport (a message sent again for the ack extension counts again).", prometheus.CounterValue, "transport")
	written     = newDesc("bayou_written_bytes_total", "Bytes written to clients, by transport: replies and messages with their transport framing, without HTTP headers.", prometheus.CounterValue, "transport")
	handshakes  = newDesc("bayou_handshakes_total", "Successful handshakes.", prometheus.CounterValue)
	errs        = newDesc("bayou_errors_total", "Unsuccessful replies, by Bayeux error code (none: the error had no code).", prometheus.CounterValue, "code")
	rejections  = newDesc("bayou_extension_rejections_total", "Messages and channels refused by extensions, by Bayeux error code (none: the error had no code).", prometheus.CounterValue, "code")
	ended       = newDesc("bayou_sessions_ended_total", "Sessions ended, by reason: disconnect, expired, slow_consumer (queue over --max-queue-bytes), server (the server's API).", prometheus.CounterValue, "reason")
	replayed    = newDesc("bayou_replayed_messages_total", "Messages replayed from history to subscribers that asked for them.", prometheus.CounterValue)
	ackBatches  = newDesc("bayou_ack_resent_batches_total", "Batches of acknowledging sessions sent again because they were not acknowledged.", prometheus.CounterValue)
	ackMessages = newDesc("bayou_ack_resent_messages_total", "Messages in the batches sent again for the ack extension.", prometheus.CounterValue)

	engineRoundTrips = newDesc("bayou_engine_round_trips_total", "Requests the cluster engine sent to its store (Redis), each one command or a pipeline of commands.", prometheus.CounterValue)
	engineCommands   = newDesc("bayou_engine_commands_total", "Commands the cluster engine sent to its store (Redis).", prometheus.CounterValue)
	engineErrors     = newDesc("bayou_engine_errors_total", "Commands of the cluster engine that failed: a timeout, a broken connection or an error reply.", prometheus.CounterValue)
	engineReconnects = newDesc("bayou_engine_reconnects_total", "Times the cluster engine's pub/sub connection was lost and opened again.", prometheus.CounterValue)
	engineNodes      = newDesc("bayou_engine_nodes", "Live nodes of the cluster, this one included, as of the last heartbeat.", prometheus.GaugeValue)
)

var allDescs = []desc{
	connections, sessions, subscripts, chans, queued, held,
	received, published, delivered, written, handshakes, errs, rejections, ended,
	replayed, ackBatches, ackMessages,
	engineRoundTrips, engineCommands, engineErrors, engineReconnects, engineNodes,
}

// Describe sends the descriptions of every metric the collector may
// collect.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d.Desc
	}
}

// Collect reads the server's Stats once and sends its metrics. The engine's
// metrics are sent only when the engine reports them (the Redis engine
// does).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	send := func(d desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d.Desc, d.kind, v, labels...)
	}
	byTransport := func(d desc, t bayeux.TransportCounts) {
		send(d, float64(t.WebSocket), "websocket")
		send(d, float64(t.LongPolling), "long-polling")
		send(d, float64(t.CallbackPolling), "callback-polling")
		send(d, float64(t.EventSource), "eventsource")
	}
	byCode := func(d desc, m map[int]uint64) {
		for code, n := range m {
			send(d, float64(n), codeLabel(code))
		}
	}
	byTransport(connections, st.Connections)
	send(sessions, float64(st.Sessions))
	send(subscripts, float64(st.Subscriptions))
	send(chans, float64(st.Channels))
	send(queued, float64(st.QueuedBytes))
	send(held, float64(st.HeldConnects))
	r := st.Received
	send(received, float64(r.Handshake), "handshake")
	send(received, float64(r.Connect), "connect")
	send(received, float64(r.Subscribe), "subscribe")
	send(received, float64(r.Unsubscribe), "unsubscribe")
	send(received, float64(r.Disconnect), "disconnect")
	send(received, float64(r.OtherMeta), "other_meta")
	send(received, float64(r.Publish), "publish")
	send(published, float64(st.Published))
	byTransport(delivered, st.Delivered)
	byTransport(written, st.BytesWritten)
	send(handshakes, float64(st.Handshakes))
	byCode(errs, st.Errors)
	byCode(rejections, st.Rejections)
	e := st.SessionsEnded
	send(ended, float64(e.Disconnect), "disconnect")
	send(ended, float64(e.Expired), "expired")
	send(ended, float64(e.Slow), "slow_consumer")
	send(ended, float64(e.Server), "server")
	send(replayed, float64(st.Replayed))
	send(ackBatches, float64(st.AckResentBatches))
	send(ackMessages, float64(st.AckResentMessages))
	if en := st.Engine; en != nil {
		send(engineRoundTrips, float64(en.RoundTrips))
		send(engineCommands, float64(en.Commands))
		send(engineErrors, float64(en.Errors))
		send(engineReconnects, float64(en.Reconnects))
		send(engineNodes, float64(en.Nodes))
	}
}

// codeLabel is the label of a Bayeux error code: its 3 digits, or "none".
func codeLabel(code int) string {
	if code == 0 {
		return "none"
	}
	return strconv.Itoa(code)
}

// Option changes what Handler serves.
type Option func(*options)

type options struct {
	runtime bool
	extra   []prometheus.Collector
}

// WithoutRuntime leaves out the Go runtime (go_*) and process (process_*)
// metrics, which Handler serves by default.
func WithoutRuntime() Option { return func(o *options) { o.runtime = false } }

// WithCollectors adds collectors of the application's own to those Handler
// serves.
func WithCollectors(cs ...prometheus.Collector) Option {
	return func(o *options) { o.extra = append(o.extra, cs...) }
}

// maxScrapes bounds the scrapes served at once: each reads every session.
const maxScrapes = 4

// Handler returns an http.Handler that serves srv's metrics, with the Go
// runtime and process metrics, in the Prometheus exposition formats (text,
// or protobuf and OpenMetrics when the scraper asks). It uses a registry of
// its own, not prometheus.DefaultRegisterer. It panics if a collector given
// WithCollectors cannot be registered (a duplicate metric name).
func Handler(srv *bayeux.Server, opts ...Option) http.Handler {
	o := options{runtime: true}
	for _, opt := range opts {
		opt(&o)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(srv))
	if o.runtime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	reg.MustRegister(o.extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: maxScrapes})
}
