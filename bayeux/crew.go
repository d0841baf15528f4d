package bayeux

import (
	"context"
	"sync"
	"sync/atomic"
)

// crew owns the server's goroutines: every one is started by spawn, and
// Shutdown stops the crew and waits until the last one has returned. It is
// lock-free, since sockets spawn a goroutine per flush and per frame read.
type crew struct {
	state atomic.Int64 // running goroutines, plus stopBit once stopping
	once  sync.Once
	idle  chan struct{} // closed when stopping and none is running
}

const stopBit = 1 << 62

func newCrew() *crew { return &crew{idle: make(chan struct{})} }

// spawn runs f on a new goroutine, unless the crew is stopping: then it
// runs nothing and reports false (the server is shutting down, and what f
// would do, Shutdown does).
func (c *crew) spawn(f func()) bool {
	if !c.enter() {
		return false
	}
	go c.run(f)
	return true
}

func (c *crew) run(f func()) {
	defer c.leave()
	f()
}

// enter counts a goroutine about to start, unless the crew is stopping
// (then it reports false). The goroutine must call leave when it returns.
// Hot paths use the pair with a plain go statement, which allocates nothing,
// where spawn allocates its function value.
func (c *crew) enter() bool {
	for {
		n := c.state.Load()
		if n&stopBit != 0 {
			return false
		}
		if c.state.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// leave uncounts a goroutine counted by enter.
func (c *crew) leave() {
	if c.state.Add(-1) == stopBit {
		c.once.Do(func() { close(c.idle) })
	}
}

// stop refuses new goroutines from now on.
func (c *crew) stop() {
	if c.state.Or(stopBit)&^stopBit == 0 {
		c.once.Do(func() { close(c.idle) })
	}
}

// wait returns when every goroutine has returned (after stop), or ctx's
// error when it ends first.
func (c *crew) wait(ctx context.Context) error {
	select {
	case <-c.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
