package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
)

// rebuild makes the manifest (and, when diff IDs changed, the config) for re-encoded layers.
// The config bytes stay untouched unless they must change, so the image ID survives a
// change of compression. A Docker manifest whose layers became OCI-only (zstd, estargz)
// becomes an OCI manifest.
func rebuild(s *cache.Store, img v1.Image, m *v1.Manifest, layers []encoded) (v1.Image, error) {
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	nm := *m
	nm.Layers = make([]v1.Descriptor, len(layers))
	var diffIDs []v1.Hash
	changedDiffIDs := false
	for i, e := range layers {
		nm.Layers[i] = e.Desc
		diffIDs = append(diffIDs, e.DiffID)
		changedDiffIDs = changedDiffIDs || !sameDiffID(img, i, e.DiffID)
	}
	if changedDiffIDs {
		if rawCfg, err = withDiffIDs(rawCfg, diffIDs); err != nil {
			return nil, err
		}
		nm.Config.Digest, nm.Config.Size, err = v1.SHA256(bytes.NewReader(rawCfg))
		if err != nil {
			return nil, err
		}
	}
	if nm.MediaType == types.DockerManifestSchema2 && hasOCILayer(nm.Layers) {
		toOCI(&nm)
	}
	raw, err := json.Marshal(nm)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&pushImage{s: s, manifest: raw, mt: nm.MediaType, config: rawCfg, layers: nm.Layers})
}

func sameDiffID(img v1.Image, i int, h v1.Hash) bool {
	cf, err := img.ConfigFile()
	return err == nil && i < len(cf.RootFS.DiffIDs) && cf.RootFS.DiffIDs[i] == h
}

// withDiffIDs replaces rootfs.diff_ids, keeping every other field of the config as it was.
func withDiffIDs(raw []byte, diffIDs []v1.Hash) ([]byte, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	rootfs, err := json.Marshal(v1.RootFS{Type: "layers", DiffIDs: diffIDs})
	if err != nil {
		return nil, err
	}
	cfg["rootfs"] = rootfs
	return json.Marshal(cfg)
}

func hasOCILayer(ls []v1.Descriptor) bool {
	for _, l := range ls {
		if l.MediaType == types.OCILayer || l.MediaType == types.OCILayerZStd || l.MediaType == types.OCIUncompressedLayer {
			return true
		}
	}
	return false
}

// toOCI retypes a Docker schema 2 manifest as OCI; the layer bytes are the same formats.
func toOCI(m *v1.Manifest) {
	m.MediaType = types.OCIManifestSchema1
	m.Config.MediaType = types.OCIConfigJSON
	for i := range m.Layers {
		switch m.Layers[i].MediaType {
		case types.DockerLayer:
			m.Layers[i].MediaType = types.OCILayer
		case types.DockerUncompressedLayer:
			m.Layers[i].MediaType = types.OCIUncompressedLayer
		case types.DockerForeignLayer:
			m.Layers[i].MediaType = types.OCIRestrictedLayer
		}
	}
}

// pushImage is an image assembled from a new manifest with layers read from the store
// (re-encoded for a push, or recompressed on docker-archive load).
type pushImage struct {
	s        *cache.Store
	manifest []byte
	mt       types.MediaType
	config   []byte
	layers   []v1.Descriptor
}

func (p *pushImage) RawManifest() ([]byte, error)        { return p.manifest, nil }
func (p *pushImage) RawConfigFile() ([]byte, error)      { return p.config, nil }
func (p *pushImage) MediaType() (types.MediaType, error) { return p.mt, nil }

func (p *pushImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range p.layers {
		if l.Digest == h {
			return &storedBlob{s: p.s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not part of the image", h)
}

// storedBlob is a layer blob read from the store.
type storedBlob struct {
	s    *cache.Store
	desc v1.Descriptor
}

func (b *storedBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *storedBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *storedBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *storedBlob) Compressed() (io.ReadCloser, error)  { return b.s.OpenBlob(b.desc.Digest) }
func (b *storedBlob) Descriptor() (*v1.Descriptor, error) { d := b.desc; return &d, nil }
