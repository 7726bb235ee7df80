package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/internal/ctxio"
)

// ExportTar streams the stored image's filesystem, its layers flattened with whiteouts
// applied, as one tar (`--output type=tar`).
func ExportTar(ctx context.Context, s *cache.Store, manifest v1.Hash, w io.Writer) error {
	img, err := s.Image(manifest)
	if err != nil {
		return fmt.Errorf("export %s: %w", manifest, err)
	}
	rc := mutate.Extract(limitedImage{img})
	defer rc.Close()
	if _, err := ctxio.Copy(ctx, w, rc); err != nil {
		return fmt.Errorf("export %s: %w", manifest, err)
	}
	return nil
}

// ExportDir writes the stored image's flattened filesystem into dir, creating it if needed
// (`--output type=local`). Paths are confined to dir as for any untrusted layer. A dir that is
// missing or empty is filled through a sibling staging dir renamed into place, so a failed
// export (a refused layer, a decompression limit) leaves nothing behind.
func ExportDir(ctx context.Context, s *cache.Store, manifest v1.Hash, dir string) error {
	img, err := s.Image(manifest)
	if err != nil {
		return fmt.Errorf("export %s: %w", manifest, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("export %s: %w", manifest, err)
	}
	if !emptyOrMissing(dir) {
		return applyLayers(ctx, layers, dir)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	stage, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), "."+filepath.Base(dir)+"-*")
	if err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	defer os.RemoveAll(stage) //nolint:errcheck // gone after the rename; else what a failure left
	if err := os.Chmod(stage, 0o755); err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	if err := applyLayers(ctx, layers, stage); err != nil {
		return err
	}
	os.Remove(dir) //nolint:errcheck // empty (checked above) or missing
	if err := os.Rename(stage, dir); err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	return nil
}

// applyLayers unpacks layers in order into dir, through cache/layer so that the
// decompression limits hold here too.
func applyLayers(ctx context.Context, layers []v1.Layer, dir string) error {
	for _, l := range layers {
		if err := applyLayer(ctx, l, dir); err != nil {
			return fmt.Errorf("export to %s: %w", dir, err)
		}
	}
	return nil
}

func emptyOrMissing(dir string) bool {
	ents, err := os.ReadDir(dir)
	return errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0)
}

func applyLayer(ctx context.Context, l v1.Layer, dir string) error {
	r, err := layer.OpenUncompressed(l.Compressed)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = layer.Apply(ctx, r, dir, layer.ApplyOptions{Whiteouts: layer.DeleteWhiteouts})
	return err
}

// limitedImage flattens through cache/layer's decompression (and its limits) instead of
// go-containerregistry's, which has none.
type limitedImage struct{ v1.Image }

func (i limitedImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = limitedLayer{l}
	}
	return out, nil
}

type limitedLayer struct{ v1.Layer }

func (l limitedLayer) Uncompressed() (io.ReadCloser, error) {
	return layer.OpenUncompressed(l.Compressed)
}
