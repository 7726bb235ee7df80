package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
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
	Key      string    `json:"key"`
	Layer    int       `json:"layer"`
	Created  time.Time `json:"created"`
	Duration int64     `json:"durationNanos,omitempty"` // how long the step ran, for "time saved"
}

// CacheKeys are a build's cache keys: every step's (mode=max) and the final stage's (mode=min).
type CacheKeys struct{ All, Final []string }

// CacheExport is what ExportCache did.
type CacheExport struct {
	Records  int            // cache records exported
	Mounts   int            // cache mounts exported (mounts=true)
	Image    *v1.Descriptor // type=inline: the image with the records in its config, to tag and push instead
	Warnings []string       // with ignore-error=true, the failure that did not stop the build
}

// ExportCache exports the cache records of keys (those in the store) as spec says: a cache
// image pushed to a registry (only the blobs it lacks, in parallel, the manifest last), the
// same image in an OCI layout directory, or the records in the config of the built image
// manifest (inline). With spec.IgnoreError a failure becomes a warning.
func ExportCache(ctx context.Context, s *cache.Store, spec CacheSpec, manifest v1.Hash, keys CacheKeys, opts ...Option) (CacheExport, error) {
	res, err := exportCache(ctx, s, spec, manifest, keys, opts)
	if err != nil && spec.IgnoreError {
		return CacheExport{Warnings: []string{fmt.Sprintf("cache export failed (ignore-error=true): %v", err)}}, nil
	}
	return res, err
}

func exportCache(ctx context.Context, s *cache.Store, spec CacheSpec, manifest v1.Hash, keys CacheKeys, opts []Option) (CacheExport, error) {
	ks := keys.All
	if spec.Mode == CacheMin {
		ks = keys.Final
	}
	if spec.Type == CacheInline {
		return inlineCache(ctx, s, manifest, ks)
	}
	adds, entries, err := cacheContents(s, ks)
	if err != nil {
		return CacheExport{}, err
	}
	img, err := cacheImage(adds, entries)
	if err != nil {
		return CacheExport{}, err
	}
	desc, err := s.WriteImage(ctx, img)
	if err != nil {
		return CacheExport{}, fmt.Errorf("export cache: %w", err)
	}
	if spec.Compression != nil {
		opts = append(opts, WithCompression(*spec.Compression))
	}
	if spec.Type == CacheLocal {
		if spec.Compression != nil {
			if desc, err = Encode(ctx, s, desc.Digest, opts...); err != nil {
				return CacheExport{}, fmt.Errorf("export cache: %w", err)
			}
		}
		o, err := makeOptions(opts)
		if err != nil {
			return CacheExport{}, err
		}
		if err := writeLayout(ctx, s, desc, spec.Dir, layoutCacheName, o.jobs); err != nil {
			return CacheExport{}, fmt.Errorf("export cache to %s: %w", spec.Dir, err)
		}
	} else if err := pushCache(ctx, s, desc, spec.Ref, opts); err != nil {
		return CacheExport{}, err
	}
	res := CacheExport{Records: len(entries)}
	if spec.Mounts {
		if res.Mounts, res.Warnings, err = exportMounts(ctx, s, spec, opts); err != nil {
			return res, err
		}
	}
	return res, nil
}

// cacheContents gathers the records of keys and their layers, each layer once.
func cacheContents(s *cache.Store, keys []string) ([]mutate.Addendum, []cacheEntry, error) {
	var adds []mutate.Addendum
	index := map[v1.Hash]int{}
	entries, err := cacheEntries(s, keys, func(desc v1.Descriptor, diffID v1.Hash) (int, bool, error) {
		if i, seen := index[desc.Digest]; seen {
			return i, true, nil
		}
		l, err := partial.CompressedToLayer(&storeLayer{s: s, desc: desc, diffID: diffID})
		if err != nil {
			return 0, false, err
		}
		index[desc.Digest] = len(adds)
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: desc.MediaType})
		return len(adds) - 1, true, nil
	})
	if err == nil && len(entries) == 0 {
		err = errors.New("export cache: no cache records for this build")
	}
	return adds, entries, err
}

