package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
)

// ImageOptions describe the step that makes a new image (docker's commit and import).
type ImageOptions struct {
	Ref     cache.Name // tag for the image; zero leaves it dangling (<none>, kept until a prune)
	Message string     // the history entry's comment (-m)
	Author  string     // the image's author (-a)
	// Configure changes the new image's config before it is written (--change); nil keeps it.
	Configure func(*v1.ConfigFile) error
	Pause     bool // freeze a running container while its changes are read (commit's --pause)
}

// Commit stores c's filesystem changes (its upper dir) as a new layer on c's image, with
// c's config (the image's under its run flags, as docker commits), and tags it; it returns the new manifest (docker's `commit`). With
// opts.Pause a running container is frozen until its changes are packed, as docker does, so
// the layer is one moment of its filesystem.
func (c *Container) Commit(ctx context.Context, st *cache.Store, opts ImageOptions) (desc v1.Descriptor, err error) {
	base, err := st.Image(c.ImageDigest)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("commit %s: image %s: %w", c.Name, c.Image, err)
	}
	change := opts.Configure
	opts.Configure = func(cf *v1.ConfigFile) error { // -c applies over the container's config
		c.imageConfig(&cf.Config)
		if change == nil {
			return nil
		}
		return change(cf)
	}
	if opts.Pause {
		resume := c.pauseWhile(ctx)
		defer func() {
			if rerr := resume(); rerr != nil && err == nil {
				err = fmt.Errorf("commit %s: %w", c.Name, rerr)
			}
		}()
	}
	fill := func(w *layer.Writer) error { return layer.Diff(ctx, c.Spec.Upper, w) }
	desc, err = newImage(ctx, st, base, fill, "kiln commit "+c.Name, opts)
	if err != nil {
		return desc, fmt.Errorf("commit %s: %w", c.Name, err)
	}
	return desc, nil
}

// imageConfig sets what c runs with over its image's config: docker commits the container's
// config, so `run -e A=1 IMG cmd` then commit makes an image whose ENV has A=1 and whose CMD is
// cmd; --change instructions apply on top of it.
func (c *Container) imageConfig(cfg *v1.Config) {
	if c.Command != nil { // records of older kilns keep the image's
		cfg.Entrypoint, cfg.Cmd = c.Command.Entrypoint, c.Command.Cmd
	}
	cfg.Env, cfg.User, cfg.WorkingDir = c.Spec.Env, c.Spec.User, c.Spec.Cwd
	if c.Labels != nil {
		cfg.Labels = c.Labels
	}
	if c.StopSignal != "" {
		cfg.StopSignal = c.StopSignal
	}
	if len(c.Exposed) > 0 {
		cfg.ExposedPorts = map[string]struct{}{}
		for _, p := range c.Exposed {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	if h := c.Healthcheck; h != nil {
		cfg.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
}

// Import stores the tar r (plain or compressed) as the one layer of a new image for this
// host's platform, and tags it (docker's `import`).
func Import(ctx context.Context, st *cache.Store, r io.Reader, opts ImageOptions) (v1.Descriptor, error) {
	lim, err := layer.LimitsFromEnv()
	if err != nil {
		return v1.Descriptor{}, err
	}
	plain, err := layer.DecompressLimited(r, lim)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("import: %w", err)
	}
	defer plain.Close()
	fill := func(w *layer.Writer) error { return copyTar(ctx, plain, w) }
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: goruntime.GOARCH,
		RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := newImage(ctx, st, base, fill, "kiln import", opts)
	if err != nil {
		return desc, fmt.Errorf("import: %w", err)
	}
	return desc, nil
}

// copyTar rewrites every entry of the tar r through w (which normalizes headers).
func copyTar(ctx context.Context, r io.Reader, w *layer.Writer) error {
	return layer.EachEntry(ctx, r, func(hdr *tar.Header, content io.Reader) error {
		if err := w.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.Copy(w, content)
		return err
	})
}

// newImage packs fill into a gzip layer blob, appends it to base with a history entry and
// writes and tags the image.
func newImage(ctx context.Context, st *cache.Store, base v1.Image, fill func(*layer.Writer) error, createdBy string, opts ImageOptions) (v1.Descriptor, error) {
	if opts.Configure != nil { // first: a refused change packs nothing
		cf, err := base.ConfigFile()
		if err != nil {
			return v1.Descriptor{}, err
		}
		cf = cf.DeepCopy()
		if err := opts.Configure(cf); err != nil {
			return v1.Descriptor{}, err
		}
		if base, err = mutate.ConfigFile(base, cf); err != nil {
			return v1.Descriptor{}, err
		}
	}
	bw, err := st.NewBlobWriter()
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer bw.Close()
	p, err := layer.Pack(ctx, bw, layer.Gzip, 0, layer.WriteOptions{}, fill)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if _, _, err := bw.Commit(p.Digest); err != nil {
		return v1.Descriptor{}, fmt.Errorf("store layer: %w", err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return st.OpenBlob(p.Digest) },
		tarball.WithMediaType(p.MediaType))
	if err != nil {
		return v1.Descriptor{}, err
	}
	now := time.Now().UTC()
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, MediaType: p.MediaType,
		History: v1.History{Created: v1.Time{Time: now}, CreatedBy: createdBy, Comment: opts.Message, Author: opts.Author}})
	if err != nil {
		return v1.Descriptor{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: now}
	if opts.Author != "" {
		cf.Author = opts.Author
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := st.WriteImage(ctx, img)
	if err != nil {
		return desc, err
	}
	if opts.Ref.IsZero() {
		return desc, st.KeepUntagged(ctx, desc) // dangling until tagged or pruned, as docker's
	}
	return desc, st.Retag(ctx, opts.Ref, desc)
}

// Export writes c's filesystem (its image's layers and its changes; no mounts) as a tar to w
// (docker's `export`).
func (c *Container) Export(ctx context.Context, w io.Writer) (err error) {
	rootfs, release, err := c.layersView(false)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, release()) }()
	if err := copyTree(ctx, rootfs, "/.", Stream, "", w, copyOpts{}); err != nil {
		return fmt.Errorf("export %s: %w", c.Name, err)
	}
	return nil
}
