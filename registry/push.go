package registry

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/cache"
)

// Push uploads the stored image localRef (name, digest or ID) as remoteRef and returns the
// pushed manifest's descriptor. Layers go up in parallel; each is first checked with HEAD
// and, when kiln knows another repository of the same registry holds it, mounted from
// there instead of uploaded; the manifest goes last. Layers not in the requested
// compression are re-encoded (and remembered, so the next push reuses the result): the
// pushed digest then differs from the local one, as with docker.
func Push(ctx context.Context, s *cache.Store, localRef, remoteRef string, opts ...Option) (v1.Descriptor, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return v1.Descriptor{}, err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	desc, _, err := s.Lookup(localRef)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push %s: %w", localRef, err)
	}
	n, err := cache.ParseName(remoteRef)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push to %s: %w", remoteRef, err)
	}
	ep, err := o.reference(n)
	if err != nil {
		return v1.Descriptor{}, err
	}
	pushed, err := o.push(ctx, s, desc, ep)
	if err != nil {
		what := localRef + " to " + n.Short()
		if localRef == n.Short() || localRef == remoteRef { // build --push: one name, said once
			what = n.Short()
		}
		return v1.Descriptor{}, fmt.Errorf("push %s: %w", what, explain(err, n.Short(), n.Registry()))
	}
	return pushed, nil
}

func (o *options) push(ctx context.Context, s *cache.Store, desc v1.Descriptor, ep endpoint) (v1.Descriptor, error) {
	pusher, err := remote.NewPusher(o.remoteOptions(ctx, ep.insecure)...)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if desc.MediaType.IsIndex() {
		return o.pushIndex(ctx, s, pusher, desc, ep)
	}
	stored, err := s.Image(desc.Digest)
	if err != nil {
		return v1.Descriptor{}, err
	}
	_, d, err := o.pushImage(ctx, s, pusher, stored, ep, false)
	return d, err
}

// pushIndex pushes a stored index. An image with attestations goes as BuildKit pushes it:
// the image (re-encoded as asked), then the index with the attestation manifest, whose
// subject also makes it an OCI 1.1 referrer of the image (kept in the referrers tag where
// the registry has no referrers API).
func (o *options) pushIndex(ctx context.Context, s *cache.Store, pusher *remote.Pusher, desc v1.Descriptor, ep endpoint) (v1.Descriptor, error) {
	if sts, err := s.Attestations(desc); err == nil && len(sts) > 0 {
		stored, err := s.Image(desc.Digest) // the attested image
		if err != nil {
			return v1.Descriptor{}, err
		}
		before, err := stored.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		img, pushed, err := o.pushImage(ctx, s, pusher, stored, ep, true)
		if err != nil {
			return v1.Descriptor{}, err
		}
		if pushed.Digest != before {
			// Re-encoded: the attestations are about the manifest the registry now has.
			if _, err := s.WriteImage(ctx, img); err != nil {
				return v1.Descriptor{}, err
			}
			if desc, err = s.Reattach(ctx, desc, pushed); err != nil {
				return v1.Descriptor{}, err
			}
		}
	}
	idx, err := s.Index(desc.Digest)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := pusher.Push(ctx, ep.ref, idx); err != nil {
		return v1.Descriptor{}, err
	}
	return desc, nil
}

// pushImage pushes one stored image, re-encoded as asked, to ep's tag or (byDigest, as an
// index's child) to its own digest, and returns what it pushed.
func (o *options) pushImage(ctx context.Context, s *cache.Store, pusher *remote.Pusher, stored v1.Image, ep endpoint, byDigest bool) (v1.Image, v1.Descriptor, error) {
	img, err := o.encodeForPush(ctx, s, stored)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	d, err := partial.Descriptor(img)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	ref := ep.ref
	if byDigest {
		ref = ep.ref.Context().Digest(d.Digest.String())
	}
	rep := reporter{f: o.progress, ref: ep.ref.String()}
	digests, err := o.pushLayers(ctx, s, pusher, img, ep.ref.Context(), rep)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	if err := pusher.Push(ctx, ref, img); err != nil { // config, then the manifest
		return nil, v1.Descriptor{}, err
	}
	recordBlobs(s, digests, ep.ref.Context().Name())
	return img, *d, nil
}

// pushLayers uploads (or mounts) every layer, a bounded few at a time.
func (o *options) pushLayers(ctx context.Context, s *cache.Store, p *remote.Pusher, img v1.Image, repo name.Repository, rep reporter) ([]v1.Hash, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	mounts := readMounts(s)
	cacheSide := *o // reads from a lazily imported cache count in s.FetchedBytes
	cacheSide.counted = s.CountFetched
	digests := make([]v1.Hash, len(layers))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		digests[i] = d
		var from *name.Digest
		if b, ok := s.Remote(d); ok && !s.HasBlob(d) {
			// Only a lazily imported cache names it: mount or stream it from there; what
			// streams counts as pulled for the cache.
			src, ref, err := cacheSide.remoteBlob(ctx, b)
			if err != nil {
				return nil, err
			}
			l, from = &streamedLayer{Layer: l, src: src}, ref
		}
		g.Go(func() error { return pushLayer(ctx, p, repo, l, d, from, mounts, rep) })
	}
	return digests, g.Wait()
}

// pushLayer uploads l unless the registry has it; from, when set, is where it lives remotely,
// to mount it from (same registry) or stream it from (another).
func pushLayer(ctx context.Context, p *remote.Pusher, repo name.Repository, l v1.Layer, d v1.Hash, from *name.Digest, mounts mountRecord, rep reporter) error {
	size, _ := l.Size()
	pl := &progressLayer{Layer: l, rep: rep, digest: d, size: size}
	var up v1.Layer = pl
	if from != nil {
		up = &remote.MountableLayer{Layer: pl, Reference: *from}
	} else if src, ok := mountSource(mounts, d, repo.Name()); ok {
		if ref, err := name.NewDigest(src+"@"+d.String(), name.WeakValidation); err == nil {
			up = &remote.MountableLayer{Layer: pl, Reference: ref}
		}
	}
	if err := p.Upload(ctx, repo, up); err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	if pl.opened.Load() {
		rep.send(d, EventDone, size, size)
	} else {
		rep.send(d, EventExists, size, size) // already there, or mounted
	}
	return nil
}

// progressLayer reports the bytes go-containerregistry reads while uploading.
type progressLayer struct {
	v1.Layer
	rep    reporter
	digest v1.Hash
	size   int64
	opened atomic.Bool
}

func (l *progressLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	if l.opened.Swap(true) {
		l.rep.send(l.digest, EventRetry, 0, l.size)
	} else {
		l.rep.send(l.digest, EventStart, 0, l.size)
	}
	return struct {
		io.Reader
		io.Closer
	}{&countingReader{r: rc, rep: l.rep, h: l.digest, total: l.size}, rc}, nil
}

// streamedLayer is a stored image's layer whose bytes come from elsewhere (a registry's
// blob, a layout dir's file).
type streamedLayer struct {
	v1.Layer
	src blobSource
}

func (l *streamedLayer) Compressed() (io.ReadCloser, error) { return l.src.Compressed() }
