package registry

import (
	"context"
	"fmt"
	"io"
	"os"

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
	rc := mutate.Extract(img)
	defer rc.Close()
	if _, err := ctxio.Copy(ctx, w, rc); err != nil {
		return fmt.Errorf("export %s: %w", manifest, err)
	}
	return nil
}

// ExportDir writes the stored image's flattened filesystem into dir, creating it if needed
// (`--output type=local`). Paths are confined to dir as for any untrusted layer.
func ExportDir(ctx context.Context, s *cache.Store, manifest v1.Hash, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	img, err := s.Image(manifest)
	if err != nil {
		return fmt.Errorf("export %s: %w", manifest, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("export %s: %w", manifest, err)
	}
	// Layer by layer through cache/layer, so the decompression limits hold here too.
	for _, l := range layers {
		if err := applyLayer(ctx, l, dir); err != nil {
			return fmt.Errorf("export to %s: %w", dir, err)
		}
	}
	return nil
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
