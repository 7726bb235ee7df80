package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// Registry is what a build pipeline needs of a registry; cmd passes the registry package in,
// so build never imports it.
type Registry interface {
	// ImportCache records a cache image's entries; its layers stay remote until read.
	ImportCache(ctx context.Context, ref string) (CacheImport, error)
	// ExportCache exports the cache of img's steps; an inline cache returns the image to
	// tag and push instead of img.
	ExportCache(ctx context.Context, spec string, img *Image) (CacheExport, error)
	Push(ctx context.Context, name cache.Name) (v1.Descriptor, error)
	// EncodeEStargz stores a copy of the image with eStargz layers and returns its manifest.
	EncodeEStargz(ctx context.Context, manifest v1.Hash) (v1.Descriptor, error)
}

// CacheImport is what importing one cache did.
type CacheImport struct {
	Records int      // cache records added
	Mounts  int      // cache mounts seeded
	Skipped []string // records or blobs left out, each naming what and why
}

// CacheExport is what exporting the cache did.
type CacheExport struct {
	Records  int
	Mounts   int            // cache mounts exported
	Image    *v1.Descriptor // inline cache: the image with the records, which replaces the built one
	Warnings []string       // failures that ignore-error=true let pass
}

// PipelineOptions are a whole `kiln build`: the build and what happens around it.
type PipelineOptions struct {
	Options
	Registry     Registry                                                       // needed for CacheFrom, CacheTo, EStargz and Push
	CacheFrom    []string                                                       // caches to import first (first to name a key wins); an unreachable one only warns
	CacheTo      string                                                         // cache to export this build's steps to
	EStargz      bool                                                           // re-encode the layers as eStargz and move the tags to that image
	Push         bool                                                           // push every tag after the build
	Reproducible bool                                                           // build twice from scratch and fail, naming files, if the images differ
	Export       func(ctx context.Context, img *Image, tags []cache.Name) error // --output; nil exports nothing
	Cleanup      func(ctx context.Context)                                      // collects what killed earlier runs left; nil skips
	Notes        io.Writer                                                      // one-line notes (cache counts, pushes, warnings); nil = none
	Provenance   ProvenanceOptions                                              // SLSA provenance to attach (default: min when pushed or exported)
	Attestors    []Attestor                                                     // more attestations to attach (an SBOM); each runs on the built image
}

// Attestor makes one attestation about a built image, such as an SBOM of its packages; the
// pipeline stores it, with the provenance, as BuildKit stores attestations.
type Attestor interface {
	Attest(ctx context.Context, s *cache.Store, img *Image) (cache.Attestation, error)
}

// Pipeline runs a whole build: cleanup of killed runs, cache import, the build (twice with
// Reproducible), eStargz re-encoding and re-tagging, export, push and cache export.
func Pipeline(ctx context.Context, o PipelineOptions) (*Image, error) {
	if o.Registry == nil && (len(o.CacheFrom) > 0 || o.CacheTo != "" || o.EStargz || o.Push) {
		return nil, errors.New("build pipeline: cache import/export, eStargz and push need a registry")
	}
	if o.Cleanup != nil {
		o.Cleanup(ctx)
	}
	release, err := o.localContext(ctx) // standard input or a git URL
	if err != nil {
		return nil, err
	}
	defer release()
	for _, ref := range o.CacheFrom {
		res, err := o.Registry.ImportCache(ctx, ref)
		if err != nil {
			o.note("WARNING: --cache-from %s: %v", ref, err)
			continue
		}
		for _, sk := range res.Skipped {
			o.note("WARNING: --cache-from %s: skipped %s", ref, sk)
		}
		o.note("imported %d cache records from %s", res.Records, ref)
		if res.Mounts > 0 {
			o.note("seeded %d cache mounts from %s", res.Mounts, ref)
		}
	}
	// The images the build's names point at now: one they move off stays as <none>, as docker's.
	prev, err := o.Store.Named(o.Tags)
	if err != nil {
		return nil, err
	}
	build := Build
	if o.Reproducible {
		build = o.checkReproducible
	}
	img, err := o.buildOverCorruptCache(ctx, build)
	if err != nil {
		return nil, err
	}
	if o.EStargz {
		if img, err = o.toEStargz(ctx, img); err != nil {
			return nil, err
		}
	}
	if err := o.attest(ctx, img); err != nil {
		return nil, err
	}
	if o.Export != nil {
		if err := o.Export(ctx, img, o.Tags); err != nil {
			return nil, err
		}
	}
	if err := o.publish(ctx, img); err != nil {
		return nil, err
	}
	if err := o.Store.KeepUnnamed(ctx, prev); err != nil {
		return nil, err
	}
	if len(o.Tags) == 0 && o.Export == nil && !o.Push {
		// docker keeps an unnamed build as a <none> image: listed, kept until an image prune.
		top := img.Manifest
		if img.Index != nil {
			top = *img.Index
		}
		if err := o.Store.KeepUntagged(ctx, top); err != nil {
			return nil, err
		}
	}
	img.Cache.Pulled = o.Store.FetchedBytes()
	return img, nil
}

