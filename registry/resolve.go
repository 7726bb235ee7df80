package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// Resolver gives builds their base images: from the local store, pulling per its policy.
// It satisfies build.Resolver. A Resolver is safe for concurrent use.
type Resolver struct {
	s    *cache.Store
	opts []Option
	o    *options
	err  error // from the options, reported by every Resolve

	mu   sync.Mutex
	seen map[string]*resolved // one registry check per reference per Resolver
}

type resolved struct {
	once sync.Once
	img  v1.Image
	err  error
}

// NewResolver makes a Resolver over s; option errors surface from Resolve.
func NewResolver(s *cache.Store, opts ...Option) *Resolver {
	o, err := makeOptions(opts)
	return &Resolver{s: s, opts: opts, o: o, err: err, seen: map[string]*resolved{}}
}

// Resolve returns the image ref names (a name, name@digest or image ID), pulling it per
// the pull policy; a multi-platform image resolves to the configured platform's image.
func (r *Resolver) Resolve(ctx context.Context, ref string) (v1.Image, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.mu.Lock()
	e, ok := r.seen[ref]
	if !ok {
		e = &resolved{}
		r.seen[ref] = e
	}
	r.mu.Unlock()
	e.once.Do(func() { e.img, e.err = r.resolve(ctx, ref) })
	if e.err != nil && ctx.Err() == nil && errors.Is(e.err, context.Canceled) {
		return r.resolve(ctx, ref) // an earlier caller gave up; this one has not
	}
	return e.img, e.err
}

func (r *Resolver) resolve(ctx context.Context, ref string) (v1.Image, error) {
	n, nameErr := cache.ParseName(ref)
	if r.o.policy != PullAlways || nameErr != nil { // an image ID can only be local
		desc, _, err := r.s.Lookup(ref)
		if err == nil {
			return r.o.localImage(r.s, desc)
		}
		if !errors.Is(err, cache.ErrNotFound) {
			return nil, err
		}
		if r.o.policy == PullNever {
			return nil, fmt.Errorf("image %s not found in the local store; run `kiln pull %s` or `kiln load -i archive.tar`", ref, ref)
		}
	}
	if nameErr != nil {
		return nil, fmt.Errorf("image %s not found in the local store (%v)", ref, nameErr)
	}
	ctx, cancel := r.o.withTimeout(ctx)
	defer cancel()
	if r.o.noStore {
		return r.o.remoteConfig(ctx, n)
	}
	desc, err := r.o.pull(ctx, r.s, n)
	if err != nil {
		return nil, err
	}
	return r.s.Image(desc.Digest)
}

// remoteConfig reads an image's manifest and config from the first endpoint that has it;
// both stay in memory, so the image answers Digest and ConfigFile after ctx ends.
func (o *options) remoteConfig(ctx context.Context, n cache.Name) (v1.Image, error) {
	eps, err := o.pullEndpoints(n)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ep := range eps {
		img, err := o.remoteImage(ctx, ep)
		if err == nil {
			_, err = img.RawConfigFile()
		}
		if err == nil {
			return img, nil
		}
		errs = append(errs, explain(err, ep.ref.String(), ep.ref.Context().RegistryStr()))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("resolve %s: %w", n.Short(), errors.Join(errs...))
}

// localImage opens a stored image, picking the platform's child of a stored index.
func (o *options) localImage(s *cache.Store, desc v1.Descriptor) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		return s.Image(desc.Digest)
	}
	idx, err := s.Index(desc.Digest)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, child := range im.Manifests {
		if child.MediaType.IsImage() && child.Platform != nil && child.Platform.Satisfies(o.platform) {
			return s.Image(child.Digest)
		}
	}
	if len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsImage() {
		return s.Image(im.Manifests[0].Digest)
	}
	return nil, fmt.Errorf("image %s has no %s variant in the local store", desc.Digest, o.platform.String())
}
