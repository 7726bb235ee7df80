package layer

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Compression names how a layer blob is encoded.
type Compression int

// The encodings kiln writes; Decompress reads all of them.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// ParseCompression reads a --compression flag value.
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "uncompressed", "none":
		return Uncompressed, nil
	case "gzip", "":
		return Gzip, nil
	case "zstd":
		return Zstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q: use gzip, zstd or uncompressed", s)
}

// String is the flag spelling of c.
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// MediaType is the OCI layer media type for blobs encoded with c.
func (c Compression) MediaType() types.MediaType {
	switch c {
	case Gzip:
		return types.OCILayer
	case Zstd:
		return types.OCILayerZStd
	}
	return types.OCIUncompressedLayer
}
