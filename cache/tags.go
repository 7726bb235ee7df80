package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Annotations that name a tagged manifest in index.json. Both hold the full normalized name:
// ref.name is what skopeo and umoci match "oci:<root>:<name>" against, image.name is what
// containerd and nerdctl import as the image name.
const (
	AnnotationRefName   = "org.opencontainers.image.ref.name"
	AnnotationImageName = "io.containerd.image.name"
)

// Tagged is one named image in the store.
type Tagged struct {
	Name       Name
	Descriptor v1.Descriptor
}

// Tag points n at the stored manifest or index desc, moving the tag if it exists. A digest
// name must carry desc's own digest.
func (s *Store) Tag(ctx context.Context, n Name, desc v1.Descriptor) error {
	return s.tag(ctx, n, desc, false)
}

// Retag is Tag for a user's own tagging (tag, pull, load, commit): the image the name leaves
// stays as a dangling image when nothing else names it, as docker's.
func (s *Store) Retag(ctx context.Context, n Name, desc v1.Descriptor) error {
	return s.tag(ctx, n, desc, true)
}

// tag points n at desc in one rewrite of index.json; with keep the image n leaves, named
// no other way, stays as a dangling entry.
func (s *Store) tag(ctx context.Context, n Name, desc v1.Descriptor, keep bool) error {
	if n.IsZero() {
		return fmt.Errorf("tag: empty name")
	}
	if n.Digest() != "" && n.Digest() != desc.Digest.String() {
		return fmt.Errorf("tag %s: name's digest differs from the image's %s", n, desc.Digest)
	}
	entry, err := s.indexEntry(desc, map[string]string{AnnotationRefName: n.String(), AnnotationImageName: n.String()})
	if err != nil {
		return fmt.Errorf("tag %s: %w", n, err)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	return s.updateIndex(ctx, func(im *v1.IndexManifest) (bool, error) {
		var left []v1.Descriptor
		for _, d := range im.Manifests {
			if !entryIs(d, n) {
				continue
			}
			if d.Digest == entry.Digest && d.MediaType == entry.MediaType && d.Size == entry.Size {
				return false, nil // already so: a no-op rebuild rewrites (and fsyncs) nothing
			}
			if keep && !slices.ContainsFunc(im.Manifests, func(o v1.Descriptor) bool { return o.Digest == d.Digest && !entryIs(o, n) }) {
				left = append(left, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: d.Platform})
			}
		}
		// A name replaces the image's dangling entry: a tagged image is not dangling.
		im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool {
			return entryIs(d, n) || isDangling(d, entry.Digest)
		})
		im.Manifests = append(append(im.Manifests, left...), entry)
		return true, nil
	})
}

// KeepUntagged lists the stored manifest or index desc in index.json without a name: a
// dangling image, as docker's commit without a name makes, which `kiln images` shows as
// <none> and GC keeps until an image prune. An image index.json lists already stays as it is.
func (s *Store) KeepUntagged(ctx context.Context, desc v1.Descriptor) error {
	entry, err := s.indexEntry(desc, nil)
	if err != nil {
		return fmt.Errorf("keep image: %w", err)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	return s.updateIndex(ctx, func(im *v1.IndexManifest) (bool, error) {
		if slices.ContainsFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Digest == entry.Digest }) {
			return false, nil
		}
		im.Manifests = append(im.Manifests, entry)
		return true, nil
	})
}

// Named returns the images names point at now; after moving them, KeepUnnamed keeps those
// left without a name.
func (s *Store) Named(names []Name) ([]v1.Descriptor, error) {
	tagged, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []v1.Descriptor
	for _, t := range tagged {
		if slices.ContainsFunc(names, func(n Name) bool { return n.String() == t.Name.String() }) {
			out = append(out, t.Descriptor)
		}
	}
	return out, nil
}

