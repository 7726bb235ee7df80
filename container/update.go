package container

import (
	"context"
	"fmt"

	"github.com/kiln-build/kiln/runtime"
)

// ResourceChange is `kiln update`'s flags: the limits to set; nil leaves one as it is.
type ResourceChange struct {
	Memory, MemorySwap, PidsLimit *int64
	CPUs                          *float64
}

// Update changes c's cgroup limits (docker update): live through its monitor when it runs, and
// in its record, so a restart or a later start keeps them.
func (s *Store) Update(ctx context.Context, c *Container, ch ResourceChange) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.load(c.ID)
	if err != nil {
		return fmt.Errorf("update %s: %w", c.Name, err)
	}
	r := cur.Spec.Resources
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&r.Memory, ch.Memory)
	set(&r.MemorySwap, ch.MemorySwap)
	set(&r.PidsLimit, ch.PidsLimit)
	if ch.CPUs != nil {
		r.CPUs = *ch.CPUs
	}
	if r.MemorySwap > 0 && r.Memory > r.MemorySwap {
		return fmt.Errorf("update %s: memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", c.Name)
	}
	if r.MemorySwap != 0 && r.Memory == 0 {
		return fmt.Errorf("update %s: you should always set the memory limit when using the memoryswap limit", c.Name)
	}
	if st, err := c.State(); err == nil && st.Running() {
		if err := c.ask(ctx, request{Op: "update", Resources: &r}); err != nil {
			return fmt.Errorf("update %s: %w", c.Name, err)
		}
	}
	cur.Spec.Resources = r
	if err := writeRecord(cur.dir, cur.Config); err != nil {
		return fmt.Errorf("update %s: %w", c.Name, err)
	}
	c.Spec.Resources = r
	return nil
}

// update applies new limits to the running container and keeps them for its restarts.
func (m *monitor) update(ctx context.Context, ctr *runtime.Container, r *runtime.Resources) error {
	if r == nil {
		return fmt.Errorf("update: no resources")
	}
	if err := ctr.Update(ctx, *r); err != nil {
		return err
	}
	m.c.Spec.Resources = *r
	return nil
}
