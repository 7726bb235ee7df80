package main

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// localResolver serves base images from the local store only.
type localResolver struct{ s *cache.Store }

func newResolver(s *cache.Store) *localResolver { return &localResolver{s: s} }

// Resolve finds ref in the store, or says how to get it there.
func (r *localResolver) Resolve(_ context.Context, ref string) (v1.Image, error) {
	desc, _, err := r.s.Lookup(ref)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, fmt.Errorf("image %q not found in the local store: build it, or load it with `kiln load -i ARCHIVE`", ref)
	}
	if err != nil {
		return nil, err
	}
	return r.s.Image(desc.Digest)
}
