package cache

import (
	"context"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImagePrune says which images GC removes from index.json before it sweeps.
type ImagePrune int

// Image prune policies; the zero value keeps every image.
const (
	KeepImages     ImagePrune = iota
	DanglingImages            // entries without a name (docker's `image prune`)
	UnusedImages              // every image no container's lease holds (docker's `image prune -a`)
)

// PrunedImage is an index.json entry GC removed: its name (zero for a dangling one), manifest
// and image ID, the one commit printed and kiln images shows.
type PrunedImage struct {
	Name   Name
	Digest v1.Hash
	ID     v1.Hash
}

// pruneImages drops the index.json entries opts.Images selects, sparing every image a live
// lease holds, and returns them; with opts.DryRun it only reports them.
func (s *Store) pruneImages(ctx context.Context, opts GCOptions) ([]PrunedImage, error) {
	if opts.Images == KeepImages {
		return nil, nil
	}
	held := newLiveSet()
	if err := s.leaseRoots(held); err != nil {
		return nil, err
	}
	var out []PrunedImage
	prune := func(d v1.Descriptor) bool {
		n, named := entryName(d)
		if held.blobs[d.Digest.Hex] || (named && opts.Images == DanglingImages) {
			return false
		}
		id, err := s.imageID(d)
		if err != nil {
			id = d.Digest // a missing manifest: its digest is all there is
		}
		out = append(out, PrunedImage{Name: n, Digest: d.Digest, ID: id})
		return true
	}
	if opts.DryRun {
		im, err := s.readIndex()
		if err != nil {
			return nil, err
		}
		for _, d := range im.Manifests {
			prune(d)
		}
		return out, nil
	}
	err := s.updateIndex(ctx, func(im *v1.IndexManifest) (bool, error) {
		out = nil
		before := len(im.Manifests)
		im.Manifests = slices.DeleteFunc(im.Manifests, prune)
		return len(im.Manifests) != before, nil
	})
	return out, err
}