// maxCorruptRetries bounds how often one build starts over because a cached layer came down
// corrupt: each start drops the records naming that layer, so a few suffice.
const maxCorruptRetries = 3

// buildOverCorruptCache runs build and, unless the image is only pushed, fetches its cached
// layers. A lazily imported layer that arrives corrupt turns its records into misses
// (cache.ErrRemoteCorrupt): the build then starts over, reusing every step it finished, and
// runs the steps that layer cached, rather than failing on a registry's bad blob.
func (o *PipelineOptions) buildOverCorruptCache(ctx context.Context, build func(context.Context, Options) (*Image, error)) (*Image, error) {
	for try := 0; ; try++ {
		img, err := build(ctx, o.Options)
		if err == nil && !o.Push {
			// The image stays here, so it must be whole; a pushed one keeps its cached layers
			// in the registry (the push mounts them) and fetches them only when read.
			if err = o.Store.FetchImage(ctx, img.Manifest.Digest); err != nil {
				err = fmt.Errorf("fetch the cached layers of the image: %w", err)
			}
		}
		if err == nil || !errors.Is(err, cache.ErrRemoteCorrupt) || try == maxCorruptRetries {
			return img, err
		}
		o.note("WARNING: %v: the steps it cached run again", err)
	}
}

// publish exports the build cache and pushes the tags, as asked; an inline cache changes
// the image before its push.
func (o *PipelineOptions) publish(ctx context.Context, img *Image) error {
	if o.CacheTo != "" {
		res, err := o.Registry.ExportCache(ctx, o.CacheTo, img)
		if err != nil {
			return err
		}
		for _, w := range res.Warnings {
			o.note("WARNING: --cache-to %s: %s", o.CacheTo, w)
		}
		if res.Image != nil {
			if err := o.retarget(ctx, img, *res.Image); err != nil {
				return err
			}
		}
		if res.Records > 0 {
			o.note("exported %d cache records to %s", res.Records, o.CacheTo)
		}
		if res.Mounts > 0 {
			o.note("exported %d cache mounts to %s", res.Mounts, o.CacheTo)
		}
	}
	for _, t := range o.Tags {
		if !o.Push {
			break
		}
		desc, err := o.Registry.Push(ctx, t)
		if err != nil {
			return err
		}
		o.note("pushed %s@%s", t.Short(), desc.Digest)
	}
	return nil
}

// attest attaches the provenance and every attestor's attestation to the image, storing
// both in an index that the tags then name.
func (o *PipelineOptions) attest(ctx context.Context, img *Image) error {
	mode := o.Provenance.Mode
	if mode == ProvenanceAuto {
		mode = ProvenanceOff
		if o.Push || o.Export != nil {
			mode = ProvenanceMin
		}
	}
	var atts []cache.Attestation
	if mode != ProvenanceOff && img.record != nil {
		po := o.Provenance
		po.Mode = mode
		a, err := provenanceFor(ctx, img.record, img, po)
		if err != nil {
			return err
		}
		atts = append(atts, a)
	}
	for _, at := range o.Attestors {
		a, err := at.Attest(ctx, o.Store, img)
		if err != nil {
			return fmt.Errorf("attest %s: %w", img.Manifest.Digest, err)
		}
		atts = append(atts, a)
	}
	if len(atts) == 0 {
		return nil
	}
	image := img.Manifest
	image.Platform = &v1.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}
	var subjects []string
	for _, t := range o.Tags {
		subjects = append(subjects, imagePURL(t.String(), platformString(img.Config)))
	}
	idx, err := o.Store.Attach(ctx, image, subjects, atts)
	if err != nil {
		return err
	}
	img.Index = &idx
	return o.tag(ctx, idx)
}

