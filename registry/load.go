package registry

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/cache"
)

// Loaded is one image an archive brought into the store.
type Loaded struct {
	Name cache.Name    // zero when the archive gave the image no tag
	ID   v1.Hash       // the image ID (config digest), as docker prints it
	Desc v1.Descriptor // the stored manifest (or index)
}

// staged is an image read from an archive, waiting to be stored and tagged.
type staged struct {
	names []cache.Name
	write func(ctx context.Context) (v1.Descriptor, error)
}

// Load reads a docker-archive or oci-archive (detected from its contents) from r into the
// store. Every blob is verified against its digest before it is stored, and tags are set
// only after every image is stored, so a corrupt archive leaves no image behind.
func Load(ctx context.Context, s *cache.Store, r io.Reader) ([]Loaded, error) {
	tmp, err := s.TempDir("load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	file, err := spool(r, tmp)
	if err != nil {
		return nil, err
	}
	kind, err := detect(file)
	if err != nil {
		return nil, err
	}
	var images []staged
	if kind == OCIArchive {
		images, err = stageOCI(ctx, s, file, filepath.Join(tmp, "layout"))
	} else {
		images, err = stageDocker(s, file)
	}
	if err != nil {
		return nil, err
	}
	return commit(ctx, s, images)
}

// spool gives the archive a path: docker-archive readers seek, stdin cannot.
func spool(r io.Reader, dir string) (string, error) {
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return f.Name(), nil
		}
	}
	p := filepath.Join(dir, "archive.tar")
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return "", fmt.Errorf("read archive: %w", err)
	}
	return p, f.Close()
}

// detect tells the two layouts apart by their index files.
func detect(file string) (ArchiveFormat, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return 0, errors.New("not an image archive: it has neither manifest.json (docker-archive) nor oci-layout (oci-archive)")
		}
		if err != nil {
			return 0, fmt.Errorf("not an image archive: %w", err)
		}
		switch path.Clean(hdr.Name) {
		case "manifest.json":
			return DockerArchive, nil
		case "oci-layout":
			return OCIArchive, nil
		}
	}
}

// stageDocker reads docker save's manifest.json; go-containerregistry's tarball package
// reads the layers (plain or compressed) and verifies them against the config's diff IDs.
func stageDocker(s *cache.Store, file string) ([]staged, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("read docker-archive manifest.json: %w", err)
	}
	if len(m) == 0 {
		return nil, errors.New("docker-archive lists no images")
	}
	var out []staged
	for i, d := range m {
		var names []cache.Name
		for _, t := range d.RepoTags {
			n, err := cache.ParseName(t)
			if err != nil {
				return nil, fmt.Errorf("docker-archive image %d: tag %q: %w", i, t, err)
			}
			names = append(names, n)
		}
		img, err := dockerImage(opener, d, len(m))
		if err != nil {
			return nil, fmt.Errorf("docker-archive image %d: %w", i, err)
		}
		out = append(out, staged{names: names, write: func(ctx context.Context) (v1.Descriptor, error) {
			compressed, err := compressDockerImage(ctx, s, img)
			if err != nil {
				return v1.Descriptor{}, err
			}
			return s.WriteImage(ctx, compressed)
		}})
	}
	return out, nil
}

// dockerImage opens one manifest.json entry: by its first tag, or as the only image.
func dockerImage(opener tarball.Opener, d tarball.Descriptor, count int) (v1.Image, error) {
	if len(d.RepoTags) == 0 {
		if count > 1 {
			return nil, errors.New("untagged image in a multi-image archive is not supported; tag it before saving")
		}
		return tarball.Image(opener, nil)
	}
	tag, err := name.NewTag(d.RepoTags[0], name.WeakValidation)
	if err != nil {
		return nil, err
	}
	return tarball.Image(opener, &tag)
}

// commit stores every staged image, then tags them all.
func commit(ctx context.Context, s *cache.Store, images []staged) ([]Loaded, error) {
	descs := make([]v1.Descriptor, len(images))
	for i, im := range images {
		d, err := im.write(ctx)
		if err != nil {
			return nil, fmt.Errorf("store image: %w", err)
		}
		descs[i] = d
	}
	var out []Loaded
	for i, im := range images {
		id, err := s.ImageID(descs[i])
		if err != nil {
			return nil, err
		}
		if len(im.names) == 0 {
			if err := s.KeepUntagged(ctx, descs[i]); err != nil { // dangling, as docker's load leaves it
				return out, err
			}
			out = append(out, Loaded{ID: id, Desc: descs[i]})
		}
		for _, n := range im.names {
			if err := s.Retag(ctx, n, descs[i]); err != nil {
				return out, fmt.Errorf("tag %s: %w", n.Short(), err)
			}
			out = append(out, Loaded{Name: n, ID: id, Desc: descs[i]})
		}
	}
	return out, nil
}

// refName picks the tag an OCI index entry carries: containerd's full image.name first,
// then ref.name (which skopeo and kiln fill with a full reference).
func refName(d v1.Descriptor) (cache.Name, bool, error) {
	for _, key := range []string{cache.AnnotationImageName, cache.AnnotationRefName} {
		if v := strings.TrimSpace(d.Annotations[key]); v != "" {
			n, err := cache.ParseName(v)
			if err != nil {
				return cache.Name{}, false, fmt.Errorf("annotation %s=%q: %w", key, v, err)
			}
			return n, true, nil
		}
	}
	return cache.Name{}, false, nil
}
