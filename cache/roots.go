package cache

import (
	"bytes"
	"encoding/json"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// liveSet is what the images in index.json reference: blobs by hex digest and the diff IDs
// whose snapshots are worth keeping.
type liveSet struct {
	blobs   map[string]bool
	diffIDs map[string]bool
}

func newLiveSet() liveSet {
	return liveSet{blobs: map[string]bool{}, diffIDs: map[string]bool{}}
}

// imageRoots marks everything reachable from index.json: manifests, index children,
// configs, layers and the configs' diff IDs. Missing blobs (e.g. platforms never pulled)
// are skipped, not fatal.
func (s *Store) imageRoots() (liveSet, error) {
	live := newLiveSet()
	im, err := s.readIndex()
	if err != nil {
		return live, err
	}
	for _, d := range im.Manifests {
		s.markManifest(live, d.Digest, 0)
	}
	return live, nil
}

// maxIndexDepth stops a maliciously self-nesting index from recursing forever.
const maxIndexDepth = 8

func (s *Store) markManifest(live liveSet, h v1.Hash, depth int) {
	if depth > maxIndexDepth || live.blobs[h.Hex] || checkHash(h) != nil {
		return
	}
	live.blobs[h.Hex] = true
	raw, err := s.readBlob(h)
	if err != nil {
		return
	}
	if sniffMediaType(raw).IsIndex() {
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return
		}
		for _, c := range im.Manifests {
			s.markManifest(live, c.Digest, depth+1)
		}
		return
	}
	var m v1.Manifest
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	live.blobs[m.Config.Digest.Hex] = true
	for _, l := range m.Layers {
		live.blobs[l.Digest.Hex] = true
	}
	s.markDiffIDs(live, m.Config.Digest)
}

func (s *Store) markDiffIDs(live liveSet, config v1.Hash) {
	raw, err := s.readBlob(config)
	if err != nil {
		return
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(raw, &cfg) != nil {
		return
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if h, err := v1.NewHash(d); err == nil {
			live.diffIDs[h.Hex] = true
		}
	}
}
