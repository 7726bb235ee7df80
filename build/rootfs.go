package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache/layer"
)

// maxMountData is the size of the page that carries mount(2) options; longer lowerdir
// lists do not fit, and such stacks are flattened into a directory instead.
const maxMountData = 4000

// forceFlatten makes stageRootfs copy layers even when it could mount them (tests).
var forceFlatten = false

// stageRootfs gives a read-only view of the filesystem that layers make (base first) and a
// function that releases it. As root it mounts the layers' snapshots as an overlay, so
// nothing is copied; otherwise it applies the layers into a temporary directory.
func (s *solver) stageRootfs(ctx context.Context, layers []layerRef) (string, func(), error) {
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
		for i := len(layers) - 1; i >= 0; i-- { // overlay lists the top layer first
			snap, err := st.Snapshot(ctx, layers[i].diffID, layers[i].open)
			if err != nil {
				cleanup()
				return "", nil, fmt.Errorf("prepare layer %s: %w", layers[i].diffID, err)
			}
			lower = append(lower, snap)
		}
		if done, ok, err := mountLower(lower, dir); ok || err != nil {
			if err != nil {
				cleanup()
				return "", nil, err
			}
			return dir, func() { done(); cleanup() }, nil
		}
	}
	if err := flatten(ctx, layers, dir); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

// mountLower mounts a read-only overlay of lower (top first) on dir. It reports false
// when the list is too long for one mount call, so the caller flattens instead.
func mountLower(lower []string, dir string) (func(), bool, error) {
	if len(lower) == 1 {
		// overlayfs needs two lower layers without an upper one; a bind is the same view.
		if err := unix.Mount(lower[0], dir, "", unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return nil, false, fmt.Errorf("bind %s: %w", lower[0], err)
		}
		_ = unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
	} else {
		data := "lowerdir=" + strings.Join(lower, ":")
		if len(data) > maxMountData {
			return nil, false, nil
		}
		if err := unix.Mount("overlay", dir, "overlay", unix.MS_RDONLY, data); err != nil {
			return nil, false, fmt.Errorf("mount overlay of %d layers: %w", len(lower), err)
		}
	}
	return func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }, true, nil
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
