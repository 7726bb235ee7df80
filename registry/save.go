package registry

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/legacy/tarball"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// ArchiveFormat names an image archive layout.
type ArchiveFormat int

const (
	// DockerArchive is `docker save`'s layout: manifest.json, repositories, the config
	// JSON and one directory per uncompressed layer.
	DockerArchive ArchiveFormat = iota
	// OCIArchive is a tar of an OCI image layout, tags in ref.name annotations.
	OCIArchive
)

// ParseArchiveFormat reads a --format value.
func ParseArchiveFormat(s string) (ArchiveFormat, error) {
	switch s {
	case "docker-archive", "docker", "":
		return DockerArchive, nil
	case "oci-archive", "oci":
		return OCIArchive, nil
	}
	return 0, fmt.Errorf("unknown archive format %q: use docker-archive or oci-archive", s)
}

// String is the --format spelling of f.
func (f ArchiveFormat) String() string {
	if f == OCIArchive {
		return "oci-archive"
	}
	return "docker-archive"
}

// saved is one image named on the command line.
type saved struct {
	name cache.Name // zero when the image was named by ID and has no tag to record
	desc v1.Descriptor
	img  v1.Image
}

// Save writes the images refs name (tags, digests or IDs) to w as one archive.
func Save(ctx context.Context, s *cache.Store, refs []string, format ArchiveFormat, w io.Writer) error {
	if len(refs) == 0 {
		return errors.New("save: name at least one image")
	}
	var images []saved
	for _, ref := range refs {
		desc, n, err := s.Lookup(ref)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		img, err := s.Image(desc.Digest)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		if !namedByTag(ref, n) {
			n = cache.Name{} // docker records no tag for an image saved by ID or digest
		}
		images = append(images, saved{name: n, desc: desc, img: img})
	}
	return writeArchive(ctx, s, images, format, w)
}

// SaveImage writes one stored image (tagged or not) to w under names, for build outputs.
func SaveImage(ctx context.Context, s *cache.Store, manifest v1.Hash, names []cache.Name, format ArchiveFormat, w io.Writer) error {
	img, err := s.Image(manifest)
	if err != nil {
		return fmt.Errorf("save %s: %w", manifest, err)
	}
	desc, err := s.Descriptor(manifest)
	if err != nil {
		return fmt.Errorf("save %s: %w", manifest, err)
	}
	images := []saved{{desc: desc, img: img}}
	if len(names) > 0 {
		images = images[:0]
		for _, n := range names {
			images = append(images, saved{name: n, desc: desc, img: img})
		}
	}
	return writeArchive(ctx, s, images, format, w)
}

func writeArchive(ctx context.Context, s *cache.Store, images []saved, format ArchiveFormat, w io.Writer) error {
	if format == OCIArchive {
		return writeOCIArchive(ctx, s, images, w)
	}
	return writeDockerArchive(images, w)
}

// namedByTag reports whether ref named the image by the tag Lookup found.
func namedByTag(ref string, found cache.Name) bool {
	n, err := cache.ParseName(ref)
	return err == nil && n.Digest() == "" && n.String() == found.String()
}

// writeDockerArchive writes docker save's layout with go-containerregistry's legacy writer,
// the only one of its writers that includes the `repositories` file.
func writeDockerArchive(images []saved, w io.Writer) error {
	refs := map[name.Reference]v1.Image{}
	byDigest := map[v1.Hash]v1.Image{} // the writer dedups by image value: one value per digest
	for _, im := range images {
		img, ok := byDigest[im.desc.Digest]
		if !ok {
			img, byDigest[im.desc.Digest] = im.img, im.img
		}
		var ref name.Reference
		var err error
		if im.name.IsZero() {
			ref, err = name.NewDigest("kiln.invalid/untagged@" + im.desc.Digest.String())
		} else {
			ref, err = name.NewTag(im.name.Short()) // docker writes RepoTags in short form
		}
		if err != nil {
			return fmt.Errorf("save %s: %w", im.desc.Digest, err)
		}
		refs[ref] = img
	}
	if err := tarball.MultiWrite(refs, w); err != nil {
		return fmt.Errorf("write docker-archive: %w", err)
	}
	return nil
}

// writeOCIArchive streams an OCI image layout as a tar straight from the store's blobs.
func writeOCIArchive(ctx context.Context, s *cache.Store, images []saved, w io.Writer) error {
	tw := tar.NewWriter(w)
	written := map[v1.Hash]bool{}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	for _, im := range images {
		if err := writeImageBlobs(ctx, s, tw, im, written); err != nil {
			return err
		}
		desc := v1.Descriptor{MediaType: im.desc.MediaType, Digest: im.desc.Digest, Size: im.desc.Size}
		if !im.name.IsZero() {
			desc.Annotations = map[string]string{
				cache.AnnotationRefName:   im.name.String(),
				cache.AnnotationImageName: im.name.String(),
			}
		}
		idx.Manifests = append(idx.Manifests, desc)
	}
	index, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := tarFile(tw, "index.json", index); err != nil {
		return err
	}
	if err := tarFile(tw, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write oci-archive: %w", err)
	}
	return nil
}

// writeImageBlobs adds an image's layers, config and manifest, each blob once; for an image
// with attestations, the index, the image and the attestation manifests.
func writeImageBlobs(ctx context.Context, s *cache.Store, tw *tar.Writer, im saved, written map[v1.Hash]bool) error {
	var blobs []v1.Descriptor
	manifests := []v1.Hash{im.desc.Digest}
	if im.desc.MediaType.IsIndex() {
		idx, err := s.Index(im.desc.Digest)
		if err != nil {
			return fmt.Errorf("save %s: %w", im.desc.Digest, err)
		}
		ix, err := idx.IndexManifest()
		if err != nil {
			return fmt.Errorf("save %s: %w", im.desc.Digest, err)
		}
		manifests = manifests[:0]
		for _, c := range ix.Manifests {
			manifests = append(manifests, c.Digest)
		}
	}
	for _, h := range manifests {
		img := im.img
		if h != im.desc.Digest {
			var err error
			if img, err = s.Image(h); err != nil {
				return fmt.Errorf("save %s: %w", im.desc.Digest, err)
			}
		}
		m, err := img.Manifest()
		if err != nil {
			return fmt.Errorf("save %s: %w", h, err)
		}
		blobs = append(blobs, m.Layers...)
		blobs = append(blobs, m.Config, v1.Descriptor{Digest: h})
	}
	if im.desc.MediaType.IsIndex() {
		blobs = append(blobs, im.desc)
	}
	for _, d := range blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if written[d.Digest] {
			continue
		}
		if err := copyBlob(s, tw, d.Digest); err != nil {
			return err
		}
		written[d.Digest] = true
	}
	return nil
}

func copyBlob(s *cache.Store, tw *tar.Writer, h v1.Hash) error {
	size, err := s.BlobSize(h)
	if err != nil {
		return fmt.Errorf("save blob %s: %w", h, err)
	}
	rc, err := s.OpenBlob(h)
	if err != nil {
		return fmt.Errorf("save blob %s: %w", h, err)
	}
	defer rc.Close()
	hdr := &tar.Header{Name: "blobs/" + h.Algorithm + "/" + h.Hex, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, rc); err != nil {
		return fmt.Errorf("save blob %s: %w", h, err)
	}
	return nil
}

func tarFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
