package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image returns the stored image whose manifest has digest h (or the image of an index that
// holds one image and its attestations). Its layers read their blobs from the store lazily;
// errors.Is(err, ErrNotFound) when the manifest is absent.
func (s *Store) Image(h v1.Hash) (v1.Image, error) {
	raw, err := s.readBlob(h)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", h, err)
	}
	mt := sniffMediaType(raw)
	if mt.IsIndex() {
		// An image with attestations is stored, as BuildKit does, as an index of the image and
		// its attestation manifests: it is that image to everything that runs or reads it.
		if im, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err == nil {
			if child, ok := AttestedImage(im); ok {
				return s.Image(child.Digest)
			}
		}
		return nil, fmt.Errorf("image %s %w", h, errNoImage)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %s: parse manifest: %w", h, err)
	}
	return partial.CompressedToImage(&storeImage{s: s, raw: raw, manifest: m, mediaType: mt})
}

// Index returns the stored image index with digest h, whose children load from the store.
func (s *Store) Index(h v1.Hash) (v1.ImageIndex, error) {
	raw, err := s.readBlob(h)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", h, err)
	}
	mt := sniffMediaType(raw)
	if !mt.IsIndex() {
		return nil, fmt.Errorf("%s is an image manifest, not an index", h)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", h, err)
	}
	return &storeIndex{s: s, raw: raw, digest: h, manifest: im, mediaType: mt}, nil
}

// sniffMediaType reads a manifest's own mediaType, which OCI allows to be omitted; then the
// presence of "manifests" marks an index.
func sniffMediaType(raw []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return types.OCIManifestSchema1
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}

// storeImage is the minimal compressed image core that partial completes into a v1.Image.
type storeImage struct {
	s         *Store
	raw       []byte
	manifest  *v1.Manifest
	mediaType types.MediaType

	cfgOnce sync.Once
	cfg     *v1.ConfigFile
	cfgErr  error
}

func (i *storeImage) RawConfigFile() ([]byte, error)      { return i.s.readBlob(i.manifest.Config.Digest) }
func (i *storeImage) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *storeImage) RawManifest() ([]byte, error)        { return i.raw, nil }

// LayerByDigest serves layers and the config blob named by the manifest, nothing else.
func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.manifest.Config.Digest {
		return &storeLayer{img: i, desc: i.manifest.Config, index: -1}, nil
	}
	for n, d := range i.manifest.Layers {
		if d.Digest == h {
			return &storeLayer{img: i, desc: d, index: n}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in image: %w", h, ErrNotFound)
}

// configFile parses the config once, for diff IDs.
func (i *storeImage) configFile() (*v1.ConfigFile, error) {
	i.cfgOnce.Do(func() {
		raw, err := i.RawConfigFile()
		if err != nil {
			i.cfgErr = err
			return
		}
		i.cfg, i.cfgErr = v1.ParseConfigFile(bytes.NewReader(raw))
	})
	return i.cfg, i.cfgErr
}

// storeLayer is one blob of a stored image.
type storeLayer struct {
	img   *storeImage
	desc  v1.Descriptor
	index int // position in manifest.layers, -1 for the config
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storeLayer) Compressed() (io.ReadCloser, error)  { return l.img.s.OpenBlob(l.desc.Digest) }

// DiffID comes from the config, so that asking for it does not decompress the layer.
func (l *storeLayer) DiffID() (v1.Hash, error) {
	cfg, err := l.img.configFile()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("diff id of %s: %w", l.desc.Digest, err)
	}
	if l.index < 0 || l.index >= len(cfg.RootFS.DiffIDs) {
		return v1.Hash{}, fmt.Errorf("diff id of %s: config lists %d diff ids", l.desc.Digest, len(cfg.RootFS.DiffIDs))
	}
	return cfg.RootFS.DiffIDs[l.index], nil
}

// storeIndex is a stored image index; children load through the Store.
type storeIndex struct {
	s         *Store
	raw       []byte
	digest    v1.Hash
	manifest  *v1.IndexManifest
	mediaType types.MediaType
}

func (x *storeIndex) MediaType() (types.MediaType, error)       { return x.mediaType, nil }
func (x *storeIndex) Digest() (v1.Hash, error)                  { return x.digest, nil }
func (x *storeIndex) Size() (int64, error)                      { return int64(len(x.raw)), nil }
func (x *storeIndex) IndexManifest() (*v1.IndexManifest, error) { return x.manifest.DeepCopy(), nil }
func (x *storeIndex) RawManifest() ([]byte, error)              { return x.raw, nil }
func (x *storeIndex) Image(h v1.Hash) (v1.Image, error)         { return x.s.Image(h) }
func (x *storeIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return x.s.Index(h)
}
