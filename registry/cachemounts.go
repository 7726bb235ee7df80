package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
)

// The cache-mounts artifact (docs/cache-mounts.md): an OCI image manifest whose config media
// type names it and whose layers are one zstd tar per mount, described by annotations.
const (
	mountsConfigType types.MediaType = "application/vnd.kiln.cache-mounts.v1+json"
	mountLayerType   types.MediaType = "application/vnd.kiln.cache-mount.v1.tar+zstd"
	mountsLayoutName                 = "buildcache-mounts"
	mountsTagSuffix                  = "-mounts"
	annMountID                       = "dev.kiln.mount.id"
	annMountTarget                   = "dev.kiln.mount.target"
	annMountSharing                  = "dev.kiln.mount.sharing"
	annMountUID                      = "dev.kiln.mount.uid"
	annMountGID                      = "dev.kiln.mount.gid"
	annMountMode                     = "dev.kiln.mount.mode"
	annMountUsed                     = "dev.kiln.mount.last-used"
)

// mountsRef is where a registry cache's mounts artifact goes: the cache tag + "-mounts".
func mountsRef(ref string) (string, error) {
	n, err := cache.ParseName(ref)
	if err != nil {
		return "", err
	}
	tag := n.Tag()
	if tag == "" {
		tag = "latest"
	}
	return n.Repository() + ":" + tag + mountsTagSuffix, nil
}

// exportMounts packs every cache mount this store's build used and exports them as one
// artifact beside the cache; the largest are left out while the total exceeds spec.MountsMax.
func exportMounts(ctx context.Context, s *cache.Store, spec CacheSpec, opts []Option) (int, []string, error) {
	recs := s.UsedMounts()
	if len(recs) == 0 {
		return 0, nil, nil
	}
	var all []packedMount
	var total int64
	for _, r := range recs {
		desc, diffID, err := s.PackMount(ctx, r.ID)
		if err != nil {
			return 0, nil, err
		}
		all = append(all, packedMount{r, desc, diffID})
		total += desc.Size
	}
	slices.SortFunc(all, func(a, b packedMount) int { return int(b.desc.Size - a.desc.Size) })
	var warns []string
	for len(all) > 0 && total > spec.MountsMax {
		warns = append(warns, fmt.Sprintf("cache mount %s (%s) left out: the mounts exceed mounts-max-size=%s",
			all[0].rec.ID, units.HumanSize(float64(all[0].desc.Size)), units.HumanSize(float64(spec.MountsMax))))
		total -= all[0].desc.Size
		all = all[1:]
	}
	if len(all) == 0 {
		return 0, warns, nil
	}
	desc, err := writeMountsArtifact(ctx, s, all)
	if err != nil {
		return 0, warns, fmt.Errorf("export cache mounts: %w", err)
	}
	opts = append(opts, WithCompression(Zstd)) // the blobs are zstd by format: never re-encode
	if spec.Type == CacheLocal {
		o, err := makeOptions(opts)
		if err != nil {
			return 0, warns, err
		}
		if err := writeLayout(ctx, s, desc, spec.Dir, mountsLayoutName, o.jobs); err != nil {
			return 0, warns, fmt.Errorf("export cache mounts to %s: %w", spec.Dir, err)
		}
		return len(all), warns, nil
	}
	ref, err := mountsRef(spec.Ref)
	if err != nil {
		return 0, warns, err
	}
	if err := pushCache(ctx, s, desc, ref, opts); err != nil {
		return 0, warns, err
	}
	return len(all), warns, nil
}

type packedMount struct {
	rec    cache.MountRecord
	desc   v1.Descriptor
	diffID v1.Hash
}

// mountsConfig is the artifact's config: image-config shaped (the diff IDs let it go through
// the store and push like any image), marked as no platform's image.
type mountsConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	RootFS       struct {
		Type    string    `json:"type"`
		DiffIDs []v1.Hash `json:"diff_ids"`
	} `json:"rootfs"`
}

