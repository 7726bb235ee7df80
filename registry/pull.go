package registry

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/cache"
)

// blobAttempts is how often one layer download starts over after a broken stream.
const blobAttempts = 3

// Pull fetches ref (mirrors first, then its registry) into the store and tags it. Layers
// download in parallel and are verified before they are stored; blobs already stored are
// skipped; the config and then the manifest are written last and the tag after them, so an
// interrupted pull leaves no broken image and the next pull reuses what arrived. For a
// multi-platform index the platform's image is stored. Snapshots are not unpacked here.
func Pull(ctx context.Context, s *cache.Store, ref string, opts ...Option) (v1.Descriptor, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return v1.Descriptor{}, err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	n, err := cache.ParseName(ref)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return o.pull(ctx, s, n)
}

func (o *options) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.timeout > 0 {
		return context.WithTimeout(ctx, o.timeout)
	}
	return context.WithCancel(ctx)
}

// pull tries each endpoint in turn; the origin's error is reported, with the mirrors' too.
func (o *options) pull(ctx context.Context, s *cache.Store, n cache.Name) (v1.Descriptor, error) {
	eps, err := o.pullEndpoints(n)
	if err != nil {
		return v1.Descriptor{}, err
	}
	var mirrorErrs []error
	for _, ep := range eps {
		desc, err := o.pullFrom(ctx, s, n, ep)
		if err == nil {
			return desc, nil
		}
		if ctx.Err() != nil || !ep.mirror {
			return v1.Descriptor{}, errors.Join(append([]error{fmt.Errorf("pull %s: %w", n.Short(), err)}, mirrorErrs...)...)
		}
		mirrorErrs = append(mirrorErrs, fmt.Errorf("mirror %s: %w", ep.ref.Context().RegistryStr(), err))
	}
	return v1.Descriptor{}, fmt.Errorf("pull %s: no endpoint", n.Short())
}

// pullFrom stores the image ep names and tags it as n.
func (o *options) pullFrom(ctx context.Context, s *cache.Store, n cache.Name, ep endpoint) (v1.Descriptor, error) {
	img, err := o.remoteImage(ctx, ep)
	if err != nil {
		return v1.Descriptor{}, explain(err, ep.ref.String(), ep.ref.Context().RegistryStr())
	}
	rep := reporter{f: o.progress, ref: ep.ref.String()}
	if err := o.pullLayers(ctx, s, img, rep); err != nil {
		return v1.Descriptor{}, explain(err, ep.ref.String(), ep.ref.Context().RegistryStr())
	}
	desc, err := s.WriteImage(ctx, img)
	if err != nil {
		return v1.Descriptor{}, explain(err, ep.ref.String(), ep.ref.Context().RegistryStr())
	}
	if n.Digest() == "" || n.Digest() == desc.Digest.String() {
		if err := s.Retag(ctx, n, desc); err != nil {
			return v1.Descriptor{}, err
		}
	}
	recordSources(s, img, ep.ref.Context().Name())
	return desc, nil
}

// remoteImage fetches the manifest and, for an index, picks the configured platform.
func (o *options) remoteImage(ctx context.Context, ep endpoint) (v1.Image, error) {
	desc, err := remote.Get(ep.ref, o.remoteOptions(ctx, ep.insecure)...)
	if err != nil {
		return nil, err
	}
	return o.imageOf(desc, ep)
}

// imageOf is the image a fetched manifest is, or the configured platform's image of an index.
func (o *options) imageOf(desc *remote.Descriptor, ep endpoint) (v1.Image, error) {
	switch {
	case desc.MediaType.IsIndex():
		img, err := desc.Image() // go-containerregistry picks by WithPlatform
		if err != nil {
			return nil, fmt.Errorf("%s has no image for %s: %w", ep.ref, o.platform.String(), err)
		}
		return img, nil
	case desc.MediaType.IsImage():
		return desc.Image()
	}
	return nil, fmt.Errorf("%s is a %q, not an image kiln can use (Docker schema 1 images are obsolete: rebuild or re-push it)", ep.ref, desc.MediaType)
}

// pullLayers downloads the missing layers, a bounded few at a time.
func (o *options) pullLayers(ctx context.Context, s *cache.Store, img v1.Image, rep reporter) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for _, l := range layers {
		g.Go(func() error { return pullLayer(ctx, s, l, rep) })
	}
	return g.Wait()
}

// pullLayer stores one layer, starting over when the stream breaks; the store verifies the
// digest before the blob becomes visible.
func pullLayer(ctx context.Context, s *cache.Store, l v1.Layer, rep reporter) error {
	if mt, err := l.MediaType(); err == nil && !mt.IsDistributable() {
		return nil
	}
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, _ := l.Size()
	if s.HasBlob(d) {
		rep.send(d, EventExists, size, size)
		return nil
	}
	rep.send(d, EventStart, 0, size)
	for attempt := 1; ; attempt++ {
		err = fetchLayer(ctx, s, l, d, size, rep)
		if err == nil {
			rep.send(d, EventDone, size, size)
			return nil
		}
		if attempt >= blobAttempts || !isTransient(err) || ctx.Err() != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		rep.send(d, EventRetry, 0, size)
	}
}

func fetchLayer(ctx context.Context, s *cache.Store, l v1.Layer, d v1.Hash, size int64, rep reporter) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, _, err = s.WriteBlob(ctx, &countingReader{r: rc, rep: rep, h: d, total: size}, d)
	return err
}
