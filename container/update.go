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
	CPUShares                     *uint64
	CpusetCPUs, CpusetMems        *string
	Restart                       *RestartPolicy // --restart: the policy the monitor applies from its next exit
}

// limits says whether ch changes a cgroup limit (not only the restart policy).
func (ch ResourceChange) limits() bool {
	return ch.Memory != nil || ch.MemorySwap != nil || ch.PidsLimit != nil || ch.CPUs != nil ||
		ch.CPUShares != nil || ch.CpusetCPUs != nil || ch.CpusetMems != nil
}

// Update changes c's cgroup limits and restart policy (docker update): live through its monitor
// when it runs, and in its record, so a restart or a later start keeps them.
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
	if ch.CPUShares != nil {
		r.CPUShares = *ch.CPUShares
	}
	if ch.CpusetCPUs != nil {
		r.CpusetCPUs = *ch.CpusetCPUs
	}
	if ch.CpusetMems != nil {
		r.CpusetMems = *ch.CpusetMems
	}
	if err := runtime.CheckResources(r); err != nil {
		return fmt.Errorf("update %s: %w", c.Name, err)
	}
	policy := cur.Restart
	if ch.Restart != nil {
		if cur.AutoRemove && ch.Restart.Name != RestartNo {
			return fmt.Errorf("update %s: restart policy cannot be updated because AutoRemove is enabled for the container", c.Name)
		}
		policy = *ch.Restart
	}
	if st, err := c.State(); err == nil && (st.Running() || st.Status == StatusRestarting) && !st.MonitorLost {
		req := request{Op: "update", Restart: ch.Restart}
		if ch.limits() {
			req.Resources = &r
		}
		if err := c.ask(ctx, req); err != nil {
			return fmt.Errorf("update %s: %w", c.Name, err)
		}
	}
	cur.Spec.Resources, cur.Restart = r, policy
	if err := writeRecord(cur.dir, cur.Config); err != nil {
		return fmt.Errorf("update %s: %w", c.Name, err)
	}
	c.Spec.Resources, c.Restart = r, policy
	return nil
}

// update applies new limits to the running container (ctr; nil between restarts) and keeps
// them, and a new restart policy, for its next exit and restarts.
func (m *monitor) update(ctx context.Context, ctr *runtime.Container, req request) error {
	if req.Resources != nil {
		if ctr != nil {
			if err := ctr.Update(ctx, *req.Resources); err != nil {
				return err
			}
		}
		m.c.Spec.Resources = *req.Resources
	}
	if req.Restart != nil {
		m.c.Restart = *req.Restart
	}
	return nil
}
