package cache

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Lookup finds a tagged image the way docker does: by name ("hello" means
// docker.io/library/hello:latest), by digest reference ("hello@sha256:…"), by full
// "sha256:…" manifest digest or image ID, or by an unambiguous image-ID prefix. The image
// ID is the config digest (the index digest for a multi-platform image), as docker shows it;
// an image with attestations has its image's ID.
// The Name returned is the tag found, or the first tag of the image found by digest or ID;
// a dangling image (KeepUntagged's), found only by digest or ID, has the zero Name.
func (s *Store) Lookup(ref string) (v1.Descriptor, Name, error) {
	tagged, dangling, err := s.entries()
	if err != nil {
		return v1.Descriptor{}, Name{}, err
	}
	all := tagged
	for _, d := range dangling {
		all = append(all, Tagged{Descriptor: d})
	}
	if id, ok := strings.CutPrefix(ref, "sha256:"); ok {
		return s.lookupID(all, ref, id)
	}
	n, parseErr := ParseName(ref)
	if parseErr == nil {
		if desc, found, ok := findName(tagged, n); ok {
			return desc, found, nil
		}
	}
	if isHex(ref) {
		return s.lookupID(all, ref, ref)
	}
	if parseErr != nil {
		return v1.Descriptor{}, Name{}, parseErr
	}
	return v1.Descriptor{}, Name{}, notFound(ref)
}

// findName matches a tag exactly, or a digest reference against any tagged manifest digest.
func findName(tagged []Tagged, n Name) (v1.Descriptor, Name, bool) {
	for _, t := range tagged {
		switch {
		case n.Digest() == "" && t.Name == n:
			return t.Descriptor, t.Name, true
		case n.Digest() != "" && t.Descriptor.Digest.String() == n.Digest():
			return t.Descriptor, n, true
		}
	}
	return v1.Descriptor{}, Name{}, false
}

// lookupID matches a full manifest digest, or a full or partial image ID.
func (s *Store) lookupID(tagged []Tagged, ref, id string) (v1.Descriptor, Name, error) {
	if !isHex(id) {
		return v1.Descriptor{}, Name{}, fmt.Errorf("invalid image ID %q: want hex digits", ref)
	}
	var match *Tagged
	for i := range tagged {
		t := &tagged[i]
		if len(id) == 64 && t.Descriptor.Digest.Hex == id {
			return t.Descriptor, t.Name, nil
		}
		imageID, err := s.imageID(t.Descriptor)
		if err != nil || !strings.HasPrefix(imageID.Hex, id) {
			continue
		}
		if match != nil {
			if prev, _ := s.imageID(match.Descriptor); prev != imageID {
				return v1.Descriptor{}, Name{}, fmt.Errorf("image ID prefix %q is ambiguous: it matches %s and %s; type more characters", ref, prev.Hex[:12], imageID.Hex[:12])
			}
			continue
		}
		match = t
	}
	if match == nil {
		return v1.Descriptor{}, Name{}, notFound(ref)
	}
	return match.Descriptor, match.Name, nil
}

// ImageID is what kiln shows as IMAGE ID, like docker: the config digest of an image, the
// digest of an index.
func (s *Store) ImageID(desc v1.Descriptor) (v1.Hash, error) { return s.imageID(desc) }

func (s *Store) imageID(desc v1.Descriptor) (v1.Hash, error) {
	raw, err := s.readBlob(desc.Digest)
	if err != nil {
		return v1.Hash{}, err
	}
	if desc.MediaType.IsIndex() {
		// An image with attestations keeps the ID of its image, which the build printed.
		if im, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err == nil {
			if child, ok := AttestedImage(im); ok {
				return s.imageID(child)
			}
		}
		return desc.Digest, nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return m.Config.Digest, nil
}

func notFound(ref string) error {
	return fmt.Errorf("no such image %q (pull or build it first; `kiln images` lists what is stored): %w", ref, ErrNotFound)
}

func isHex(s string) bool {
	return s != "" && len(s) <= 64 && !slices.ContainsFunc([]byte(s), func(c byte) bool {
		return (c < '0' || c > '9') && (c < 'a' || c > 'f')
	})
}
