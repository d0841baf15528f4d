//go:build !unix

package wsconn

// canPeek reports whether readable works on this system: elsewhere an idle
// socket waits inside the WebSocket reader.
const canPeek = false

func readable(uintptr) bool { return true }
