// Package metrics exports a Bayeux server's figures (bayeux.Server.Stats)
// to Prometheus, with the standard client library: a prometheus.Collector
// (NewCollector) to register wherever the application keeps its metrics,
// and an http.Handler (Handler) that serves them with the Go runtime and
// process metrics, in the exposition format every Prometheus setup reads.
//
//	srv, _ := bayeux.New(bayeux.Config{})
//	http.Handle("/metrics", metrics.Handler(srv))
//
// The figures are read when Prometheus scrapes, so metrics cost the server
// nothing while nobody does; the counters behind them are atomics added to
// once per message, request or flush, never per recipient of a publish.
// Each scrape looks at every session for the gauges (queued bytes, held
// connects, subscriptions): scrape every few seconds, not more often.
//
// The metrics, all of this node:
//
//	bayou_connections{transport}          gauge    connections open (websocket, long-polling, callback-polling, eventsource)
//	bayou_sessions                        gauge    sessions
//	bayou_subscriptions                   gauge    subscriptions of the sessions
//	bayou_channels                        gauge    channels and patterns subscribed to
//	bayou_queued_bytes                    gauge    message bytes waiting for (or unacknowledged by) clients
//	bayou_held_connects                   gauge    /meta/connect requests held
//	bayou_messages_received_total{type}   counter  client messages: handshake, connect, subscribe, unsubscribe, disconnect, other_meta, publish
//	bayou_publishes_total                 counter  publishes accepted
//	bayou_deliveries_total{transport}     counter  messages written to clients
//	bayou_written_bytes_total{transport}  counter  bytes written to clients
//	bayou_handshakes_total                counter  successful handshakes
//	bayou_errors_total{code}              counter  unsuccessful replies by Bayeux error code (401, 402, 403, 405, 429, ...)
//	bayou_extension_rejections_total{code} counter messages and channels refused by extensions, by code
//	bayou_sessions_ended_total{reason}    counter  disconnect, expired, slow_consumer, server
//	bayou_replayed_messages_total         counter  messages replayed from history
//	bayou_ack_resent_batches_total        counter  unacknowledged batches sent again (ack extension)
//	bayou_ack_resent_messages_total       counter  their messages
//
// With an engine that reports its work (bayeux.EngineStatser, such as the
// Redis engine of bayeux/redis):
//
//	bayou_engine_round_trips_total        counter  requests to the store (a command or a pipeline)
//	bayou_engine_commands_total           counter  commands sent
//	bayou_engine_errors_total             counter  commands that failed
//	bayou_engine_reconnects_total         counter  pub/sub connection re-opened
//	bayou_engine_nodes                    gauge    live nodes of the cluster
package metrics
