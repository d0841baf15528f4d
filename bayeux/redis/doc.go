// Package redis is a bayeux.Cluster on Redis: it lets several Bayou nodes
// serve one Bayeux (faye/CometD) audience. Each node keeps its own sessions,
// subscriptions, queues and connections in memory; Redis carries what must
// cross nodes: publications, messages between nodes, session ownership,
// liveness and counts.
//
//	engine, err := redis.New(ctx, redis.Config{URL: "redis://127.0.0.1:6379/0"})
//	…
//	srv, err := bayeux.New(bayeux.Config{Engine: engine, …})
//
// The Redis client is rueidis: commands issued concurrently share
// connections and are pipelined automatically, and the node's pub/sub
// traffic has a connection of its own.
//
// # Publications: interest routing
//
// A node SUBSCRIBEs to the Redis channel <ns>:ch:<pattern> for every Bayeux
// pattern (channel name or wildcard) at least one of its sessions listens
// to; the server calls Subscribe on the first local subscriber and
// Unsubscribe after the last. Subscribe returns only once Redis has
// confirmed the subscription, so a message published after the client got
// its subscribe reply is not missed.
//
// Publish sends one PUBLISH per expansion of the channel (channels.Expand):
// for /a/b/c that is /**, /a/**, /a/b/**, /a/b/* and /a/b/c, depth+2
// commands, written together in one round trip. Redis hands each copy only
// to the nodes subscribed to that pattern; each node then fans out to its
// own sessions. The Redis work of a publish is therefore depth+2 PUBLISH,
// whatever the number of nodes, of patterns they listen to and of
// subscribers. Publish returns once Redis acknowledged every command, so
// the messages of a publisher that waits for each Publish keep their order,
// and an outage reaches the publisher as an error within OpTimeout. An
// error does not prove that no node got the message (a timeout may hide a
// late success); delivery is at most once.
//
// The payload is a small binary header followed by the encoded message,
// untouched:
//
//	version (1 byte) | epoch (8 bytes) | seq (uvarint) |
//	node, channel, exclude (each uvarint length + bytes) | message
//
// node and epoch (random per engine instance) name the origin, seq counts
// its publishes. A node listening to several expansions of a channel (say
// /**, /a/** and /a/b) receives several copies; it delivers the first and
// drops the others, using per origin a window of 4096 sequence numbers
// (a bitmap behind the highest number seen), so that publications of one
// origin reordered among its concurrent Publish calls are still delivered
// once each. Origins silent for a minute are forgotten.
//
// Publications of all patterns arrive on the node's one pub/sub connection
// and are delivered on its reading goroutine, in arrival order; the
// Publication's Message aliases the received payload (no copy).
//
// # Messages between nodes
//
// Each node also SUBSCRIBEs to <ns>:node:<NodeID>. Send(node, msg) is one
// PUBLISH there; it fails with ErrNoNode when nobody listens (a dead node).
// Received node messages are queued (up to 64 MiB) and handed to the
// HandleNodeMessages function one at a time, in order, on a goroutine of
// their own, so that a slow handler never holds up publications.
//
// # Session ownership and forwarding
//
// The node that creates a session owns it: ClaimSession writes
// <ns>:sess:<id> = NodeID with the claim's ttl, renewed by the owner;
// ReleaseSession deletes it if this node still owns it (a Lua script). A
// node that gets a request for a session it does not hold asks
// SessionOwner (one GET, plus an EXISTS of the owner's heartbeat, cached
// for a second); the server then forwards the request to the owner over
// Send and gets the reply back the same way: two node messages per
// forwarded request, so clients need no sticky load balancing.
//
// # Liveness and store resets
//
// Every HeartbeatInterval (2s) a node writes <ns>:alive:<NodeID> with a
// NodeTTL (10s) expiry, and refreshes its entry in the ZSET <ns>:nodes. It
// writes the heartbeat with SET … GET: when the previous value is missing
// although it had been written, Redis lost its data (a restart without
// persistence, a flush, or an outage longer than NodeTTL), and the node
// re-records from memory every session claim still running (SET NX with the
// remaining ttl, pipelined) and its last count report. The same check runs
// right after the pub/sub connection comes back, so after a restart this
// happens within a few hundred milliseconds.
//
// # Counts
//
// ReportCounts replaces <ns>:counts:<NodeID>, a hash of "_sessions" and of
// subscribers per pattern, atomically (MULTI/EXEC) with a NodeTTL expiry;
// the server reports every second or so. Counts lists <ns>:nodes, then
// reads the heartbeat and report of each listed node in one pipeline and
// sums the reports of the live ones: two round trips, O(nodes). Nodes found
// dead are removed from the ZSET; members silent for 6×NodeTTL are pruned
// by every heartbeat too.
//
// # Keys
//
// Every key has an expiry, so nothing outlives the cluster:
//
//	<ns>:alive:<node>   string, PX NodeTTL, rewritten every HeartbeatInterval
//	<ns>:sess:<id>      string (owner), PX the claim's ttl
//	<ns>:counts:<node>  hash, PX NodeTTL, rewritten by each report
//	<ns>:nodes          ZSET (node → last heartbeat, ms), PX 6×NodeTTL
//
// and the pub/sub channels <ns>:ch:<pattern> and <ns>:node:<node> hold no
// data.
//
// # Faults
//
// While Redis is down or unresponsive, Publish, Send, ClaimSession and the
// other calls fail within OpTimeout (at once when the connection is
// refused); Subscribe fails at once while the pub/sub connection is down.
// Nothing panics and nothing needs the server's help to recover: the Redis
// client reconnects by itself, and the engine re-opens the pub/sub
// connection with a growing backoff (50ms to 500ms, jittered), re-subscribes
// the node's channel and every pattern in one pipelined command, then
// checks the heartbeat as described above. Publications sent while a
// node's pub/sub connection was down are lost for that node (at most once,
// as with Redis pub/sub in general). State changes are logged with
// log/slog.
//
// When a node dies, its heartbeat expires within NodeTTL; SessionOwner then
// reports its sessions as owned by nobody, the server treats them as
// unknown, and their clients handshake again (with another node). Its
// queued messages are lost. A node that closes deletes its claims,
// heartbeat, report and ZSET entry at once.
package redis
