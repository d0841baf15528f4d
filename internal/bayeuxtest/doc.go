// Package bayeuxtest holds what the tests of Bayou's packages share: a wait
// for a condition (Eventually), a buffer that goroutines may write and read
// at once (Buffer), a loopback HTTP server that is shut down at the end of
// the test (Serve), and the client side of a test: JSON POSTs parsed with
// gjson (Post, MustPost) and WebSockets (DialWebSocket).
//
// It does not import package bayeux, so that bayeux's own tests can use it:
// Serve takes the server as an http.Handler and its Shutdown method.
package bayeuxtest
