// Package api is the HTTP API that back ends use to drive a Bayou server:
// publish, deliver to one client, disconnect a client, count clients
// and channels, and read or delete the history of a channel. It is served apart from the Bayeux mount, normally on a
// listener of its own that only back ends can reach:
//
//	srv, err := bayeux.New(bayeux.Config{})
//	...
//	go http.ListenAndServe(":8000", srv)                               // clients, on /bayeux
//	go http.ListenAndServe("127.0.0.1:8001", api.New(srv, api.Config{})) // back ends
//
// The handler answers paths relative to its root; to serve it under a
// prefix, wrap it: http.StripPrefix("/api", api.New(srv, cfg)).
//
// # Access
//
// Config.Keys and Config.AllowNets decide who may call the API:
//
//   - neither set (the default): requests from the loopback addresses only;
//   - AllowNets only: requests from those networks;
//   - Keys only: requests that present a key, from anywhere;
//   - both: requests that present a key from those networks.
//
// A key is sent as "Authorization: Bearer <key>" or "X-API-Key: <key>".
// A source outside the allow-list is answered 403, a missing or wrong key
// 401. The source is the connection's peer address; X-Forwarded-For is
// used only when the peer is one of Config.TrustedProxies. Without keys,
// requests that a browser sends for a web page (with an Origin header, or a
// Sec-Fetch-Site header other than "none") are refused with 403, so that a
// page the operator visits cannot use a loopback-only API through the
// operator's browser.
//
// The probes are served to everyone, without key: load balancers and
// orchestrators call them without credentials. GET /health and /healthz
// reveal nothing but that the process answers; GET /readyz says whether
// the server should get new clients (bayeux.Server.Ready): 503 with a
// reason while it drains or while its engine (Redis) is out of reach.
// Liveness and Readiness return the same probes, to serve elsewhere (the
// bayou command serves them on the Bayeux listener too).
//
// # Routes
//
// Every answer is JSON. Successful actions answer {"ok":true}.
//
//	GET    /health                     {"ok":true}
//	GET    /healthz                    {"ok":true}: the process serves
//	GET    /readyz                     {"ok":true}, or 503 {"ok":false,"reason":"..."}
//	POST   /publish                    publish one message, or a batch
//	POST   /clients/{clientId}/deliver send a message to one client
//	DELETE /clients/{clientId}         disconnect a client
//	GET    /clients                    {"count":N}: sessions (in the whole cluster)
//	GET    /clients?channel=/a/b       count and ids of the clients that a publish on /a/b reaches
//	GET    /clients/{clientId}         {"clientId","subscriptions","user","roles"}
//	GET    /channels                   {"channels":[{"channel":"/a","subscribers":3},...]}
//	GET    /channels?prefix=/chat      the same for /chat and the channels below it
//	GET    /history?channel=/a/b       the retained publications of /a/b and its position
//	DELETE /history?channel=/a/b       delete the history of /a/b
//	GET    /presence?channel=/a/b      {"channel","members":[{"clientId","user","info"},...]}: who is
//	                                   subscribed to /a/b on every node (Config.Presence)
//	GET    /status                     the live status page (HTML), with /status.js and /status.css
//	GET    /status.json                the page's figures (see Status page)
//
// With a cluster engine, /clients and /channels count the whole cluster (as
// each node last reported, about a second ago); ?channel= lists the clients
// of the node asked; deliver and disconnect reach a client on any node.
//
// A publish is {"channel":"/x","data":<any JSON>}, with optional "ext"
// (a JSON object sent as the message's ext) and "exclude" (a clientId that
// must not receive the message, typically the client the back end is
// answering), and "to", an audience: {"users":[...], "roles":[...],
// "clientIds":[...]}, each optional. With "to" the message reaches only the
// subscribers whose identity's user is one of users, or that hold one of
// roles, or whose clientId is one of clientIds, on every node, and it is
// not kept in the channel's history (see bayeux.Audience; anonymous
// clients are reached only by clientId). The message goes through the
// server's extensions like a client's publish. A JSON array of publishes is a batch: they are
// published in order, and the answer is {"results":[...]} with one
// {"ok":true} or {"ok":false,"error":{...}} per item, even when some fail.
// Unknown fields are refused.
//
// # Status page
//
// GET /status is a page for a person to watch the server: plain HTML, CSS
// and a script (GET /status.js, /status.css) embedded in the package, with
// no build step and nothing loaded from elsewhere, served with a
// Content-Security-Policy that allows only those files. The files hold no
// data and are served without key and to any source (a browser cannot
// send a key when it opens a URL); the page reads GET /status.json every second, which
// follows the access rules above. As those refuse requests made by web
// pages when no key is configured, the page needs a key: open it as
// /status#key=<key>. It takes the key from the URL fragment (never sent to
// the server), keeps it in the tab's sessionStorage, removes it from the
// address bar and sends it as X-API-Key. It writes every figure and name as
// text, and /status.json escapes < > & in its strings as well.
//
// /status.json holds bayeux.Server.Stats of this node (connections,
// deliveries and bytes by transport, sessions, subscriptions, channels,
// received and published counts, slow-consumer drops as
// "slowConsumerDrops", errors by Bayeux code), the sessions of the cluster
// and its 10 channels with most subscribers (as GET /clients and GET
// /channels count them), "cluster" (this node's id and the live node count,
// when the engine reports them; null otherwise), "version"
// (Config.Version), "uptimeSeconds" since New and the server's "time". The
// page turns the counters into rates: messages in ("published") and out
// ("deliveredTotal") per second, drawn for the last two minutes. An answer
// is reused for half a second (Stats looks at every session), so the pages
// open at once cost the server at most two snapshots a second.
//
// # History
//
// The server keeps the history of the channels that a Config.History rule
// of package bayeux covers (bayou's --history flag). GET /history takes
// three query parameters:
//
//	channel  a channel name (not a pattern); required
//	since    an offset: only publications after it are returned; default 0, all retained
//	limit    at most that many publications, 0 to MaxHistoryLimit (1000); default MaxHistoryLimit
//
// and answers the oldest retained publications after since, oldest first,
// with the channel's position, the replayId (offset) of its latest
// publication and the epoch the offsets count in:
//
//	{"channel":"/chat/a","epoch":"k3j4h5Xa","replayId":42,"publications":[
//	  {"replayId":41,"data":{"text":"hi"},"ext":{"from":"bot"}},
//	  {"replayId":42,"data":{"text":"hello"}}]}
//
// Each publication has its replayId and the data and ext that subscribers
// received, but without the replayId and epoch the server writes into ext
// (ext is left out when nothing else is in it). A publish's "exclude" does
// not hide it here. Offsets count from 1 within an epoch; a channel that
// has had no publication since its history was lost or deleted has
// {"epoch":"","replayId":0}. limit=0 answers the position alone, which a
// back end can hand to a client to subscribe from (ext.replay, see package
// bayeux). Fewer publications than the limit means there are no more;
// otherwise ask again with since set to the last replayId. Publications
// before the first one returned are no longer retained (pushed out by
// newer ones or expired).
//
// DELETE /history deletes the channel's history and answers {"ok":true};
// the next publication starts a new epoch, so that clients holding a
// position in the old one are told that their messages were not
// recovered.
//
// Both answer 404 no_history for a channel that no history rule covers
// (and for /meta and /service channels, which are never kept), and 400 for
// a missing channel, a pattern, a since or limit that is not an integer in
// range, a parameter given twice or an unknown one. With a cluster engine
// the history is the cluster's.
//
// # Errors
//
// Errors are answered as {"error":{"code":"...","message":"..."}}:
//
//	400 bad_request         malformed JSON, missing field, unknown field or query parameter
//	401 unauthorized        missing or wrong API key
//	403 forbidden           source address not allowed; a browser request without keys
//	404 not_found           unknown route or clientId
//	404 no_history          /history for a channel whose history is not kept
//	405 method_not_allowed  the route exists with other methods (see the Allow header)
//	413 too_large           body larger than Config.MaxBodyBytes (default 1 MiB)
//	422 rejected            the server refused the message; message is the Bayeux error, such as "403::Forbidden"
//	500 internal            anything else
//	503 unavailable         the server's engine is closed
//
// # Examples
//
// With the API on 127.0.0.1:8001 and a key in $KEY (drop the
// Authorization header when no key is configured):
//
//	# publish
//	curl -sS http://127.0.0.1:8001/publish -H "Authorization: Bearer $KEY" \
//	  -d '{"channel":"/chat/room1","data":{"text":"hello"}}'
//	{"ok":true}
//
//	# publish with an ext, leaving out the client that sent the original
//	curl -sS http://127.0.0.1:8001/publish -H "Authorization: Bearer $KEY" \
//	  -d '{"channel":"/chat/room1","data":{"text":"hi"},"ext":{"from":"bot"},"exclude":"3kd8c7jq1x"}'
//
//	# publish to the staff and to user ana only, wherever they are connected
//	curl -sS http://127.0.0.1:8001/publish -H "Authorization: Bearer $KEY" \
//	  -d '{"channel":"/alerts","data":{"level":"high"},"to":{"users":["ana"],"roles":["staff"]}}'
//
//	# a batch
//	curl -sS http://127.0.0.1:8001/publish -H "X-API-Key: $KEY" \
//	  -d '[{"channel":"/a","data":1},{"channel":"/meta/x","data":2}]'
//	{"results":[{"ok":true},{"ok":false,"error":{"code":"rejected","message":"403:/meta/x:Forbidden channel"}}]}
//
//	# deliver to one client, whatever it subscribes to
//	curl -sS http://127.0.0.1:8001/clients/3kd8c7jq1x/deliver -H "Authorization: Bearer $KEY" \
//	  -d '{"channel":"/notice","data":"your export is ready"}'
//
//	# disconnect a client
//	curl -sS -X DELETE http://127.0.0.1:8001/clients/3kd8c7jq1x -H "Authorization: Bearer $KEY"
//
//	# count clients; the clients a publish on /chat/room1 reaches
//	curl -sS http://127.0.0.1:8001/clients -H "Authorization: Bearer $KEY"
//	{"count":42}
//	curl -sS 'http://127.0.0.1:8001/clients?channel=/chat/room1' -H "Authorization: Bearer $KEY"
//	{"channel":"/chat/room1","count":2,"clients":["3kd8c7jq1x","9zq0t1m2b4"]}
//
//	# channels and their subscribers
//	curl -sS 'http://127.0.0.1:8001/channels?prefix=/chat' -H "Authorization: Bearer $KEY"
//	{"channels":[{"channel":"/chat/*","subscribers":1},{"channel":"/chat/room1","subscribers":2}]}
//
//	# the history of a channel: what is retained, then what came after replayId 41
//	curl -sS 'http://127.0.0.1:8001/history?channel=/chat/room1' -H "Authorization: Bearer $KEY"
//	{"channel":"/chat/room1","epoch":"k3j4h5Xa","replayId":42,"publications":[{"replayId":41,"data":{"text":"hi"}},{"replayId":42,"data":{"text":"hello"}}]}
//	curl -sS 'http://127.0.0.1:8001/history?channel=/chat/room1&since=41&limit=10' -H "Authorization: Bearer $KEY"
//	{"channel":"/chat/room1","epoch":"k3j4h5Xa","replayId":42,"publications":[{"replayId":42,"data":{"text":"hello"}}]}
//
//	# delete it
//	curl -sS -X DELETE 'http://127.0.0.1:8001/history?channel=/chat/room1' -H "Authorization: Bearer $KEY"
//	{"ok":true}
//
//	# health, without key
//	curl -sS http://127.0.0.1:8001/health
//	{"ok":true}
package api