// retarget moves the tags (and the attestations) to another manifest of the image.
func (o *PipelineOptions) retarget(ctx context.Context, img *Image, manifest v1.Descriptor) error {
	img.Manifest = manifest
	if img.Index == nil {
		return o.tag(ctx, manifest)
	}
	idx, err := o.Store.Reattach(ctx, *img.Index, manifest)
	if err != nil {
		return err
	}
	img.Index = &idx
	return o.tag(ctx, idx)
}

func (o *PipelineOptions) note(format string, args ...any) {
	if o.Notes != nil {
		fmt.Fprintf(o.Notes, format+"\n", args...)
	}
}

// toEStargz re-encodes a built image's layers as eStargz (lazily pullable) and moves the
// tags to it. Build steps keep gzip layers, so the cache serves both.
func (o *PipelineOptions) toEStargz(ctx context.Context, img *Image) (*Image, error) {
	desc, err := o.Registry.EncodeEStargz(ctx, img.Manifest.Digest)
	if err != nil {
		return nil, err
	}
	encoded, err := o.Store.Image(desc.Digest)
	if err != nil {
		return nil, err
	}
	cf, err := encoded.ConfigFile()
	if err != nil {
		return nil, err
	}
	id, err := encoded.ConfigName()
	if err != nil {
		return nil, err
	}
	if err := o.tag(ctx, desc); err != nil {
		return nil, err
	}
	return &Image{Manifest: desc, ID: id, Config: cf, Keys: img.Keys, record: img.record}, nil
}

func (o *PipelineOptions) tag(ctx context.Context, desc v1.Descriptor) error {
	for _, t := range o.Tags {
		if err := o.Store.Tag(ctx, t, desc); err != nil {
			return fmt.Errorf("tag %s: %w", t.Short(), err)
		}
	}
	return nil
}

// checkReproducible builds twice with every step run and a fixed SOURCE_DATE_EPOCH (the
// context's last commit time unless set), failing when the two images differ; the tags go
// on the second image only once both agree.
func (o *PipelineOptions) checkReproducible(ctx context.Context, opts Options) (*Image, error) {
	if opts.Epoch == nil {
		epoch, err := gitCommitTime(ctx, opts.ContextDir)
		if err != nil {
			return nil, fmt.Errorf("--check-reproducible: set SOURCE_DATE_EPOCH (%w)", err)
		}
		opts.Epoch = &epoch
	}
	opts.Tags, opts.NoCache = nil, true
	first, err := Build(ctx, opts)
	if err != nil {
		return nil, err
	}
	second, err := Build(ctx, opts)
	if err != nil {
		return nil, err
	}
	if first.Manifest.Digest != second.Manifest.Digest {
		diffs, err := DiffImages(ctx, opts.Store, first, second)
		if err != nil {
			return nil, err
		}
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("… and %d more", len(diffs)-20))
		}
		return nil, fmt.Errorf("the build is not reproducible: %s and %s differ:\n  %s",
			first.Manifest.Digest, second.Manifest.Digest, strings.Join(diffs, "\n  "))
	}
	o.note("reproducible: both builds gave %s", second.Manifest.Digest)
	return second, o.tag(ctx, second.Manifest)
}

// gitCommitTime is the committer time of HEAD when dir is in a git checkout.
func gitCommitTime(ctx context.Context, dir string) (time.Time, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%ct").Output()
	if err != nil {
		return time.Time{}, errors.New("the context is not a git checkout with commits")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("git commit time %q: %w", out, err)
	}
	return time.Unix(n, 0).UTC(), nil
}
