package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/ctxio"
)

// layoutRepo prefixes a remote record's repository when its blob is in an OCI layout dir.
const layoutRepo = "oci:"

// layoutCacheName is the ref.name of the cache image in a `type=local` cache directory.
const layoutCacheName = "buildcache"

// writeLayout puts the stored cache image desc into the OCI layout dir: the blobs it lacks,
// a bounded few at a time, then the manifest, and last index.json (atomically), so an
// interrupted export leaves the previous cache whole.
func writeLayout(ctx context.Context, s *cache.Store, desc v1.Descriptor, dir, refName string, jobs int) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	marker := filepath.Join(dir, "oci-layout")
	if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
		if err := atomicfile.Write(marker, []byte(`{"imageLayoutVersion":"1.0.0"}`), atomicfile.Options{}); err != nil {
			return err
		}
	}
	img, err := s.Image(desc.Digest)
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, l := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		g.Go(func() error { return copyBlobTo(gctx, s, blobs, l.Digest) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := copyBlobTo(ctx, s, blobs, desc.Digest); err != nil {
		return err
	}
	return writeLayoutIndex(dir, desc, refName)
}

// copyBlobTo copies a stored blob (fetching it if only remote) into blobs unless present.
func copyBlobTo(ctx context.Context, s *cache.Store, blobs string, h v1.Hash) error {
	p := filepath.Join(blobs, h.Hex)
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
		return nil // content-addressed: already there
	}
	rc, err := s.OpenBlob(h)
	if err != nil {
		return err
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := ctxio.Copy(ctx, pw, rc)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	return atomicfile.WriteFrom(p, pr, atomicfile.Options{})
}

// writeLayoutIndex points refName at desc, keeping the directory's other images.
func writeLayoutIndex(dir string, desc v1.Descriptor, refName string) error {
	idx := &v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	if raw, err := os.ReadFile(filepath.Join(dir, "index.json")); err == nil {
		if old, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err == nil {
			for _, d := range old.Manifests {
				if d.Annotations["org.opencontainers.image.ref.name"] != refName {
					idx.Manifests = append(idx.Manifests, d)
				}
			}
		}
	}
	desc.Annotations = map[string]string{"org.opencontainers.image.ref.name": refName}
	idx.Manifests = append(idx.Manifests, desc)
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "index.json"), data, atomicfile.Options{})
}

// layoutImage is the image named refName in a `type=local` cache directory.
func layoutImage(dir, refName string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI layout directory: %w", dir, err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found *v1.Descriptor
	for i, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == refName {
			found = &im.Manifests[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s holds no %s image", dir, refName)
	}
	return p.Image(found.Digest)
}

// layoutBlob is one blob of an OCI layout directory.
type layoutBlob struct {
	dir string
	h   v1.Hash
}

func (b layoutBlob) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(b.dir, "blobs", "sha256", b.h.Hex))
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blob %s in %s is not a regular file", b.h, b.dir)
	}
	return f, nil
}
