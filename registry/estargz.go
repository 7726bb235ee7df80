package registry

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/internal/ctxio"
)

// encodeEStargz rebuilds a layer as eStargz. estargz.Build needs random access to the
// uncompressed tar, so it is spooled to the store's tmp first. The TOC rewrites the tar,
// so the diff ID changes and the caller must update the config.
func encodeEStargz(ctx context.Context, s *cache.Store, l v1.Descriptor) (encoded, error) {
	dir, err := s.TempDir("estargz-")
	if err != nil {
		return encoded{}, err
	}
	defer os.RemoveAll(dir)
	f, size, err := spoolUncompressed(ctx, s, l.Digest, filepath.Join(dir, "layer.tar"))
	if err != nil {
		return encoded{}, err
	}
	defer f.Close()
	blob, err := estargz.Build(io.NewSectionReader(f, 0, size), estargz.WithContext(ctx))
	if err != nil {
		return encoded{}, err
	}
	defer blob.Close()
	bw, err := s.NewBlobWriter()
	if err != nil {
		return encoded{}, err
	}
	defer bw.Close()
	if _, err := ctxio.Copy(ctx, bw, blob); err != nil {
		return encoded{}, err
	}
	d, n, err := bw.Commit(v1.Hash{})
	if err != nil {
		return encoded{}, err
	}
	usize, err := blob.UncompressedSize()
	if err != nil {
		return encoded{}, err
	}
	diffID, err := v1.NewHash(blob.DiffID().String())
	if err != nil {
		return encoded{}, err
	}
	return encoded{Desc: v1.Descriptor{MediaType: types.OCILayer, Digest: d, Size: n, Annotations: map[string]string{
		estargz.TOCJSONDigestAnnotation:         blob.TOCDigest().String(),
		estargz.StoreUncompressedSizeAnnotation: strconv.FormatInt(usize, 10),
	}}, DiffID: diffID}, nil
}

// spoolUncompressed writes the decompressed blob to path and returns it open for reading.
func spoolUncompressed(ctx context.Context, s *cache.Store, h v1.Hash, path string) (*os.File, int64, error) {
	rc, err := s.OpenBlob(h)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	r, err := layer.Decompress(rc)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, 0, err
	}
	n, err := ctxio.Copy(ctx, f, r)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("decompress layer %s: %w", h, err)
	}
	return f, n, nil
}
