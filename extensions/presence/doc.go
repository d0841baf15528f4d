// Package presence is a ready-made Bayou extension that tells who is
// subscribed to a channel: the members of a chat room, the viewers of a
// document, the agents on a queue.
//
// Configure the channels whose subscribers are tracked, and put the
// extension among the server's extensions (after an authentication
// extension, so that members carry the identity it attached):
//
//	p, err := presence.New(presence.Config{Channels: []string{"/chat/*"}})
//	...
//	srv, err := bayeux.New(bayeux.Config{Extensions: []bayeux.Extension{auth, p}})
//
// A session subscribed to a tracked channel (by name: /chat/room1, not the
// pattern /chat/*) is a member of it: its clientId, its identity's User,
// and what Config.Info chooses to show. Clients learn who is present in
// three ways:
//
//   - The companion channel, /presence/chat/room1 for /chat/room1
//     (Config.Prefix): a client that subscribes to it is sent
//     {"action": "members", "channel": "/chat/room1", "members": [...]}
//     just after the reply to its subscribe, then {"action": "join" |
//     "leave", "channel": ..., "member": {...}} as members come and go. A
//     member is {"clientId": ..., "user": ..., "info": ...}. Clients key
//     members by clientId: a join may repeat one already listed.
//   - The service /service/presence (Config.Service), answered as a
//     CometD client's remoteCall expects: publish {"channel":
//     "/chat/room1"} and receive {"channel": ..., "members": [...]}.
//   - On the server: Presence.Members, and GET /presence?channel= on the
//     HTTP API (package bayeux/api, Config.Presence).
//
// Only the server publishes on companion channels: a client's publish
// there is refused with 403. Config.Allow decides who may see a channel's
// members; access extensions (acl, jwtauth) apply to companion channels as
// to any other, so protect /presence/** like the channels it describes.
//
// # Clusters
//
// The members live in a Store that every node shares: the Redis engine of
// package bayeux/redis is one, and is used when it is the server's engine.
// Each node records its own sessions' joins and leaves there and
// publishes them through the engine, so a member on any node is seen by
// clients on every node. When a node dies, its members disappear from the
// lists once its heartbeat expires (the engine's NodeTTL, 10 s by
// default), and within about a second more (Config.SweepInterval) one of
// the live nodes announces each of them as gone with a "leave".
//
// Joins and leaves are recorded and published by one goroutine per node,
// in the order they happened; a join and a leave of the same session that
// follow each other before it runs cancel out. When the store fails, the
// work is retried every SweepInterval.
package presence
