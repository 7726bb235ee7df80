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

// Rename gives c the name name, which no other container may have (docker's `rename`).
func (s *Store) Rename(ctx context.Context, c *Container, name string) error {
	if !validName(name) {
		return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	all, err := s.List()
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Name == name && o.ID != c.ID {
			return &NameConflictError{Name: name, ID: o.ID}
		}
	}
	cur, err := s.load(c.ID)
	if err != nil {
		return fmt.Errorf("rename %s: %w", c.Name, err)
	}
	cur.Name = name
	if err := writeRecord(cur.dir, cur.Config); err != nil {
		return fmt.Errorf("rename %s: %w", c.Name, err)
	}
	c.Name = name
	return nil
}
