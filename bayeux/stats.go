package bayeux

import (
	"sync/atomic"

	"github.com/bayou-pubsub/bayou/channels"
)

// Stats is a snapshot of a server's activity on this node, for monitoring
// (the bayeux/metrics package exports it to Prometheus). Counters (the
// fields documented as "since the server started") only grow; the other
// fields are gauges, computed when Stats is called.
type Stats struct {
	// Connections is the number of connections open now, by transport:
	// WebSockets on this node, long-polling and callback-polling requests
	// being answered (held connects among them), EventSource streams.
	Connections TransportCounts
	// Sessions is the number of sessions on this node.
	Sessions int
	// Subscriptions is the number of subscriptions of this node's
	// sessions (a session subscribed to 3 channels counts 3).
	Subscriptions int
	// Channels is the number of channel names and patterns that at least
	// one session of this node subscribes to.
	Channels int
	// QueuedBytes is the number of message bytes that this node holds for
	// its sessions: waiting for a connection, held back during a replay,
	// or sent and not yet acknowledged. Each session's share counts
	// against Config.MaxQueueBytes.
	QueuedBytes int64
	// HeldConnects is the number of /meta/connect requests held now,
	// waiting for messages or for their timeout.
	HeldConnects int

	// Received counts the messages received from clients, by kind, since
	// the server started. Messages of the server's own publishes (Publish)
	// are not counted.
	Received MessageCounts
	// Published counts the publishes accepted (answered successful), from
	// clients and from Publish, since the server started; messages to
	// /service channels count too.
	Published uint64
	// Delivered counts the published messages written to clients, by
	// transport, since the server started; a message sent again (see
	// AckResentMessages) counts again. A session's deliveries count on the
	// node that owns it, whichever node holds its connection.
	Delivered TransportCounts
	// BytesWritten counts the bytes written to clients, by transport,
	// since the server started: replies and messages as JSON, with the
	// WebSocket frame headers, the JSONP callback and the EventSource
	// framing and keep-alives, but without HTTP headers.
	BytesWritten TransportCounts
	// Handshakes counts the successful handshakes since the server
	// started.
	Handshakes uint64
	// Errors counts the unsuccessful replies since the server started, by
	// Bayeux error code (402 for "402:clientId:Missing required
	// parameter"); code 0 counts errors without a 3-digit code.
	Errors map[int]uint64
	// Rejections counts the messages and channels that extensions refused
	// (with Message.Error or Message.RejectChannel) since the server
	// started, by the code of the error they gave (0 when it has none).
	Rejections map[int]uint64
	// SessionsEnded counts the sessions ended since the server started, by
	// reason.
	SessionsEnded EndCounts
	// Replayed counts the messages that subscribes with a replay queued
	// from history since the server started.
	Replayed uint64
	// AckResentBatches counts, since the server started, the batches of
	// acknowledging sessions that were sent and not acknowledged, and so
	// sent again; AckResentMessages counts their messages.
	AckResentBatches  uint64
	AckResentMessages uint64

	// Engine holds the engine's figures when it reports them (it is an
	// EngineStatser), else nil.
	Engine *EngineStats
}

// TransportCounts holds one number per transport. Cross-origin
// long-polling counts as long-polling.
type TransportCounts struct {
	WebSocket       uint64 // websocket
	LongPolling     uint64 // long-polling and cross-origin-long-polling
	CallbackPolling uint64 // callback-polling (JSONP)
	EventSource     uint64 // eventsource streams
}

// MessageCounts holds one number per kind of message.
type MessageCounts struct {
	Handshake   uint64 // /meta/handshake
	Connect     uint64 // /meta/connect
	Subscribe   uint64 // /meta/subscribe
	Unsubscribe uint64 // /meta/unsubscribe
	Disconnect  uint64 // /meta/disconnect
	OtherMeta   uint64 // any other /meta channel (answered 403)
	Publish     uint64 // any channel outside /meta, /service included
}

