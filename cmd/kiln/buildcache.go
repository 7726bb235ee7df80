package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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

// importCaches pulls each --cache-from cache image into the local cache index; an
// unreachable cache only costs a cold build, so it warns instead of failing.
func importCaches(cmd *cobra.Command, g *globalOptions, s *cache.Store, refs []string) error {
	for _, v := range refs {
		ref, err := cacheRef(v)
		if err != nil {
			return usageError{err}
		}
		opts, err := g.registry.options()
		if err != nil {
			return err
		}
		n, err := registry.ImportCache(cmd.Context(), s, ref, opts...)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: --cache-from %s: %v\n", ref, err)
			continue
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "imported %d cache records from %s\n", n, ref)
	}
	return nil
}

func exportCache(cmd *cobra.Command, g *globalOptions, s *cache.Store, img *build.Image, v string) error {
	ref, err := cacheRef(v)
	if err != nil {
		return usageError{err}
	}
	opts, err := g.registry.options()
	if err != nil {
		return err
	}
	n, err := registry.ExportCache(cmd.Context(), s, img.Keys, ref, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "exported %d cache records to %s\n", n, ref)
	return nil
}
