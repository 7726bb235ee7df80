package registry

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/go-units"
)

// CacheType is where a build cache lives.
type CacheType int

const (
	// CacheRegistry is a cache image in a registry repository (also any image pushed with an
	// inline cache, read back with --cache-from REF).
	CacheRegistry CacheType = iota
	// CacheLocal is an OCI image layout directory, for CI systems that save and restore folders.
	CacheLocal
	// CacheInline puts the records into the config of the image the build pushes.
	CacheInline
)

// String is the flag spelling of t.
func (t CacheType) String() string {
	switch t {
	case CacheLocal:
		return "local"
	case CacheInline:
		return "inline"
	}
	return "registry"
}

// CacheMode says which steps a cache export covers.
type CacheMode int

const (
	// CacheMax exports every step of every stage the build solved (kiln's default).
	CacheMax CacheMode = iota
	// CacheMin exports the steps of the final stage only.
	CacheMin
)

// CacheSpec is one --cache-from or --cache-to value, validated.
type CacheSpec struct {
	Type        CacheType
	Ref         string // registry: the cache image
	Dir         string // local: the layout directory (dest= on export, src= on import)
	Mode        CacheMode
	Compression *Compression // nil: layers as stored
	IgnoreError bool         // an export failure only warns
	Mounts      bool         // also the cache mounts' contents (see docs/cache-mounts.md)
	MountsMax   int64        // export: skip the largest mounts while their blobs exceed this
}

// defaultMountsMax caps a cache-mounts export unless mounts-max-size says otherwise.
const defaultMountsMax = 2 << 30

// cacheKeys are the keys each type accepts, on import and on export.
var cacheKeys = map[CacheType][2][]string{
	CacheRegistry: {{"type", "ref", "ignore-error", "oci-mediatypes", "mounts"}, {"type", "ref", "mode", "compression", "ignore-error", "oci-mediatypes", "mounts", "mounts-max-size"}},
	CacheLocal:    {{"type", "src", "ignore-error", "mounts"}, {"type", "dest", "mode", "compression", "ignore-error", "mounts", "mounts-max-size"}},
	CacheInline:   {nil, {"type", "ignore-error"}},
}

// ParseCacheSpec reads a --cache-from (export false) or --cache-to value: type=registry,ref=R
// (or just R), type=local,src=DIR / dest=DIR, type=inline, with mode=min|max,
// compression=gzip|zstd and ignore-error=true.
func ParseCacheSpec(v string, export bool) (CacheSpec, error) {
	if !strings.Contains(v, "=") {
		if v == "" {
			return CacheSpec{}, fmt.Errorf("empty cache option: use type=registry,ref=REGISTRY/NAME:TAG or type=local,%s=DIR", localKey(export))
		}
		return CacheSpec{Type: CacheRegistry, Ref: v}, nil
	}
	kv := map[string]string{}
	for _, f := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(f, "=")
		kv[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	var sp CacheSpec
	switch kv["type"] {
	case "registry", "":
		sp.Type = CacheRegistry
	case "local":
		sp.Type = CacheLocal
	case "inline":
		sp.Type = CacheInline
		if !export {
			return sp, fmt.Errorf("cache option %q: an inline cache is read from the image: use --cache-from type=registry,ref=IMAGE (or just IMAGE)", v)
		}
	default:
		return sp, fmt.Errorf("cache option %q: unknown type %q: use registry, local or inline", v, kv["type"])
	}
	valid := cacheKeys[sp.Type][0]
	if export {
		valid = cacheKeys[sp.Type][1]
	}
	for k := range kv {
		if !slices.Contains(valid, k) {
			return sp, fmt.Errorf("cache option %q: unknown key %q for type=%s; valid keys: %s", v, k, sp.Type, strings.Join(valid, ", "))
		}
	}
	return sp, sp.fill(v, kv, export)
}

// fill reads the keys already checked against the type's valid ones.
func (sp *CacheSpec) fill(v string, kv map[string]string, export bool) error {
	sp.Ref = kv["ref"]
	if d := kv[localKey(export)]; d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("cache option %q: %w", v, err)
		}
		sp.Dir = abs
	}
	switch {
	case sp.Type == CacheRegistry && sp.Ref == "":
		return fmt.Errorf("cache option %q: type=registry needs ref=REGISTRY/NAME:TAG", v)
	case sp.Type == CacheLocal && sp.Dir == "":
		return fmt.Errorf("cache option %q: type=local needs %s=DIR", v, localKey(export))
	}
	switch kv["mode"] {
	case "", "max":
	case "min":
		sp.Mode = CacheMin
	default:
		return fmt.Errorf("cache option %q: mode must be min or max, not %q", v, kv["mode"])
	}
	if c, ok := kv["compression"]; ok {
		if c != "gzip" && c != "zstd" {
			return fmt.Errorf("cache option %q: compression must be gzip or zstd, not %q", v, c)
		}
		comp, _ := ParseCompression(c)
		sp.Compression = &comp
	}
	for k, dst := range map[string]*bool{"ignore-error": &sp.IgnoreError, "mounts": &sp.Mounts} {
		if s, ok := kv[k]; ok {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("cache option %q: %s must be true or false, not %q", v, k, s)
			}
			*dst = b
		}
	}
	sp.MountsMax = defaultMountsMax
	if s, ok := kv["mounts-max-size"]; ok {
		n, err := units.RAMInBytes(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("cache option %q: mounts-max-size must be a size such as 2g, not %q", v, s)
		}
		sp.MountsMax = n
	}
	return nil
}

func localKey(export bool) string {
	if export {
		return "dest"
	}
	return "src"
}