// EndCounts holds one number per EndReason.
type EndCounts struct {
	Disconnect uint64 // EndDisconnect
	Expired    uint64 // EndExpired
	Slow       uint64 // EndSlow: the queue passed Config.MaxQueueBytes
	Server     uint64 // EndServer
}

// EngineStats are the figures an engine reports about its work (see
// EngineStatser). Counters count since the engine was created.
type EngineStats struct {
	// RoundTrips counts the requests sent to the engine's store, each a
	// command or a pipeline of commands sent together.
	RoundTrips uint64
	// Commands counts the commands those requests carried.
	Commands uint64
	// Errors counts the commands that failed (a timeout, a broken
	// connection or an error reply).
	Errors uint64
	// Reconnects counts the times the engine's subscribing connection was
	// lost and opened again.
	Reconnects uint64
	// Nodes is the number of live nodes of the cluster, this one included,
	// as last seen; 0 when not known yet.
	Nodes int
}

// EngineStatser is implemented by engines that report figures about their
// work, which Server.Stats includes (the Redis engine does). EngineStats
// must be cheap and safe for concurrent use: it is called at each scrape.
type EngineStatser interface {
	EngineStats() EngineStats
}

// transport numbers the transports in the server's counters.
type transport int

const (
	trWebSocket transport = iota
	trLongPolling
	trCallbackPolling
	trEventSource
	numTransports
)

// messageKind numbers the kinds of MessageCounts.
type messageKind int

const (
	kindHandshake messageKind = iota
	kindConnect
	kindSubscribe
	kindUnsubscribe
	kindDisconnect
	kindOtherMeta
	kindPublish
	numKinds
)

// numEndReasons is the number of EndReasons.
const numEndReasons = int(EndServer) + 1

// codeCounts counts errors by their 3-digit code (0: no code).
type codeCounts [1000]atomic.Uint64

// add counts one error of the Bayeux error string msg.
func (c *codeCounts) add(msg string) { c[errorCode(msg)].Add(1) }

// snapshot returns the non-zero counts by code, nil when there are none.
func (c *codeCounts) snapshot() map[int]uint64 {
	var m map[int]uint64
	for code := range c {
		if n := c[code].Load(); n > 0 {
			if m == nil {
				m = make(map[int]uint64)
			}
			m[code] = n
		}
	}
	return m
}

// errorCode returns the code of a Bayeux error string "<code>:<args>:<text>",
// or 0 when it does not start with 3 digits and a colon.
func errorCode(msg string) int {
	if len(msg) < 4 || msg[3] != ':' {
		return 0
	}
	code := 0
	for i := range 3 {
		c := msg[i]
		if c < '0' || c > '9' {
			return 0
		}
		code = code*10 + int(c-'0')
	}
	return code
}

// counters are the server's counters. Each is an atomic, added to once
// per event (a message, a request) or, on the delivery path, once per
// flush: never per recipient of a publish.
type counters struct {
	open       [numTransports]atomic.Int64 // HTTP requests and streams in progress (WebSockets: Server.conns)
	delivered  [numTransports]atomic.Uint64
	written    [numTransports]atomic.Uint64
	received   [numKinds]atomic.Uint64
	ended      [numEndReasons]atomic.Uint64
	published  atomic.Uint64
	handshakes atomic.Uint64
	replayed   atomic.Uint64
	ackBatches atomic.Uint64
	ackResent  atomic.Uint64
	errors     codeCounts
	rejections codeCounts
}

// wrote counts a flush of n messages and bytes on transport tr.
func (c *counters) wrote(tr transport, messages, bytes int) {
	if messages > 0 {
		c.delivered[tr].Add(uint64(messages))
	}
	if bytes > 0 {
		c.written[tr].Add(uint64(bytes))
	}
}

