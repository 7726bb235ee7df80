package registry

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/kiln-build/kiln/cache"
)

// blobName matches the only paths an OCI layout may hold besides its two index files.
var blobName = regexp.MustCompile(`^blobs/sha256/[a-f0-9]{64}$`)

// stageOCI unpacks the layout's files (nothing else) into dir and reads its index.
func stageOCI(ctx context.Context, s *cache.Store, file, dir string) ([]staged, error) {
	if err := unpackLayout(file, dir); err != nil {
		return nil, err
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read oci-archive: %w", err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read oci-archive index.json: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read oci-archive index.json: %w", err)
	}
	if len(im.Manifests) == 0 {
		return nil, fmt.Errorf("oci-archive lists no images")
	}
	var out []staged
	for _, d := range im.Manifests {
		st, err := stageOCIEntry(s, lp, d)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func stageOCIEntry(s *cache.Store, lp layout.Path, d v1.Descriptor) (staged, error) {
	n, named, err := refName(d)
	if err != nil {
		return staged{}, err
	}
	st := staged{}
	if named {
		st.names = []cache.Name{n}
	}
	switch {
	case d.MediaType.IsIndex():
		idx, err := lp.ImageIndex()
		if err == nil {
			idx, err = idx.ImageIndex(d.Digest)
		}
		if err != nil {
			return staged{}, fmt.Errorf("oci-archive index %s: %w", d.Digest, err)
		}
		st.write = func(ctx context.Context) (v1.Descriptor, error) { return s.WriteIndex(ctx, idx) }
	case d.MediaType.IsImage():
		img, err := lp.Image(d.Digest)
		if err != nil {
			return staged{}, fmt.Errorf("oci-archive image %s: %w", d.Digest, err)
		}
		st.write = func(ctx context.Context) (v1.Descriptor, error) { return s.WriteImage(ctx, img) }
	default:
		return staged{}, fmt.Errorf("oci-archive entry %s has unsupported media type %q", d.Digest, d.MediaType)
	}
	return st, nil
}

// unpackLayout writes the archive's index.json, oci-layout and blobs into dir. Any other
// entry is ignored, so no name in the archive can point anywhere else.
func unpackLayout(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.MkdirAll(dir+"/blobs/sha256", 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read oci-archive: %w", err)
		}
		n := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || (n != "index.json" && n != "oci-layout" && !blobName.MatchString(n)) {
			continue
		}
		out, err := root.OpenFile(n, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("read oci-archive %s: %w", n, err)
		}
	}
}
