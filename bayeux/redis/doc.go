// Package redis is a bayeux.Cluster on Redis: it lets several Bayou nodes
// serve one Bayeux (faye/CometD) audience. Each node keeps its own sessions,
// subscriptions, queues and connections in memory; Redis carries what must
// cross nodes: publications and the history of the channels that keep one,
// messages between nodes, session ownership, liveness and counts.
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
// A publication with an audience (bayeux.Server.PublishTo) has version 3
// and, after exclude, the audience's Users, Roles and ClientIDs, each a
// count (uvarint) and its strings (each uvarint length + bytes): every
// node applies the audience to its own sessions. Nodes of an older version
// drop such payloads (and log it once) rather than deliver them to every
// subscriber.
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
// # History
//
// The Engine is a bayeux.Historian. A publication whose History rule is
// set (Size, TTL) is appended to its channel's history and published by one
// Lua script, run with EVALSHA (EVAL once after Redis lost its script
// cache), atomically and in one round trip:
//
//	HGET    <ns>:hmeta:<channel> e        the epoch; when missing, a new
//	                                      history: DEL both keys, HSET e
//	HINCRBY <ns>:hmeta:<channel> o 1      the offset
//	XADD    <ns>:hist:<channel> MAXLEN Size <offset>-0 m <message> x <exclude>
//	PEXPIRE <ns>:hist:<channel>  TTL      (HistoryMetaTTL when TTL is 0)
//	PEXPIRE <ns>:hmeta:<channel> HistoryMetaTTL (or TTL if longer)
//	PUBLISH <ns>:ch:<pattern> <payload>   per expansion, as above
//
// that is depth+2 PUBLISH and six other commands inside one EVALSHA,
// whatever the number of nodes and subscribers. The epoch is a random
// string the publisher proposes, used only when the history is new or was
// lost (a restart without persistence, RemoveHistory, HistoryMetaTTL
// without a publication), so that offsets are only compared within one
// history. MAXLEN is exact: a channel keeps exactly its last Size
// publications. The offset is the entry's ID, so that reading from an
// offset is one XRANGE. The payload of such a publication has its own
// header version, and carries the position that the script wrote into it:
//
//	version 2 (1 byte) | channel, exclude (each uvarint length + bytes) |
//	keep (uvarint, ms: how long the stream outlives the publication) |
//	offset (decimal), epoch (each one length byte + bytes) | message
//
// The receiving node delivers a bayeux.Publication with its Position set
// and Message as published (the server adds the position to its copies).
// Nodes of an older version drop such payloads (and log it once).
//
// History(channel, since, limit) is MULTI, XRANGE from since+1 (COUNT
// limit), HMGET of the offset and epoch, EXEC: one round trip, so that the
// publications and the position belong together. RemoveHistory DELs both
// keys; the next publication starts a new epoch at offset 1.
//
// # Gaps between nodes
//
// Redis pub/sub is at most once: a node whose pub/sub connection drops
// misses what is published until it is back. On history channels the
// offsets show the gaps, and the node fills them from the stream. It keeps,
// per history channel it receives, a tracker: the epoch and the last
// offset it delivered. A publication at or below that offset is a copy (the
// node listens to several patterns that match) and is dropped; one beyond
// it by more than one reveals a gap, which the node reads (XRANGE, as in
// History, 1,000 entries per round trip) and delivers, in order, before the
// publication itself; a new epoch means the history was lost or removed
// while the node listened, and what the new epoch holds before the
// publication is delivered first. After the pub/sub connection comes back,
// every tracked channel is caught up the same way, up to the offset current
// when it is read (8 channels at a time); a live publication arriving
// meanwhile is ordered with the catch-up by a per-channel lock and the
// offsets. A catch-up stays within the tracker's epoch: a new one is
// filled in by the next live publication, which arrives after any
// publication of the old epoch still on its way (a connection's messages
// are all delivered before the next connection opens). Publications of one channel are therefore delivered once each,
// in offset order, as long as the stream still holds them (Size and TTL);
// across channels, the order of one publisher may differ after a gap. A
// read that fails (within OpTimeout; the read is retried on a fresh
// connection after a network error) is logged once per episode and the
// publication that revealed the gap is delivered anyway.
//
// A tracker exists only while a wanted pattern matches its channel:
// Unsubscribe drops the trackers that no remaining pattern matches, so that
// a node that listens again starts from the next publication rather than
// fill in what was published while it did not listen. Trackers of channels
// silent for longer than their stream lives (and at least a minute) are
// dropped too, every HeartbeatInterval.
//
// # Messages between nodes
//
// Each node also SUBSCRIBEs to <ns>:node:<NodeID>. Send(node, msg) is one
// PUBLISH there. When nobody listens, the node may be dead or merely
// re-opening its pub/sub connection: Send waits, checking with PUBSUB NUMSUB
// every 200 ms (one check shared by every Send to that node), and sends
// once the node listens again; after a second without a listener the node
// is gone, and Send fails with an error that wraps ErrNoNode and
// bayeux.ErrNodeGone.
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
// SessionOwner (one GET, plus a GET of the owner's heartbeat, cached for a
// second); the server then forwards the request to the owner over
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
//	<ns>:alive:<node>     string, PX NodeTTL, rewritten every HeartbeatInterval
//	<ns>:sess:<id>        string (owner), PX the claim's ttl
//	<ns>:counts:<node>    hash, PX NodeTTL, rewritten by each report
//	<ns>:nodes            ZSET (node → last heartbeat, ms), PX 6×NodeTTL
//	<ns>:hist:<channel>   stream (ID <offset>-0, fields m, x), MAXLEN Size,
//	                      PX the rule's TTL (or HistoryMetaTTL), per publication
//	<ns>:hmeta:<channel>  hash (o: offset, e: epoch), PX HistoryMetaTTL (or
//	                      the rule's TTL if longer), per publication
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
// as with Redis pub/sub in general), except on history channels, which it
// catches up from their streams (see "Gaps between nodes"). After a
// restart without persistence the histories are gone: their next
// publications start new epochs. State changes are logged with log/slog.
//
// When a node dies, SessionOwner reports its sessions as owned by nobody as
// soon as a Send to it found it gone (about a second after the first
// request for one of its sessions, or after the server's once-a-second ping
// of the owners it has requests waiting on), else once its heartbeat
// expires (NodeTTL). The server treats the sessions as unknown, and their
// clients handshake again with another node. A gone node is seen alive
// again when its heartbeat value changes. Its queued messages are lost;
// on channels with history, clients that resume (the recovery extension,
// the Go client, a replay) get them from the Streams. A node that closes deletes its claims,
// heartbeat, report and ZSET entry at once.
package redis
