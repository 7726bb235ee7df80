package container

import (
	"context"
	"fmt"
	"time"
)

// waitPoll is how often Wait rereads the state the monitor writes.
const waitPoll = 50 * time.Millisecond

// stopped is docker's "not-running": exited, dead, or created with no monitor about to run it.
func stopped(st State) bool {
	return !st.Running() && !(st.Status == StatusCreated && processAlive(st.MonitorPid, st.MonitorStart))
}

// Wait blocks until the container is not running (docker's `wait`) and returns its last state;
// a restart policy keeps it waiting until the monitor gives up.
func (c *Container) Wait(ctx context.Context) (State, error) {
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		st, err := c.State()
		if err != nil || stopped(st) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("wait %s: %w", c.Name, ctx.Err())
		case <-t.C:
		}
	}
}
