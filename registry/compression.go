package registry

import (
	"fmt"
	"strings"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Compression is how Push encodes layers.
type Compression int

const (
	// Gzip is the default: every registry and runtime reads it.
	Gzip Compression = iota
	// Zstd decompresses several times faster; needs containerd ≥ 1.5 / podman on the consumer side.
	Zstd
	// EStargz is gzip with a table of contents, so stargz-snapshotter can start containers lazily.
	EStargz
)

// ParseCompression reads a --compression value: gzip, zstd or estargz.
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "gzip", "":
		return Gzip, nil
	case "zstd":
		return Zstd, nil
	case "estargz":
		return EStargz, nil
	}
	return 0, fmt.Errorf("unknown compression %q: use gzip, zstd or estargz", s)
}

// String is the flag spelling of c.
func (c Compression) String() string {
	switch c {
	case Zstd:
		return "zstd"
	case EStargz:
		return "estargz"
	}
	return "gzip"
}

// storedEncoding classifies a stored layer: "gzip", "zstd", "estargz" or "uncompressed".
func storedEncoding(mt types.MediaType, annotations map[string]string) string {
	s := string(mt)
	switch {
	case strings.HasSuffix(s, "zstd"):
		return "zstd"
	case strings.HasSuffix(s, "gzip"):
		if annotations[estargz.TOCJSONDigestAnnotation] != "" {
			return "estargz"
		}
		return "gzip"
	}
	return "uncompressed"
}

// satisfied reports whether a stored layer can be pushed as is for c: estargz is gzip, so
// it serves a gzip push too.
func (c Compression) satisfied(encoding string) bool {
	switch c {
	case Gzip:
		return encoding == "gzip" || encoding == "estargz"
	case Zstd:
		return encoding == "zstd"
	}
	return encoding == "estargz"
}
