package main

import (
	"context"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/build"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry"
)

// buildRegistry is the registry as a build pipeline uses it, with the --registry flags.
type buildRegistry struct {
	g        *globalOptions
	s        *cache.Store
	progress io.Writer
}

func (r buildRegistry) ImportCache(ctx context.Context, spec string) (build.CacheImport, error) {
	sp, err := registry.ParseCacheSpec(spec, false)
	if err != nil {
		return build.CacheImport{}, err
	}
	opts, err := r.g.registry.options()
	if err != nil {
		return build.CacheImport{}, err
	}
	res, err := registry.ImportCache(ctx, r.s, sp, opts...)
	return build.CacheImport{Records: res.Records, Mounts: res.Mounts, Skipped: res.Skipped}, err
}

func (r buildRegistry) ExportCache(ctx context.Context, spec string, img *build.Image) (build.CacheExport, error) {
	sp, err := registry.ParseCacheSpec(spec, true)
	if err != nil {
		return build.CacheExport{}, err
	}
	opts, err := r.g.registry.options()
	if err != nil {
		return build.CacheExport{}, err
	}
	keys := registry.CacheKeys{All: img.Keys, Final: img.FinalKeys}
	res, err := registry.ExportCache(ctx, r.s, sp, img.Manifest.Digest, keys, opts...)
	return build.CacheExport{Records: res.Records, Mounts: res.Mounts, Image: res.Image, Warnings: res.Warnings}, err
}

func (r buildRegistry) Push(ctx context.Context, n cache.Name) (v1.Descriptor, error) {
	opts, err := r.g.registry.options()
	if err != nil {
		return v1.Descriptor{}, err
	}
	opts = append(opts, registry.WithProgress(blobProgress(r.progress, "Pushing")))
	return registry.Push(ctx, r.s, n.String(), n.String(), opts...)
}

func (r buildRegistry) EncodeEStargz(ctx context.Context, manifest v1.Hash) (v1.Descriptor, error) {
	c, err := registry.ParseCompression("estargz")
	if err != nil {
		return v1.Descriptor{}, err
	}
	return registry.Encode(ctx, r.s, manifest, registry.WithCompression(c))
}
