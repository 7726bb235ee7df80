package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"golang.org/x/sync/errgroup"
)

// layerParallelism bounds concurrent layer copies per image: enough to overlap registry
// round-trips, few enough not to thrash the disk.
const layerParallelism = 4

// WriteImage copies the image's missing blobs into the store, verifying every digest: layers
// in parallel, then the config, then the manifest last so a stored manifest always has its
// blobs. It returns the manifest's descriptor; nothing is tagged.
func (s *Store) WriteImage(ctx context.Context, img v1.Image) (v1.Descriptor, error) {
	desc, err := partial.Descriptor(img)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image: %w", err)
	}
	if err := s.writeLayers(ctx, img); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image %s: %w", desc.Digest, err)
	}
	// The manifest's config descriptor, not ConfigName: for some images (an OCI layout)
	// ConfigName hashes the config bytes, which would store a config the manifest does not name.
	m, err := img.Manifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image %s: manifest: %w", desc.Digest, err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image %s: config: %w", desc.Digest, err)
	}
	if err := s.writeDescribed(ctx, bytes.NewReader(cfg), m.Config.Digest, m.Config.Size); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image %s: config: %w", desc.Digest, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image %s: manifest: %w", desc.Digest, err)
	}
	if _, _, err := s.WriteBlob(ctx, bytes.NewReader(raw), desc.Digest); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image %s: manifest: %w", desc.Digest, err)
	}
	return *desc, nil
}

// writeLayers copies the layers the store lacks, a bounded few at a time. Foreign
// (non-distributable) layers are skipped, as registries and docker do.
func (s *Store) writeLayers(ctx context.Context, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(layerParallelism)
	for _, l := range layers {
		g.Go(func() error { return s.writeLayer(ctx, l) })
	}
	return g.Wait()
}

func (s *Store) writeLayer(ctx context.Context, l v1.Layer) error {
	if mt, err := l.MediaType(); err == nil && !mt.IsDistributable() {
		return nil
	}
	d, err := l.Digest()
	if err != nil {
		return fmt.Errorf("layer digest: %w", err)
	}
	if s.HasContent(d) { // stored, or remote and fetched only when read
		return nil
	}
	size, err := l.Size()
	if err != nil {
		return fmt.Errorf("layer %s: size: %w", d, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	defer rc.Close()
	if err := s.writeDescribed(ctx, rc, d, size); err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	return nil
}

// writeDescribed stores a blob that must match its descriptor's digest and size.
func (s *Store) writeDescribed(ctx context.Context, r io.Reader, d v1.Hash, size int64) error {
	_, got, err := s.WriteBlob(ctx, r, d)
	if err == nil && got != size {
		err = fmt.Errorf("blob %s has %d bytes, its descriptor says %d: the image is corrupt", d, got, size)
	}
	return err
}

// WriteIndex stores an image index, every child image or index it lists, and finally the
// index manifest itself. Children of unknown media types are skipped.
func (s *Store) WriteIndex(ctx context.Context, idx v1.ImageIndex) (v1.Descriptor, error) {
	desc, err := partial.Descriptor(idx)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", desc.Digest, err)
	}
	for _, child := range im.Manifests {
		if err := s.writeChild(ctx, idx, child); err != nil {
			return v1.Descriptor{}, fmt.Errorf("write index %s: %w", desc.Digest, err)
		}
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", desc.Digest, err)
	}
	if _, _, err := s.WriteBlob(ctx, bytes.NewReader(raw), desc.Digest); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", desc.Digest, err)
	}
	return *desc, nil
}

func (s *Store) writeChild(ctx context.Context, idx v1.ImageIndex, child v1.Descriptor) error {
	switch {
	case child.MediaType.IsImage():
		img, err := idx.Image(child.Digest)
		if err != nil {
			return fmt.Errorf("child %s: %w", child.Digest, err)
		}
		_, err = s.WriteImage(ctx, img)
		return err
	case child.MediaType.IsIndex():
		sub, err := idx.ImageIndex(child.Digest)
		if err != nil {
			return fmt.Errorf("child %s: %w", child.Digest, err)
		}
		_, err = s.WriteIndex(ctx, sub)
		return err
	}
	return nil
}
