package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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

// CacheImport is what ImportCache did: records added, and what it skipped and why.
type CacheImport struct {
	Records int      // cache records added to the local index
	Skipped []string // one line per record or blob left out, naming it
}

// ImportCache reads the cache image ref's manifest and config only and records its entries
// in the local build cache (keeping local records), for `kiln build --cache-from
// type=registry,ref=...`. The layers stay in the registry: each gets a remote record, and the
// store fetches it (through NewFetcher) only when something reads it.
func ImportCache(ctx context.Context, s *cache.Store, ref string, opts ...Option) (CacheImport, error) {
	var res CacheImport
	opts = append(opts, WithPlatform(v1.Platform{OS: "linux", Architecture: "kiln-cache"}))
	o, err := makeOptions(opts)
	if err != nil {
		return res, err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	n, err := cache.ParseName(ref)
	if err != nil {
		return res, fmt.Errorf("import cache %s: %w", ref, err)
	}
	ep, err := o.reference(n)
	if err != nil {
		return res, err
	}
	img, err := o.remoteImage(ctx, ep)
	if err != nil {
		return res, fmt.Errorf("import cache: %w", explain(err, n.Short(), n.Registry()))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("import cache %s: config: %w", n.Short(), err)
	}
	m, err := img.Manifest()
	if err != nil {
		return res, fmt.Errorf("import cache %s: manifest: %w", n.Short(), err)
	}
	var entries []cacheEntry
	if err := json.Unmarshal([]byte(cf.Config.Labels[cacheLabel]), &entries); err != nil {
		return res, fmt.Errorf("import cache: %s is not a kiln cache image (label %s): %w", ref, cacheLabel, err)
	}
	repo := ep.ref.Context().Name()
	for _, e := range entries {
		if _, ok, _ := s.CacheGet(e.Key); ok {
			continue
		}
		rec := cache.CacheRecord{Created: e.Created}
		if e.Layer >= 0 {
			if e.Layer >= len(m.Layers) || e.Layer >= len(cf.RootFS.DiffIDs) {
				res.Skipped = append(res.Skipped, fmt.Sprintf("record %s: refers to layer %d of %d", e.Key, e.Layer, len(m.Layers)))
				continue
			}
			l := m.Layers[e.Layer]
			rec.Layer, rec.DiffID = &v1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}, cf.RootFS.DiffIDs[e.Layer]
			if err := s.PutRemote(cache.RemoteBlob{Desc: *rec.Layer, Repo: repo}); err != nil {
				res.Skipped = append(res.Skipped, fmt.Sprintf("record %s: %v", e.Key, err))
				continue
			}
		}
		if err := s.CachePut(e.Key, rec); err != nil {
			res.Skipped = append(res.Skipped, fmt.Sprintf("record %s: %v", e.Key, err))
			continue
		}
		res.Records++
	}
	return res, nil
}

// NewFetcher is how a store fetches the blobs that lazily imported caches name, with the
// given registry options (auth, insecure registries); see cache.Store.SetFetcher.
func NewFetcher(opts ...Option) (cache.Fetcher, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	return fetcher{o: o}, nil
}

type fetcher struct{ o *options }

func (f fetcher) Fetch(ctx context.Context, b cache.RemoteBlob) (io.ReadCloser, error) {
	l, _, err := f.o.remoteBlob(ctx, b)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

// remoteBlob is the remote blob b as a layer that streams from its repository, and its
// reference, so that a push can mount it from there.
func (o *options) remoteBlob(ctx context.Context, b cache.RemoteBlob) (v1.Layer, name.Digest, error) {
	n, err := cache.ParseName(b.Repo + "@" + b.Desc.Digest.String())
	if err != nil {
		return nil, name.Digest{}, fmt.Errorf("remote blob %s in %s: %w", b.Desc.Digest, b.Repo, err)
	}
	ep, err := o.reference(n)
	if err != nil {
		return nil, name.Digest{}, err
	}
	ref, ok := ep.ref.(name.Digest)
	if !ok {
		return nil, name.Digest{}, fmt.Errorf("remote blob %s in %s: not a digest reference", b.Desc.Digest, b.Repo)
	}
	l, err := remote.Layer(ref, o.remoteOptions(ctx, ep.insecure)...)
	if err != nil {
		return nil, name.Digest{}, err
	}
	return l, ref, nil
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
