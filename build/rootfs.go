package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/runtime"
)

// forceFlatten makes stageRootfs copy layers even when it could mount them (tests).
var forceFlatten = false

// stageRootfs gives a view of the filesystem that layers make (base first), for reading, and
// a function that releases it. As root it mounts the layers' snapshots as an overlay
// (runtime.MountLayers), so nothing is copied; otherwise it applies the layers into a
// temporary directory.
func (s *env) stageRootfs(ctx context.Context, layers []layerRef) (string, func(), error) {
	st := s.opts.Store
	tmp, err := st.TempDir("from-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	dir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	if len(layers) == 0 {
		return dir, cleanup, nil
	}
	if os.Geteuid() == 0 && !forceFlatten {
		var lower []string
		for _, l := range layers {
			snap, err := st.Snapshot(ctx, l.diffID, l.open)
			if err != nil {
				cleanup()
				return "", nil, fmt.Errorf("prepare layer %s: %w", l.diffID, err)
			}
			lower = append(lower, snap)
		}
		rootfs, release, err := runtime.MountLayers(filepath.Join(tmp, "mnt"), lower)
		if err != nil {
			cleanup()
			return "", nil, err
		}
		return rootfs, func() { _ = release(); cleanup() }, nil
	}
	if err := flatten(ctx, layers, dir); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

// flatten applies every layer into dir, performing whiteouts.
func flatten(ctx context.Context, layers []layerRef, dir string) error {
	for _, l := range layers {
		if err := applyLayer(ctx, l, dir); err != nil {
			return fmt.Errorf("unpack layer %s: %w", l.diffID, err)
		}
	}
	return nil
}

func applyLayer(ctx context.Context, l layerRef, dir string) error {
	r, err := layer.OpenUncompressed(l.open)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = layer.Apply(ctx, r, dir, layer.ApplyOptions{Whiteouts: layer.DeleteWhiteouts})
	return err
}
