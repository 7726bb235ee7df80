package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/build"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry"
)

// cacheRef reads a --cache-from/--cache-to value: type=registry,ref=NAME or a bare NAME.
func cacheRef(v string) (string, error) {
	if !strings.Contains(v, "=") {
		return v, nil
	}
	var typ, ref string
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "type":
			typ = val
		case "ref":
			ref = val
		case "mode", "compression", "oci-mediatypes", "ignore-error":
			// BuildKit's knobs: kiln always exports every step of the build
		default:
			return "", fmt.Errorf("cache option %q: unknown key %q", v, k)
		}
	}
	if typ != "registry" || ref == "" {
		return "", fmt.Errorf("cache option %q: only type=registry,ref=REGISTRY/NAME:TAG is supported", v)
	}
	return ref, nil
}

// cacheRefs reads each --cache-from value.
func cacheRefs(vs []string) ([]string, error) {
	var out []string
	for _, v := range vs {
		ref, err := cacheRef(v)
		if err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

// buildRegistry is the registry as a build pipeline uses it, with the --registry flags.
type buildRegistry struct {
	g        *globalOptions
	s        *cache.Store
	progress io.Writer
}

func (r buildRegistry) ImportCache(ctx context.Context, ref string) (build.CacheImport, error) {
	opts, err := r.g.registry.options()
	if err != nil {
		return build.CacheImport{}, err
	}
	res, err := registry.ImportCache(ctx, r.s, ref, opts...)
	return build.CacheImport{Records: res.Records, Skipped: res.Skipped}, err
}

func (r buildRegistry) ExportCache(ctx context.Context, keys []string, ref string) (int, error) {
	opts, err := r.g.registry.options()
	if err != nil {
		return 0, err
	}
	return registry.ExportCache(ctx, r.s, keys, ref, opts...)
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
