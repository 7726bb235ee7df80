package build

import (
	"fmt"
	"strings"
)

// ParseAnnotations parses `--annotation [TYPE[PLATFORM]:]KEY=VALUE` values as buildx does, for
// the one kind kiln's single-platform image has: the manifest ("manifest:" or no prefix). An
// image index, and the descriptors buildx can annotate, are refused with what to use instead.
func ParseAnnotations(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		kv, val, ok := strings.Cut(f, "=")
		if !ok || kv == "" {
			return nil, fmt.Errorf("--annotation %q: use KEY=VALUE or manifest:KEY=VALUE", f)
		}
		key := kv
		if typ, rest, ok := strings.Cut(kv, ":"); ok && isAnnotationType(typ) {
			key = rest
			kind, plat, _ := strings.Cut(strings.TrimSuffix(typ, "]"), "[")
			if kind != "manifest" {
				return nil, fmt.Errorf("--annotation %q: kiln writes a single image manifest, with no index or descriptor to annotate; use manifest:%s=…", f, rest)
			}
			if err := CheckPlatform(plat); err != nil {
				return nil, fmt.Errorf("--annotation %q: %w", f, err)
			}
		}
		if key == "" {
			return nil, fmt.Errorf("--annotation %q: the key is empty", f)
		}
		out[key] = val
	}
	return out, nil
}

// isAnnotationType reports whether s is buildx's annotation type prefix, such as "index" or
// "manifest[linux/amd64]", rather than part of a key (keys such as org.opencontainers.x have no colon).
func isAnnotationType(s string) bool {
	kind, _, _ := strings.Cut(s, "[")
	switch kind {
	case "manifest", "index", "manifest-descriptor", "index-descriptor":
		return true
	}
	return false
}
