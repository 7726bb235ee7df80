package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
)

// cacheLabel holds the build cache records of a cache image (`--cache-to type=registry`):
// an ordinary OCI image whose layers are the cached layers, so any registry stores it.
const cacheLabel = "dev.kiln.buildcache.v1"

// cacheEntry is one record in a cache image; Layer indexes the image's layers (-1: none).
type cacheEntry struct {
	Key     string    `json:"key"`
	Layer   int       `json:"layer"`
	Created time.Time `json:"created"`
}

// ExportCache pushes the build cache records of keys (those in the store) to ref as a cache
// image, for `kiln build --cache-to type=registry,ref=...`. It returns how many it exported.
func ExportCache(ctx context.Context, s *cache.Store, keys []string, ref string, opts ...Option) (int, error) {
	var entries []cacheEntry
	var adds []mutate.Addendum
	index := map[v1.Hash]int{}
	for _, k := range keys {
		rec, ok, err := s.CacheGet(k)
		if err != nil || !ok {
			continue
		}
		e := cacheEntry{Key: k, Layer: -1, Created: rec.Created}
		if rec.Layer != nil {
			i, seen := index[rec.Layer.Digest]
			if !seen {
				i = len(adds)
				index[rec.Layer.Digest] = i
				l, err := partial.CompressedToLayer(&storeLayer{s: s, desc: *rec.Layer, diffID: rec.DiffID})
				if err != nil {
					return 0, err
				}
				adds = append(adds, mutate.Addendum{Layer: l, MediaType: rec.Layer.MediaType})
			}
			e.Layer = i
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return 0, errors.New("export cache: no cache records for this build")
	}
	img, err := cacheImage(adds, entries)
	if err != nil {
		return 0, err
	}
	desc, err := s.WriteImage(ctx, img)
	if err != nil {
		return 0, fmt.Errorf("export cache: %w", err)
	}
	n, err := cache.ParseName(ref)
	if err != nil {
		return 0, fmt.Errorf("export cache to %s: %w", ref, err)
	}
	o, err := makeOptions(opts)
	if err != nil {
		return 0, err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	ep, err := o.reference(n)
	if err != nil {
		return 0, err
	}
	if _, err := o.push(ctx, s, desc, ep); err != nil {
		return 0, fmt.Errorf("export cache to %s: %w", n.Short(), explain(err, n.Short(), n.Registry()))
	}
	return len(entries), nil
}

func cacheImage(adds []mutate.Addendum, entries []cacheEntry) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "kiln-cache"
	cf.Config.Labels = map[string]string{cacheLabel: string(data)}
	return mutate.ConfigFile(img, cf)
}

// ImportCache pulls the cache image ref and records its entries in the local build cache
// (keeping local records), for `kiln build --cache-from type=registry,ref=...`.
func ImportCache(ctx context.Context, s *cache.Store, ref string, opts ...Option) (int, error) {
	opts = append(opts, WithPlatform(v1.Platform{OS: "linux", Architecture: "kiln-cache"}))
	desc, err := Pull(ctx, s, ref, opts...)
	if err != nil {
		return 0, fmt.Errorf("import cache: %w", err)
	}
	if n, err := cache.ParseName(ref); err == nil {
		_ = s.Untag(ctx, n) // the cache image is not an image to run
	}
	img, err := s.Image(desc.Digest)
	if err != nil {
		return 0, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return 0, err
	}
	var entries []cacheEntry
	if err := json.Unmarshal([]byte(cf.Config.Labels[cacheLabel]), &entries); err != nil {
		return 0, fmt.Errorf("import cache: %s is not a kiln cache image: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	count := 0
	for _, e := range entries {
		if _, ok, _ := s.CacheGet(e.Key); ok {
			continue
		}
		rec := cache.CacheRecord{Created: e.Created}
		if e.Layer >= 0 {
			if e.Layer >= len(m.Layers) || e.Layer >= len(cf.RootFS.DiffIDs) {
				return count, fmt.Errorf("import cache: %s: entry refers to layer %d of %d", ref, e.Layer, len(m.Layers))
			}
			l := m.Layers[e.Layer]
			rec.Layer, rec.DiffID = &v1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}, cf.RootFS.DiffIDs[e.Layer]
		}
		if err := s.CachePut(e.Key, rec); err != nil {
			return count, err
		}
		count++
	}
	return count, nil
}

// storeLayer is a stored blob as a go-containerregistry compressed layer.
type storeLayer struct {
	s      *cache.Store
	desc   v1.Descriptor
	diffID v1.Hash
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storeLayer) Compressed() (io.ReadCloser, error)  { return l.s.OpenBlob(l.desc.Digest) }
