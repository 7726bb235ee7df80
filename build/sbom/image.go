package sbom

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ScanImage scans an image's merged layers, e.g. the built image as cache.Store.Image returns
// it; without opts.ImageDigest, the namespace derives from the image's manifest digest.
func ScanImage(ctx context.Context, img v1.Image, opts Options) (*Document, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("sbom: layers: %w", err)
	}
	if opts.ImageDigest == "" {
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("sbom: image digest: %w", err)
		}
		opts.ImageDigest = d.String()
	}
	opens := make([]func() (io.ReadCloser, error), len(ls))
	for i, l := range ls {
		opens[i] = l.Compressed
	}
	return ScanLayers(ctx, opens, opts)
}
