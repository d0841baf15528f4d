//go:build !linux

package bayeux

import "context"

// idleWatch keeps idle WebSockets without a goroutine on Linux (see
// idlewatch_linux.go); elsewhere they wait on goroutines.
type idleWatch struct{}

func newIdleWatch(*Server) *idleWatch { return nil }

func (*idleWatch) watch(*wsConn) bool { return false }

func (*idleWatch) closed(*wsConn) {}

func (*idleWatch) run(context.Context) {}
