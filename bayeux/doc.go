// Package bayeux implements a Bayeux pub/sub server that faye (1.4) and
// CometD clients use unchanged.
//
// A Server is an http.Handler. Mounted at Config.Mount (default "/bayeux"),
// it serves every transport those clients use on that one path:
//
//   - WebSocket: an upgrade on the mount (absent and foreign Origins are
//     accepted unless Config.AllowedOrigins says otherwise; "null" only when
//     listed);
//   - long-polling: POST with a JSON body, or a form body whose "message"
//     field holds the JSON (browsers' cross-origin transport sends it as
//     text/plain), on {mount}, {mount}/, {mount}/handshake, {mount}/connect
//     and {mount}/disconnect (CometD's paths);
//   - callback-polling (JSONP): GET {mount}?message=...&jsonp=callback;
//   - CORS preflights, answered with faye's headers plus whatever headers
//     the browser asks for;
//   - EventSource: GET {mount}/{clientId} with Accept: text/event-stream.
//
// # Protocol
//
// The five meta channels (/meta/handshake, /meta/connect, /meta/subscribe,
// /meta/unsubscribe, /meta/disconnect) answer with faye's exact fields,
// error strings ("401:<clientId>:Unknown client", "405:<channel>:Invalid
// channel", ...) and precedence. Every message of a batch gets a reply
// carrying its id. Publishing needs no clientId. Channels follow faye's
// grammar (see package channels), with wildcards /* (one segment) and /**
// (any depth). Messages on /service/** are never broadcast: they reach
// in-process subscribers and the handler registered with HandleService,
// whose answer goes back to the publisher (CometD's remoteCall); clients may
// subscribe to /service channels, which succeeds without effect.
//
// Broadcasts carry only channel, data, id and ext: a publisher cannot push
// advice or a fake reply into other clients. data is forwarded byte for
// byte. The ext a client publishes is not forwarded, so that credentials
// in it reach no other client: subscribers get what the incoming
// extensions set in it, and the server's positions (Config.ForwardExt
// forwards it, as faye does).
//
// # Sessions and delivery
//
// A session (clientId: 160 random bits) is not tied to a transport: a client
// may connect over long-polling and then a WebSocket, re-use its clientId on
// a new socket after a reload, or move a socket to a new clientId after a
// re-handshake. At most one /meta/connect is held per session; a newer one
// answers the older at once. Sessions that stop connecting are ended after
// twice Config.Timeout.
//
// A published message is encoded once; subscribers receive the same bytes,
// once each however many of their patterns match. Each session's queue is
// bounded in bytes (Config.MaxQueueBytes): a client that does not keep up is
// disconnected with advice to handshake again instead of growing memory.
// Connections drain everything queued into one WebSocket frame (a JSON
// array) or one long-poll response. A long-poll whose request is cancelled
// keeps its messages for the next connect.
//
// # Delivery guarantees
//
// Plain Bayeux delivers at most once: a message written into a connection
// that has silently died is lost, and so is everything published while a
// client is away for longer than its session lives. Three mechanisms, each
// spoken by existing clients, close these holes:
//
//   - Channel history (Config.History): the last Size publications of each
//     channel matching a rule are kept for at most TTL, by the engine (the
//     in-memory engine within Config.HistoryMaxBytes; the Redis engine in
//     a Stream per channel). Each gets a Position: an offset growing by one
//     per publication of the channel, in an epoch that changes when the
//     history was lost. Copies carry it in ext: {"replayId": 17, "epoch":
//     "k3j4h5"}, encoded once per node for every subscriber. Publishes
//     made for some sessions only (PublishTo, PublishLocal) or to one
//     client (Deliver) are not kept: a replay would show them to everyone.
//   - Replay on subscribe, as Salesforce's clients ask for it: a
//     /meta/subscribe with ext.replay {"<channel>": -1 | -2 | N |
//     {"replayId": N, "epoch": "E"}} first receives what was published
//     after N (-2: everything retained; -1: nothing), then the live
//     messages, with no gap and no duplicate at the switch-over: live
//     publications are held back while the history is read, and those the
//     replay covered are dropped. The reply's ext.replay.<channel> gives
//     the position live delivery continues from and whether the replay was
//     complete ("recovered"). A position that is no longer retained, or
//     from another epoch, is refused with a 400 error, or (Config.ReplayLost,
//     or "replayLost": "report" in the subscribe's ext) accepted with
//     recovered false, so that the application reloads its state. The
//     served faye extension {Mount}/extensions/recovery.js and the Go
//     client do this by themselves after a re-handshake.
//   - Acknowledgements (CometD's AckExtension; off with Config.NoAck): a
//     client that sends ext.ack true in its handshake receives its messages
//     only with /meta/connect replies, each numbered (ext.ack), and names
//     in its next connect the last batch it got; what it did not get is
//     sent again. Messages kept for this count against MaxQueueBytes. This
//     is at-least-once while the session lives, over long-polling and
//     WebSocket (not EventSource).
//
// # Limits
//
// Everything a client controls is bounded, on every transport, and a
// request over a bound is answered with an HTTP status or a Bayeux error
// that names it: body size (MaxMessageSize), JSON nesting (MaxNesting,
// checked by a flat scan before anything recursive reads the request),
// messages per request (MaxBatch) and one handshake per request, channel
// length and segments (MaxChannelLength, MaxChannelSegments), subscriptions
// per session (MaxSubscriptions), the time to send a body (BodyTimeout) and
// for a WebSocket to connect a session (SocketSessionTimeout), and, when
// configured, connections, handshakes and publishes per client address or
// session (MaxConnectionsPerIP, HandshakeRate, PublishRate). The client
// address is the peer's, or for a peer in TrustedProxies the one its
// X-Forwarded-For names; the limits, the logs, Session.ClientIP and the
// extensions (ClientIP of a hook's context) all see that one. Output is always valid UTF-8:
// identifiers that are not valid UTF-8 refuse their message, and invalid
// sequences in data and ext become U+FFFD; the check is one pass per
// request, nothing per recipient.
//
// # Extending the server
//
// Extensions (Config.Extensions) see every incoming message, with the
// sender's Session and HTTP request, and every outgoing reply, like faye's;
// they reject messages by setting Message.Error (ErrorForbidden and the
// other builders give the errors clients know) or single channels of a
// subscribe (Message.RejectChannel), tell the server's own publishes by
// Message.FromServer, attach an Identity to a session at handshake and keep
// state on it (Session.Set). channels.Reaches says whether a subscription,
// wildcards included, reaches a protected channel. A DeliveryFilter
// decides per recipient. Events (Config.Events) report handshakes,
// subscriptions, publishes and disconnects. The server API publishes
// (Publish; PublishTo an Audience of users, roles or clients, on every
// node; PublishLocal with a filter of this node's sessions; Deliver to one
// client), subscribes in process (Subscribe), answers /service requests
// (HandleService), disconnects clients, lists sessions (LocalSessions,
// SessionsOf across a cluster) and counts sessions and subscribers.
//
// # Concurrency
//
// A Server is safe for concurrent use: ServeHTTP, the server API (Publish,
// PublishTo, PublishLocal, Deliver, Subscribe, HandleService, Disconnect,
// the session lists, the counts) and Shutdown may be called from any
// goroutine. What runs on which goroutine:
//
//   - Each HTTP request is handled on its handler's goroutine. Each
//     WebSocket frame is handled on a goroutine of the server's, one frame at
//     a time per socket, in order. A held long-poll waits on its handler's
//     goroutine; a held WebSocket connect waits on a timer, no goroutine.
//     On Linux an idle WebSocket has no goroutine either: it waits in an
//     epoll set of the server's, and a goroutine starts when bytes arrive.
//   - Extension hooks (Incoming, Outgoing), ServiceHandlers and Events run
//     on the goroutine handling the message, before its reply is written:
//     they may block (an auth call to a back end, say) but then delay that
//     client's batch, and a WebSocket's next frames. Do slow work elsewhere.
//   - The context of extension hooks and ServiceHandlers is the same on
//     every transport: it carries the values of the batch's HTTP request
//     (a WebSocket's upgrade request; for Server.Publish, its ctx), and it
//     ends when the server shuts down or Config.HookTimeout (10s) after the
//     batch's first hook ran. Pass it to the calls a hook makes. A client
//     going away does not end it, and it does not bound a held long-poll,
//     whose reply gets a context of its own when it is sent.
//   - DeliveryFilter.Delivery and the per-recipient function it returns, and
//     the handlers of Server.Subscribe, run on the publisher's goroutine (or
//     the engine's, for publications from other nodes), once per
//     publication: they must not block. The Message they get is valid only
//     during the call.
//   - Writes to clients never wait on a publisher's goroutine: a publish
//     queues the encoded message for each recipient, and each connection
//     writes its queue on a goroutine of its own, with a write deadline.
//     A publication for a few sessions only (a personal channel) is written
//     at once on the publisher's goroutine to those sockets that can take it
//     without waiting (nothing else being written, room in the socket's
//     send buffer); the others get their goroutine.
//
// A Session's delivery state (queue, bound connection, held connect) is
// owned by the Session; its exported methods (Identity, Set, Get, ...) are
// safe for concurrent use. Its attributes (Set) live in the memory of the
// node that owns it.
// Every goroutine the server starts is owned by it: Shutdown stops them all
// (and returns when they have, or when its context ends).
//
// # Health and draining
//
// Ready says whether the server should get new clients: not once Drain or
// Shutdown was called, nor while an engine that is a Pinger (the Redis
// engine) cannot reach its store. Package bayeux/api serves it as
// /readyz. To take a node out of a load balancer, call Drain, wait until the
// balancer noticed (clients are served as usual meanwhile), then Shutdown:
// the connects it holds are answered unsuccessful with advice to handshake
// again, which sends faye and CometD clients to a new session elsewhere.
//
// # Many nodes
//
// The Engine interface carries publishes and channel interest between nodes;
// NewMemoryEngine serves a single node and is the default. A node tells its
// engine which patterns its sessions (and in-process subscribers) listen to,
// so publications reach only the nodes that need them, and each node fans
// out to its own sessions: the engine's work per publish does not depend on
// the number of subscribers.
//
// An engine that also implements Cluster (package bayeux/redis) makes
// sessions cluster-wide without sticky load balancing. A session is owned
// by the node that created it: its subscriptions, queue and held connect
// live there. A node that receives a request for a session it does not own
// asks the cluster for the owner and forwards the request to it; the owner
// handles it exactly as a local one (holding the connect until messages
// arrive or the timeout ends) and sends the answer back, which the first
// node writes to the client. If the client goes away, the owner is told and
// the messages stay queued there. A WebSocket that lands on a non-owner node
// is bound on the owner as a remote socket whose frames are pushed to the
// node holding the connection. An EventSource stream is not forwarded: it
// must reach the owner, and other nodes answer it 404.
//
// The cost: a request for a session on another node takes an owner lookup
// and two node messages (request and answer); frames for a remote socket
// take one node message per flush (a flush carries everything queued). A
// client that keeps talking to its session's owner costs nothing extra. If
// an owner dies, its sessions are gone: their clients get "401::Unknown
// client" and handshake again on a live node. Queues in the shared store
// (faye-redis) would survive that, but at a store write per recipient of
// every message; forwarding keeps fan-out on the nodes.
package bayeux
