//go:build !unix

package wsconn

import "errors"

// canPeek reports whether readable works on this system: elsewhere an idle
// socket waits inside the WebSocket reader.
const canPeek = false

func readable(uintptr) bool { return true }

// errWouldBlock is writeOnce's error: elsewhere WriteItemsNow never writes
// (there is no raw connection).
var errWouldBlock = errors.New("wsconn: would block")

func writeOnce(uintptr, []byte) (int, error) { return 0, errWouldBlock }
