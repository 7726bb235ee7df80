package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/ctxio"
)

// compressDockerImage gzips a docker-archive image's uncompressed layers once each, with
// klauspost's fast deterministic gzip, checking each against its diff ID. (go-containerregistry
// would gzip every layer twice with the standard library: once for the digest, once to copy.)
// The config bytes are kept, so the image ID survives.
func compressDockerImage(ctx context.Context, s *cache.Store, img v1.Image) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("config lists %d diff IDs for %d layers", len(cf.RootFS.DiffIDs), len(layers))
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	layerType, configType := types.OCILayer, types.OCIConfigJSON
	if mt == types.DockerManifestSchema2 {
		layerType, configType = types.DockerLayer, types.DockerConfigJSON
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: mt}
	m.Config.MediaType = configType
	if m.Config.Digest, m.Config.Size, err = v1.SHA256(bytesReader(rawCfg)); err != nil {
		return nil, err
	}
	for i, l := range layers {
		d, err := gzipLayer(ctx, s, l, cf.RootFS.DiffIDs[i], layerType)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		m.Layers = append(m.Layers, d)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&pushImage{s: s, manifest: raw, mt: mt, config: rawCfg, layers: m.Layers})
}

func gzipLayer(ctx context.Context, s *cache.Store, l v1.Layer, diffID v1.Hash, mt types.MediaType) (v1.Descriptor, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer rc.Close()
	bw, err := s.NewBlobWriter()
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer bw.Close()
	zw, err := gzip.NewWriterLevel(bw, gzipLevel)
	if err != nil {
		return v1.Descriptor{}, err
	}
	h := sha256.New()
	if _, err := ctxio.Copy(ctx, io.MultiWriter(zw, h), rc); err != nil {
		return v1.Descriptor{}, err
	}
	if err := zw.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID.String() {
		return v1.Descriptor{}, fmt.Errorf("layer content hashes to %s, but the config says %s: the archive is corrupt", got, diffID)
	}
	d, size, err := bw.Commit(v1.Hash{})
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