// cacheEntries lists the stored records of keys; place gives a record's layer its index in
// the cache image (false: leave the record out).
func cacheEntries(s *cache.Store, keys []string, place func(v1.Descriptor, v1.Hash) (int, bool, error)) ([]cacheEntry, error) {
	var entries []cacheEntry
	for _, k := range keys {
		rec, ok, err := s.CacheGet(k)
		if err != nil || !ok {
			continue
		}
		e := cacheEntry{Key: k, Layer: -1, Created: rec.Created, Duration: int64(rec.Duration)}
		if rec.Layer != nil {
			i, in, err := place(*rec.Layer, rec.DiffID)
			if err != nil {
				return nil, err
			}
			if !in {
				continue
			}
			e.Layer = i
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func pushCache(ctx context.Context, s *cache.Store, desc v1.Descriptor, ref string, opts []Option) error {
	n, err := cache.ParseName(ref)
	if err != nil {
		return fmt.Errorf("export cache to %s: %w", ref, err)
	}
	o, err := makeOptions(opts)
	if err != nil {
		return err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	ep, err := o.reference(n)
	if err != nil {
		return err
	}
	if _, err := o.push(ctx, s, desc, ep); err != nil {
		return fmt.Errorf("export cache to %s: %w", n.Short(), explain(err, n.Short(), n.Registry()))
	}
	return nil
}

// inlineCache stores a copy of the image manifest whose config carries the records of keys
// whose layers (if any) are the image's own, as BuildKit's inline cache does.
func inlineCache(ctx context.Context, s *cache.Store, manifest v1.Hash, keys []string) (CacheExport, error) {
	img, err := s.Image(manifest)
	if err != nil {
		return CacheExport{}, fmt.Errorf("inline cache: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return CacheExport{}, err
	}
	index := map[v1.Hash]int{}
	for i, l := range m.Layers {
		index[l.Digest] = i
	}
	entries, err := cacheEntries(s, keys, func(desc v1.Descriptor, _ v1.Hash) (int, bool, error) {
		i, in := index[desc.Digest] // a layer of another stage: only a registry or local cache holds it
		return i, in, nil
	})
	if err != nil {
		return CacheExport{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return CacheExport{}, err
	}
	data, err := json.Marshal(entries)
	if err != nil {
		return CacheExport{}, err
	}
	cf = cf.DeepCopy()
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	cf.Config.Labels[cacheLabel] = string(data)
	withCache, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return CacheExport{}, err
	}
	desc, err := s.WriteImage(ctx, withCache)
	if err != nil {
		return CacheExport{}, fmt.Errorf("inline cache: %w", err)
	}
	return CacheExport{Records: len(entries), Image: &desc}, nil
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
	Mounts  int      // cache mounts seeded (mounts=true)
	Skipped []string // one line per record or blob left out, naming it
}

// ImportCache reads the cache spec names — a cache image (or an image with an inline
// cache) in a registry, or an OCI layout directory — and records its entries in the local
// build cache, keeping local records (so with several caches the first to name a key wins).
// Only the manifest and the config are read: each layer gets a remote record, and the store
// fetches it (through NewFetcher) only when something reads it. Every byte read from the
// registry counts in s.FetchedBytes.
func ImportCache(ctx context.Context, s *cache.Store, spec CacheSpec, opts ...Option) (CacheImport, error) {
	opts = append(opts, WithPlatform(v1.Platform{OS: "linux", Architecture: "kiln-cache"}), countingInto(s.CountFetched))
	o, err := makeOptions(opts)
	if err != nil {
		return CacheImport{}, err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	res, err := o.importCache(ctx, s, spec)
	if err != nil || !spec.Mounts {
		return res, err
	}
	n, skipped, err := o.importMounts(ctx, s, spec)
	if err != nil {
		res.Skipped = append(res.Skipped, err.Error())
	}
	res.Mounts, res.Skipped = n, append(res.Skipped, skipped...)
	return res, nil
}

func (o *options) importCache(ctx context.Context, s *cache.Store, spec CacheSpec) (CacheImport, error) {
	if spec.Type == CacheLocal {
		img, err := layoutImage(spec.Dir, layoutCacheName)
		if err != nil {
			return CacheImport{}, fmt.Errorf("import cache: %w", err)
		}
		return importEntries(s, img, layoutRepo+spec.Dir, spec.Dir)
	}
	n, err := cache.ParseName(spec.Ref)
	if err != nil {
		return CacheImport{}, fmt.Errorf("import cache %s: %w", spec.Ref, err)
	}
	ep, err := o.reference(n)
	if err != nil {
		return CacheImport{}, err
	}
	img, err := o.remoteCacheImage(ctx, ep)
	if err != nil {
		return CacheImport{}, fmt.Errorf("import cache: %w", explain(err, n.Short(), n.Registry()))
	}
	return importEntries(s, img, ep.ref.Context().Name(), n.Short())
}

// remoteCacheImage is the cache image ep names; an image pushed with an inline cache and
// attestations is an index of the image and its attestations, whose image holds the cache.
func (o *options) remoteCacheImage(ctx context.Context, ep endpoint) (v1.Image, error) {
	desc, err := remote.Get(ep.ref, o.remoteOptions(ctx, ep.insecure)...)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		if child, ok := cache.AttestedImage(im); ok {
			return idx.Image(child.Digest)
		}
	}
	return o.imageOf(desc, ep)
}

// importEntries records img's cache entries, naming repo as where its layers live. A bad
// entry is skipped and named; an image without kiln's label is an error.
func importEntries(s *cache.Store, img v1.Image, repo, what string) (CacheImport, error) {
	var res CacheImport
	cf, err := img.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("import cache %s: config: %w", what, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return res, fmt.Errorf("import cache %s: manifest: %w", what, err)
	}
	label, ok := cf.Config.Labels[cacheLabel]
	if !ok {
		if newer := newerCacheLabel(cf.Config.Labels); newer != "" {
			return res, fmt.Errorf("import cache: %s holds a cache of a newer kiln (%s); upgrade kiln to use it", what, newer)
		}
		return res, fmt.Errorf("import cache: %s is not a kiln cache image (no %s label)", what, cacheLabel)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(label), &raw); err != nil {
		return res, fmt.Errorf("import cache: %s: corrupt cache label: %w", what, err)
	}
	for i, r := range raw {
		var e cacheEntry
		if err := json.Unmarshal(r, &e); err != nil {
			res.Skipped = append(res.Skipped, fmt.Sprintf("record %d: corrupt: %v", i, err))
			continue
		}
		if _, ok, _ := s.CacheGet(e.Key); ok {
			continue
		}
		if err := importEntry(s, e, m, cf, repo, what); err != nil {
			res.Skipped = append(res.Skipped, fmt.Sprintf("record %s: %v", e.Key, err))
			continue
		}
		res.Records++
	}
	return res, nil
}

func importEntry(s *cache.Store, e cacheEntry, m *v1.Manifest, cf *v1.ConfigFile, repo, what string) error {
	rec := cache.CacheRecord{Created: e.Created, Source: what, Duration: time.Duration(e.Duration)}
	if e.Layer >= 0 {
		if e.Layer >= len(m.Layers) || e.Layer >= len(cf.RootFS.DiffIDs) {
			return fmt.Errorf("refers to layer %d of %d", e.Layer, len(m.Layers))
		}
		l := m.Layers[e.Layer]
		rec.Layer, rec.DiffID = &v1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}, cf.RootFS.DiffIDs[e.Layer]
		if err := s.PutRemote(cache.RemoteBlob{Desc: *rec.Layer, Repo: repo}); err != nil {
			return err
		}
	}
	return s.CachePut(e.Key, rec)
}

// newerCacheLabel finds a label of a later cache format (dev.kiln.buildcache.v2, …).
func newerCacheLabel(labels map[string]string) string {
	for k := range labels {
		if v, ok := strings.CutPrefix(k, "dev.kiln.buildcache.v"); ok && v != "1" {
			return k
		}
	}
	return ""
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
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	return &corruptCheck{rc: rc, want: b.Desc.Digest, h: sha256.New()}, nil
}

// corruptCheck tells a corrupt blob from a failed download: go-containerregistry reports a
// digest mismatch as a plain read error at the end, and the store must know that the bytes
// came whole and wrong (cache.ErrDigest: the cache entry is bad) rather than cut short.
type corruptCheck struct {
	rc   io.ReadCloser
	want v1.Hash
	h    hash.Hash
}

func (c *corruptCheck) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	if err != nil && err != io.EOF && c.want.Algorithm == "sha256" && "sha256:"+hex.EncodeToString(c.h.Sum(nil)) != c.want.String() {
		return n, fmt.Errorf("blob %s: %w: %v", c.want, cache.ErrDigest, err)
	}
	return n, err
}

func (c *corruptCheck) Close() error { return c.rc.Close() }

// blobSource streams one blob.
type blobSource interface {
	Compressed() (io.ReadCloser, error)
}

// remoteBlob is the remote blob b as a source that streams from its repository and, for a
// registry, its reference, so that a push can mount it from there (nil for a layout dir).
func (o *options) remoteBlob(ctx context.Context, b cache.RemoteBlob) (blobSource, *name.Digest, error) {
	if dir, ok := strings.CutPrefix(b.Repo, layoutRepo); ok {
		return layoutBlob{dir: dir, h: b.Desc.Digest}, nil, nil
	}
	n, err := cache.ParseName(b.Repo + "@" + b.Desc.Digest.String())
	if err != nil {
		return nil, nil, fmt.Errorf("remote blob %s in %s: %w", b.Desc.Digest, b.Repo, err)
	}
	ep, err := o.reference(n)
	if err != nil {
		return nil, nil, err
	}
	ref, ok := ep.ref.(name.Digest)
	if !ok {
		return nil, nil, fmt.Errorf("remote blob %s in %s: not a digest reference", b.Desc.Digest, b.Repo)
	}
	l, err := remote.Layer(ref, o.remoteOptions(ctx, ep.insecure)...)
	if err != nil {
		return nil, nil, err
	}
	return l, &ref, nil
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
