package container

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runtime"
)

// PruneSystem is `kiln system prune`: it removes every stopped container, then runs the
// image store's GC with opts, so the removed containers' leases no longer keep their images.
// It returns the removed containers' ids and what GC removed.
func (s *Store) PruneSystem(ctx context.Context, rt *runtime.Runtime, opts cache.GCOptions) ([]string, cache.GCStats, error) {
	ids, perr := s.Prune(ctx, rt)
	st, err := cache.OpenExclusive(s.root)
	if err != nil {
		return ids, cache.GCStats{}, errors.Join(perr, fmt.Errorf("prune images: %w", err))
	}
	defer st.Close()
	stats, err := st.GC(ctx, opts)
	if err != nil {
		err = fmt.Errorf("prune images: %w", err)
	}
	return ids, stats, errors.Join(perr, err)
}
