// Package wsconn is the byte-level side of a server WebSocket, below the
// WebSocket library and with no Bayeux knowledge: it hijacks the HTTP
// connection behind a reader that hands the library one frame at a time,
// so that an idle socket can wait for data with a shallow call (on a small
// goroutine stack) instead of inside the library's reader, and it is the one
// writer of every byte the server sends on the connection: data frames,
// pings, pongs and close frames, all under one lock and one deadline.
//
// The WebSocket library (gorilla/websocket) still performs the upgrade
// handshake and parses incoming frames from the Conn; it must be given
// ping and close handlers that answer through Conn (Pong, Shut) so that it
// never writes itself.
package wsconn
