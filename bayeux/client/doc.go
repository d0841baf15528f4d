// Package client is a Bayeux client for Bayou, faye 1.4 and CometD servers.
//
// A Client keeps one session with a server: it handshakes over HTTP, then
// carries its messages over a WebSocket when the server offers one (one
// message per frame) or over HTTP long-polling otherwise (messages sent at
// the same moment share a request). Its connect loop follows the server's
// advice the way the faye client does: reconnect "retry" after
// advice.interval, "handshake" when the server has lost the session, "none"
// to stop.
//
//	c, err := client.Dial(ctx, "http://localhost:8000/bayeux")
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//
//	sub, err := c.Subscribe(ctx, "/chat/**", func(m *client.Message) {
//		fmt.Printf("%s: %s\n", m.Channel, m.Data)
//	})
//	...
//	_, err = c.Publish(ctx, "/chat/lobby", map[string]string{"text": "hi"})
//
// # Subscriptions
//
// Subscribe accepts channel names and wildcard patterns ("/a/*" matches one
// more segment, "/a/**" any number). The server sends a client one copy of
// each message however many of its subscriptions match; the client matches
// patterns itself and calls every matching handler. Several handlers on
// the same pattern share one server subscription, made by the first and
// removed when the last is cancelled.
//
// # Errors
//
// A request the server refuses fails with an error wrapping an *Error,
// parsed from the Bayeux error string ("403:/meta/foo:Forbidden channel"
// gives Code 403, Args ["/meta/foo"], Message "Forbidden channel"):
//
//	var berr *client.Error
//	if errors.As(err, &berr) && berr.Code == client.CodeForbidden { ... }
//
// Errors name the operation once ("client: publish /chat/x: client
// closed") and wrap the sentinel errors ErrClosed, ErrStopped and
// ErrUnsubscribed, which errors.Is finds.
//
// # Publishing
//
// Publish and PublishAsync share one queue: messages reach the server in
// the order of the calls, including those made before the first
// connection or while the client recovers from a failure, which wait for
// the connection. After a failure, the messages whose acknowledgement was
// lost are sent again, in order, before any later one: a message can reach
// the server twice, but none first arrives after a later one (see
// Publish).
//
// # Recovery
//
// When the connection fails (a dropped socket, a server restart) the client
// retries with exponential backoff and jitter (WithBackoff). If the server
// has lost the session ("401:<id>:Unknown client" with advice to
// handshake) it handshakes again and restores every subscription before it
// reports StateConnected. Messages that others published while the client
// had no session are lost to it, except on channels with history (see
// below); its own publishes wait for the new session. Requests in flight
// when a connection fails are sent again with the same id, so a publish
// can be delivered twice (at least once, like faye). WithStateFunc
// reports every state change (connected, disconnected, closed) for logs and
// metrics.
//
// # Delivery guarantees
//
// The client uses two extensions when the server offers them (Bayou offers
// both; servers without them ignore the fields), with no code from the
// application:
//
//   - Acknowledgements (CometD's ack extension, on unless WithAck(false)):
//     each /meta/connect acknowledges the messages received with the
//     previous connect reply, and the server sends again those a failed
//     connection lost. While the session lasts, messages arrive at least
//     once.
//   - History and replay: on channels the server keeps history for, each
//     message carries its Position (Message.Position). The client records
//     the last position per channel and drops copies of messages it has
//     delivered already, so a message on such a channel reaches the
//     handlers once, in order. When it subscribes again after a new
//     handshake (the server restarted or forgot the session) it asks for
//     the messages after that position, so nothing published meanwhile is
//     lost, as long as the server still retains it.
//
// Replay applies to channel names; a subscription to a pattern resumes with
// new messages only. Subscribe with ReplayAll or ReplayAfter to receive
// messages published before the call (for example after the position an
// earlier run of the application saved). When the server can no longer
// replay what the client asks for (history lost or expired), the client
// subscribes without replay and reports a Gap to the function set with
// WithGapFunc, so the application can reload its state. Messages on
// channels without history can be delivered twice after a failure.
//
// # Extensions
//
// An Extension sees every outgoing and incoming message, for example to add
// an authentication token to the ext of subscribes and publishes:
//
//	client.WithExtension(client.Extension{
//		Outgoing: func(m *client.Message) { m.SetExt("token", token) },
//	})
//
// # Connections and logs
//
// The client makes its own HTTP client and WebSocket dialer unless given
// them: WithHTTPClient plugs in an *http.Client (and its RoundTripper) for
// the handshake and long-polling, WithDialer a *websocket.Dialer for
// WebSockets. A client logs nothing unless given a logger (WithLogger).
//
// # Concurrency and lifetime
//
// A Client is safe for concurrent use. Handlers run one at a time on one
// goroutine of the client, in the order messages arrive. Close disconnects
// and waits for every goroutine the client started.
//
// Differences from the faye client: advice is taken only from the server's
// replies, never from delivered messages (whose fields come from whoever
// published them); pending requests fail with ErrStopped when the server
// advises "none", instead of waiting forever; and retries back off
// exponentially with jitter instead of every 5 seconds.
package client