// receivedKind returns the kind of a client's message on channel.
func receivedKind(channel string) messageKind {
	switch channel {
	case channels.MetaHandshake:
		return kindHandshake
	case channels.MetaConnect:
		return kindConnect
	case channels.MetaSubscribe:
		return kindSubscribe
	case channels.MetaUnsubscribe:
		return kindUnsubscribe
	case channels.MetaDisconnect:
		return kindDisconnect
	}
	if channels.IsMeta(channel) {
		return kindOtherMeta
	}
	return kindPublish
}

// countReply counts the error of an encoded reply, if it has one.
func (c *counters) countReply(r *Reply) {
	if r.Error != "" {
		c.errors.add(r.Error)
	}
}

// countRejections counts the refusals the incoming extensions left on m.
func (c *counters) countRejections(m *Message) {
	if m.Error != "" {
		c.rejections.add(m.Error)
	}
	for _, r := range m.rejected {
		c.rejections.add(r.err)
	}
}

// transportCounts reads one counter per transport.
func transportCounts(a *[numTransports]atomic.Uint64) TransportCounts {
	return TransportCounts{
		WebSocket:       a[trWebSocket].Load(),
		LongPolling:     a[trLongPolling].Load(),
		CallbackPolling: a[trCallbackPolling].Load(),
		EventSource:     a[trEventSource].Load(),
	}
}

// Stats returns a snapshot of the server's activity on this node. It takes
// time in proportion to the number of sessions (each is looked at, under
// its lock, for the gauges), so call it at most every few seconds, as a
// metrics scrape does; the counters themselves cost the server next to
// nothing.
func (s *Server) Stats() Stats {
	c := &s.stats
	st := Stats{
		Sessions:     s.Sessions(),
		Channels:     s.index.Len(),
		Delivered:    transportCounts(&c.delivered),
		BytesWritten: transportCounts(&c.written),
		Received: MessageCounts{
			Handshake:   c.received[kindHandshake].Load(),
			Connect:     c.received[kindConnect].Load(),
			Subscribe:   c.received[kindSubscribe].Load(),
			Unsubscribe: c.received[kindUnsubscribe].Load(),
			Disconnect:  c.received[kindDisconnect].Load(),
			OtherMeta:   c.received[kindOtherMeta].Load(),
			Publish:     c.received[kindPublish].Load(),
		},
		Published:  c.published.Load(),
		Handshakes: c.handshakes.Load(),
		Errors:     c.errors.snapshot(),
		Rejections: c.rejections.snapshot(),
		SessionsEnded: EndCounts{
			Disconnect: c.ended[EndDisconnect].Load(),
			Expired:    c.ended[EndExpired].Load(),
			Slow:       c.ended[EndSlow].Load(),
			Server:     c.ended[EndServer].Load(),
		},
		Replayed:          c.replayed.Load(),
		AckResentBatches:  c.ackBatches.Load(),
		AckResentMessages: c.ackResent.Load(),
	}
	s.connsMu.Lock()
	st.Connections.WebSocket = uint64(len(s.conns))
	s.connsMu.Unlock()
	st.Connections.LongPolling = uint64(max(c.open[trLongPolling].Load(), 0))
	st.Connections.CallbackPolling = uint64(max(c.open[trCallbackPolling].Load(), 0))
	st.Connections.EventSource = uint64(max(c.open[trEventSource].Load(), 0))
	s.sessions.each(func(sess *Session) {
		queued, held, subs := sess.load()
		st.QueuedBytes += int64(queued)
		st.Subscriptions += subs
		if held {
			st.HeldConnects++
		}
	})
	if es, ok := s.engine.(EngineStatser); ok {
		e := es.EngineStats()
		st.Engine = &e
	}
	return st
}

// load returns what the session holds for Stats: its queued bytes (see
// Stats.QueuedBytes), whether a connect is held on it, and its number of
// subscriptions.
func (s *Session) load() (queued int, held bool, subs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued + s.pendBytes, s.poll != nil || s.held != nil, s.subs.len()
}