// writeMountsArtifact stores the artifact's config and manifest (the layers are stored).
func writeMountsArtifact(ctx context.Context, s *cache.Store, mounts []packedMount) (v1.Descriptor, error) {
	cfg := mountsConfig{Architecture: "kiln-cache", OS: "linux"}
	cfg.RootFS.Type = "layers"
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for _, p := range mounts {
		r := p.rec
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, p.diffID)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mountLayerType, Digest: p.desc.Digest, Size: p.desc.Size,
			Annotations: map[string]string{
				annMountID: r.ID, annMountTarget: r.Target, annMountSharing: r.Sharing,
				annMountUID: strconv.Itoa(r.UID), annMountGID: strconv.Itoa(r.GID),
				annMountMode: "0" + strconv.FormatUint(uint64(r.Mode), 8), annMountUsed: r.Used.UTC().Format(time.RFC3339Nano),
			}})
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return v1.Descriptor{}, err
	}
	h, n, err := s.WriteBlob(ctx, bytes.NewReader(raw), v1.Hash{})
	if err != nil {
		return v1.Descriptor{}, err
	}
	m.Config = v1.Descriptor{MediaType: mountsConfigType, Digest: h, Size: n}
	if raw, err = json.Marshal(m); err != nil {
		return v1.Descriptor{}, err
	}
	if h, n, err = s.WriteBlob(ctx, bytes.NewReader(raw), v1.Hash{}); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: n}, nil
}

// importMounts seeds the local cache mounts that are missing, empty or older than the
// artifact's copies. A mount entry that is malformed or fails its digest is skipped and named.
func (o *options) importMounts(ctx context.Context, s *cache.Store, spec CacheSpec) (int, []string, error) {
	var img v1.Image
	var err error
	if spec.Type == CacheLocal {
		img, err = layoutImage(spec.Dir, mountsLayoutName)
	} else {
		img, err = o.remoteMounts(ctx, spec.Ref)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("import cache mounts: %w", err)
	}
	if mt, err := img.MediaType(); err != nil || !mt.IsImage() {
		return 0, nil, fmt.Errorf("import cache mounts: not a cache-mounts artifact (%s)", mt)
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, nil, err
	}
	if m.Config.MediaType != mountsConfigType {
		return 0, nil, fmt.Errorf("import cache mounts: config type %q, want %q (a newer kiln's format?)", m.Config.MediaType, mountsConfigType)
	}
	n := 0
	var skipped []string
	for _, d := range m.Layers {
		seeded, err := seedMount(ctx, s, img, d)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("cache mount %q (%s): %v", d.Annotations[annMountID], d.Digest, err))
			continue
		}
		if seeded {
			n++
		}
	}
	return n, skipped, nil
}

func (o *options) remoteMounts(ctx context.Context, cacheRef string) (v1.Image, error) {
	ref, err := mountsRef(cacheRef)
	if err != nil {
		return nil, err
	}
	n, err := cache.ParseName(ref)
	if err != nil {
		return nil, err
	}
	ep, err := o.reference(n)
	if err != nil {
		return nil, err
	}
	img, err := o.remoteImage(ctx, ep)
	if err != nil {
		return nil, explain(err, n.Short(), n.Registry())
	}
	return img, nil
}

// seedMount seeds one mount from its layer, verifying the blob in the store first.
func seedMount(ctx context.Context, s *cache.Store, img v1.Image, d v1.Descriptor) (bool, error) {
	rec, err := cacheMountOf(d)
	if err != nil {
		return false, err
	}
	if d.MediaType != mountLayerType {
		return false, fmt.Errorf("media type %q is not %q", d.MediaType, mountLayerType)
	}
	if !s.WantsSeed(rec.ID, rec.Used) {
		return false, nil
	}
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return false, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return false, err
	}
	_, _, err = s.WriteBlob(ctx, rc, d.Digest) // fails unless the bytes match the digest
	rc.Close()
	if err != nil {
		return false, err
	}
	blob, err := s.OpenBlob(d.Digest)
	if err != nil {
		return false, err
	}
	defer blob.Close()
	return true, s.SeedMount(ctx, rec, blob)
}

func cacheMountOf(d v1.Descriptor) (cache.MountRecord, error) {
	a := d.Annotations
	rec := cache.MountRecord{ID: a[annMountID], Target: a[annMountTarget], Sharing: a[annMountSharing]}
	if rec.ID == "" {
		return rec, fmt.Errorf("no %s annotation", annMountID)
	}
	var err error
	if rec.UID, err = strconv.Atoi(a[annMountUID]); err != nil {
		return rec, fmt.Errorf("uid %q: %w", a[annMountUID], err)
	}
	if rec.GID, err = strconv.Atoi(a[annMountGID]); err != nil {
		return rec, fmt.Errorf("gid %q: %w", a[annMountGID], err)
	}
	mode, err := strconv.ParseUint(a[annMountMode], 8, 32)
	if err != nil || mode > 0o7777 {
		return rec, fmt.Errorf("mode %q is not octal permission bits", a[annMountMode])
	}
	rec.Mode = uint32(mode)
	if rec.Used, err = time.Parse(time.RFC3339Nano, a[annMountUsed]); err != nil {
		return rec, fmt.Errorf("last-used %q: %w", a[annMountUsed], err)
	}
	return rec, nil
}
