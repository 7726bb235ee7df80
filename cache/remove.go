package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ConflictError refuses to remove the last tag of an image that a lease (a container) uses,
// in docker's words; `kiln rmi -f` removes the tag and keeps the data for the user.
type ConflictError struct {
	Ref     string // what the user named
	ByID    bool   // named by image ID rather than by tag
	Holder  string // e.g. "container 3f2a1b4c5d6e"
	ImageID v1.Hash
}

func (e *ConflictError) Error() string {
	if e.ByID {
		return fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is being used by %s", e.Ref, e.Holder)
	}
	return fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - %s is using its referenced image %s",
		e.Ref, e.Holder, shortHex(e.ImageID))
}

// RemovedImage is what RemoveImage did: the tags it removed and, once index.json no longer
// lists the image, its ID (docker's "Deleted:"; not after a forced untag of a container's
// image, which docker keeps). Its blobs go at the next GC that no container's lease stops.
type RemovedImage struct {
	Untagged []Name
	Deleted  v1.Hash
}

// RemoveImage untags ref, or every tag of the image when ref is an ID or digest (force is
// needed when there are several); a dangling image, named by ID or digest, loses its entry.
// The last tag of an image that a live lease uses stays unless force, which untags and leaves
// the data to the lease.
func (s *Store) RemoveImage(ctx context.Context, ref string, force bool) (RemovedImage, error) {
	desc, name, err := s.Lookup(ref)
	if errors.Is(err, ErrNotFound) {
		return RemovedImage{}, noSuchImage(ref)
	}
	if err != nil {
		return RemovedImage{}, err
	}
	tagged, err := s.List()
	if err != nil {
		return RemovedImage{}, err
	}
	var all []Name
	for _, t := range tagged {
		if t.Descriptor.Digest == desc.Digest {
			all = append(all, t.Name)
		}
	}
	byTag := false
	if n, perr := ParseName(ref); perr == nil && !name.IsZero() && n.String() == name.String() && n.Digest() == "" {
		byTag = true
	}
	targets := []Name{name}
	if !byTag {
		targets = all
		if len(targets) > 1 && !force {
			return RemovedImage{}, fmt.Errorf("image %s is referenced by %d tags: remove them by name, or use -f", ref, len(targets))
		}
	}
	var leased *ConflictError
	last := len(targets) == len(all)
	if last {
		if err := s.checkUnleased(ref, !byTag, desc); errors.As(err, &leased) && force {
			// forced: untagged, the data stays for the container
		} else if err != nil {
			return RemovedImage{}, err
		}
	}
	for _, n := range targets {
		if err := s.Untag(ctx, n); err != nil && !errors.Is(err, ErrNotFound) {
			return RemovedImage{}, fmt.Errorf("untag %s: %w", n.Short(), err)
		}
	}
	out := RemovedImage{Untagged: targets}
	if !last {
		return out, nil
	}
	err = s.updateIndex(ctx, func(im *v1.IndexManifest) (bool, error) {
		before := len(im.Manifests)
		im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool { return isDangling(d, desc.Digest) })
		return len(im.Manifests) != before, nil
	})
	if err != nil {
		return out, fmt.Errorf("remove image %s: %w", ref, err)
	}
	if leased == nil || len(targets) == 0 { // a forced untag leaves a container's image to it, as docker's
		if out.Deleted, err = s.imageID(desc); err != nil {
			out.Deleted = desc.Digest
		}
	}
	return out, nil
}

// checkUnleased fails with a ConflictError when a live lease names the image.
func (s *Store) checkUnleased(ref string, byID bool, desc v1.Descriptor) error {
	leases, err := s.Leases()
	if err != nil {
		return err
	}
	// A lease may name one platform's manifest of the index that ref names.
	image := newLiveSet()
	s.markManifest(image, desc.Digest, 0)
	for _, l := range leases {
		for _, h := range l.Images {
			if !image.blobs[h.Hex] {
				continue
			}
			id, err := s.imageID(desc)
			if err != nil {
				id = desc.Digest
			}
			return &ConflictError{Ref: ref, ByID: byID, Holder: leaseHolder(l.ID), ImageID: id}
		}
	}
	return nil
}

// leaseHolder names a lease's owner for messages: "container-<id>" is "container <short id>".
func leaseHolder(id string) string {
	kind, rest, ok := strings.Cut(id, "-")
	if !ok {
		return id
	}
	return kind + " " + shortHex(v1.Hash{Hex: rest})
}

func shortHex(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Hex[:12]
	}
	return h.Hex
}

// noSuchImage is docker's "no such image: x", matching ErrNotFound.
type noSuchImage string

func (e noSuchImage) Error() string        { return "no such image: " + string(e) }
func (e noSuchImage) Is(target error) bool { return target == ErrNotFound }