// KeepUnnamed keeps each image of descs that no name points at any more as a dangling image,
// as docker keeps the image a rebuilt, pulled or moved tag left as <none> until an image prune.
// An image already collected is skipped.
func (s *Store) KeepUnnamed(ctx context.Context, descs []v1.Descriptor) error {
	for _, d := range descs {
		if err := s.KeepUntagged(ctx, d); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// indexEntry is index.json's entry for the stored manifest or index desc.
func (s *Store) indexEntry(desc v1.Descriptor, annotations map[string]string) (v1.Descriptor, error) {
	if !desc.MediaType.IsImage() && !desc.MediaType.IsIndex() {
		return v1.Descriptor{}, fmt.Errorf("%q is not an image or index media type", desc.MediaType)
	}
	if !s.HasBlob(desc.Digest) {
		return v1.Descriptor{}, fmt.Errorf("manifest %s is not in the store: %w", desc.Digest, ErrNotFound)
	}
	return v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest, Platform: desc.Platform,
		Annotations: annotations}, nil
}

// isDangling says whether d is an entry without a name for the manifest h.
func isDangling(d v1.Descriptor, h v1.Hash) bool {
	_, named := entryName(d)
	return !named && d.Digest == h
}

// Untag removes the tag n; the image's blobs stay until GC. ErrNotFound if n is not a tag.
func (s *Store) Untag(ctx context.Context, n Name) error {
	return s.updateIndex(ctx, func(im *v1.IndexManifest) (bool, error) {
		before := len(im.Manifests)
		im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool { return entryIs(d, n) })
		if len(im.Manifests) == before {
			return false, fmt.Errorf("untag %s: %w", n.Short(), ErrNotFound)
		}
		return true, nil
	})
}

// List returns every tagged image, sorted by normalized name.
func (s *Store) List() ([]Tagged, error) {
	tagged, _, err := s.entries()
	return tagged, err
}

// Dangling returns the images index.json lists without a name (KeepUntagged's), in the order
// they were added.
func (s *Store) Dangling() ([]v1.Descriptor, error) {
	_, dangling, err := s.entries()
	return dangling, err
}

// entries splits index.json into the tagged images, sorted by normalized name, and the
// dangling ones.
func (s *Store) entries() ([]Tagged, []v1.Descriptor, error) {
	im, err := s.readIndex()
	if err != nil {
		return nil, nil, err
	}
	var tagged []Tagged
	var dangling []v1.Descriptor
	for _, d := range im.Manifests {
		if n, ok := entryName(d); ok {
			tagged = append(tagged, Tagged{Name: n, Descriptor: d})
		} else {
			dangling = append(dangling, d)
		}
	}
	slices.SortStableFunc(tagged, func(a, b Tagged) int { return strings.Compare(a.Name.String(), b.Name.String()) })
	return tagged, dangling, nil
}

// entryName is the name an index.json entry carries, written by kiln or another tool;
// containerd's image.name wins because containerd puts only the tag in ref.name.
func entryName(d v1.Descriptor) (Name, bool) {
	for _, key := range []string{AnnotationImageName, AnnotationRefName} {
		if v := d.Annotations[key]; v != "" {
			n, err := ParseName(v)
			return n, err == nil
		}
	}
	return Name{}, false
}

func entryIs(d v1.Descriptor, n Name) bool {
	got, ok := entryName(d)
	return ok && got == n
}

// readIndex reads index.json without a lock: writers replace it by rename.
func (s *Store) readIndex() (*v1.IndexManifest, error) {
	raw, err := os.ReadFile(s.indexPath())
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("read image index %s: %w", s.indexPath(), err)
	}
	return im, nil
}

// updateIndex rewrites index.json under the index lock; fn reports whether it changed anything.
func (s *Store) updateIndex(ctx context.Context, fn func(*v1.IndexManifest) (bool, error)) error {
	return s.withIndexLock(ctx, func() error {
		im, err := s.readIndex()
		if err != nil {
			return err
		}
		changed, err := fn(im)
		if err != nil || !changed {
			return err
		}
		if im.Manifests == nil {
			im.Manifests = []v1.Descriptor{}
		}
		data, err := json.Marshal(im)
		if err != nil {
			return fmt.Errorf("encode image index: %w", err)
		}
		if err := s.writeFileAtomic(s.indexPath(), data, 0o644); err != nil {
			return fmt.Errorf("write image index: %w", err)
		}
		return nil
	})
}
