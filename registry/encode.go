package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/internal/ctxio"
)

// encodedState remembers re-encoded layers ("<source digest> <compression>" → descriptor)
// so a second push of the same layer does not compress it again. A hint: entries whose
// blob was collected are ignored.
const encodedState = "registry-encoded.json"

// gzipLevel trades a little size for speed: klauspost's level 5 compresses about as well as
// gzip -6 at several times its speed; the output is deterministic, so digests are stable.
const gzipLevel = 5

// encoded is the result of re-encoding one layer.
type encoded struct {
	Desc   v1.Descriptor `json:"desc"`
	DiffID v1.Hash       `json:"diffID"` // changes only for estargz, which rewrites the tar
}

// keeps reports whether a layer stored in encoding goes as is: in the requested compression,
// or, when none was asked for, in any compressed one (a zstd build pushes zstd).
func (o *options) keeps(encoding string) bool {
	if !o.compressSet {
		return encoding != "uncompressed"
	}
	return o.compression.satisfied(encoding)
}

// encodeForPush returns img with every layer in the requested compression; img itself when
// all already are.
func (o *options) encodeForPush(ctx context.Context, s *cache.Store, img v1.Image) (v1.Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image config lists %d diff IDs for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	out := make([]encoded, len(m.Layers))
	changed := false
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for i, l := range m.Layers {
		out[i] = encoded{Desc: l, DiffID: cf.RootFS.DiffIDs[i]}
		if o.keeps(storedEncoding(l.MediaType, l.Annotations)) || !l.MediaType.IsDistributable() {
			continue
		}
		changed = true
		g.Go(func() error {
			e, err := o.encodeLayer(gctx, s, l, cf.RootFS.DiffIDs[i])
			out[i] = e
			return err
		})
	}
	if err := g.Wait(); err != nil || !changed {
		return img, err
	}
	return rebuild(s, img, m, out)
}

// encodeLayer re-encodes one stored layer, reusing an earlier result when its blob is stored.
func (o *options) encodeLayer(ctx context.Context, s *cache.Store, l v1.Descriptor, diffID v1.Hash) (encoded, error) {
	key := l.Digest.String() + " " + o.compression.String()
	if e, ok := lookupEncoded(s, key); ok {
		return e, nil
	}
	var e encoded
	var err error
	if o.compression == EStargz {
		e, err = encodeEStargz(ctx, s, l)
	} else {
		e, err = encodeStream(ctx, s, l, diffID, o.compression)
	}
	if err != nil {
		return encoded{}, fmt.Errorf("re-encode layer %s as %s: %w", l.Digest, o.compression, err)
	}
	storeEncoded(s, key, e)
	return e, nil
}

// encodeStream decompresses and recompresses in one pass, checking the diff ID on the way.
func encodeStream(ctx context.Context, s *cache.Store, l v1.Descriptor, diffID v1.Hash, c Compression) (encoded, error) {
	rc, err := s.OpenBlob(l.Digest)
	if err != nil {
		return encoded{}, err
	}
	defer rc.Close()
	tarStream, err := layer.Decompress(rc)
	if err != nil {
		return encoded{}, err
	}
	defer tarStream.Close()
	bw, err := s.NewBlobWriter()
	if err != nil {
		return encoded{}, err
	}
	defer bw.Close()
	var comp io.WriteCloser
	mt := types.OCILayer
	if c == Gzip && l.MediaType == types.DockerUncompressedLayer {
		mt = types.DockerLayer // keep a Docker manifest Docker-typed
	}
	if c == Zstd {
		mt = types.OCILayerZStd
		comp, err = zstd.NewWriter(bw, zstd.WithEncoderConcurrency(1)) // one goroutine: same bytes every time
	} else {
		comp, err = gzip.NewWriterLevel(bw, gzipLevel)
	}
	if err != nil {
		return encoded{}, err
	}
	h := sha256.New()
	if _, err := ctxio.Copy(ctx, io.MultiWriter(comp, h), tarStream); err != nil {
		return encoded{}, err
	}
	if err := comp.Close(); err != nil {
		return encoded{}, err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID.String() {
		return encoded{}, fmt.Errorf("stored layer decompresses to %s, but the image says %s: the store is damaged", got, diffID)
	}
	d, size, err := bw.Commit(v1.Hash{})
	if err != nil {
		return encoded{}, err
	}
	return encoded{Desc: v1.Descriptor{MediaType: mt, Digest: d, Size: size}, DiffID: diffID}, nil
}

func lookupEncoded(s *cache.Store, key string) (encoded, bool) {
	data, _ := s.ReadState(encodedState)
	e, ok := decodeEncoded(data)[key]
	return e, ok && s.HasBlob(e.Desc.Digest)
}

// decodeEncoded reads the record; a damaged or missing one is empty.
func decodeEncoded(data []byte) map[string]encoded {
	m := map[string]encoded{}
	_ = json.Unmarshal(data, &m)
	if m == nil {
		m = map[string]encoded{}
	}
	return m
}

func storeEncoded(s *cache.Store, key string, e encoded) {
	_ = s.UpdateState(context.Background(), encodedState, func(old []byte) ([]byte, error) {
		m := decodeEncoded(old)
		for k, v := range m { // forget results whose blobs GC collected
			if !s.HasBlob(v.Desc.Digest) {
				delete(m, k)
			}
		}
		m[key] = e
		return json.Marshal(m)
	})
}

// Encode stores a copy of the stored image manifest with every layer in compression c
// (WithCompression), for `kiln build --compression=estargz|zstd`, and returns the new
// manifest's descriptor; the image itself when its layers already are encoded so.
func Encode(ctx context.Context, s *cache.Store, manifest v1.Hash, opts ...Option) (v1.Descriptor, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return v1.Descriptor{}, err
	}
	img, err := s.Image(manifest)
	if err != nil {
		return v1.Descriptor{}, err
	}
	out, err := o.encodeForPush(ctx, s, img)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("encode %s as %s: %w", manifest, o.compression, err)
	}
	return s.WriteImage(ctx, out)
}
