package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
)

// Prefixes of --build-context values that are not local directories, as BuildKit's.
const (
	dockerImagePrefix = "docker-image://"
	ociLayoutPrefix   = "oci-layout://"
)

// namedContext is one --build-context NAME=VALUE, opened: a local directory (or a git
// checkout), an image reference resolved like a FROM, or an image read from an OCI layout.
type namedContext struct {
	value string   // as given, for messages
	dir   *Context // a local directory, or a git URL's checkout
	tmp   string   // the checkout's directory, removed with the context
	ref   string   // docker-image://REF
	image v1.Image // oci-layout://DIR[:TAG|@DIGEST]
}

// ParseBuildContexts checks `--build-context NAME=VALUE` flags and returns them by name
// (case-insensitive, as stage names); VALUE is a directory, a git URL (#ref:subdir),
// docker-image://REF or oci-layout://DIR[:TAG|@sha256:DIGEST].
func ParseBuildContexts(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		name, val, ok := strings.Cut(f, "=")
		if !ok || name == "" || val == "" {
			return nil, fmt.Errorf("--build-context %q: use NAME=DIR, NAME=GIT-URL, NAME=docker-image://REF or NAME=oci-layout://DIR", f)
		}
		if strings.Contains(val, "://") && !isGitURL(val) && !strings.HasPrefix(val, dockerImagePrefix) && !strings.HasPrefix(val, ociLayoutPrefix) {
			return nil, fmt.Errorf("--build-context %q: kiln takes a directory, a git URL (https://host/repo.git#ref:subdir), docker-image:// or oci-layout:// (not a tarball URL)", f)
		}
		name = strings.ToLower(name)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--build-context %s: given twice", name)
		}
		out[name] = val
	}
	return out, nil
}

// openNamedContexts opens the build's named contexts, cloning git ones into the store's
// staging; close releases the directories and removes the checkouts.
func openNamedContexts(ctx context.Context, values map[string]string, st *cache.Store) (map[string]*namedContext, func(), error) {
	out := map[string]*namedContext{}
	closeAll := func() {
		for _, nc := range out {
			if nc.dir != nil {
				_ = nc.dir.Close()
			}
			if nc.tmp != "" {
				_ = os.RemoveAll(nc.tmp)
			}
		}
	}
	for name, val := range values {
		nc := &namedContext{value: val}
		out[name] = nc // closeAll releases what it got so far on a failure
		var err error
		switch {
		case isGitURL(val):
			err = nc.openGit(ctx, st)
		case strings.HasPrefix(val, dockerImagePrefix):
			nc.ref = strings.TrimPrefix(val, dockerImagePrefix)
			if nc.ref == "" {
				err = errors.New("no image reference after docker-image://")
			}
		case strings.HasPrefix(val, ociLayoutPrefix):
			nc.image, err = layoutImage(strings.TrimPrefix(val, ociLayoutPrefix))
		default:
			nc.dir, err = openDirContext(val, st)
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("--build-context %s=%s: %w", name, redactURL(val), err)
		}
	}
	return out, closeAll, nil
}

// openDirContext opens a directory as a context with its own .dockerignore.
func openDirContext(dir string, state StateStore) (*Context, error) {
	ignore, err := ReadIgnoreFile(dir, "")
	if err != nil {
		return nil, err
	}
	return OpenContext(dir, ignore, state)
}

// openGit clones nc's git URL as a git build context is; the context is its subdir.
func (nc *namedContext) openGit(ctx context.Context, st *cache.Store) error {
	tmp, err := st.TempDir("context-")
	if err != nil {
		return err
	}
	nc.tmp = tmp
	sub, err := checkoutContext(ctx, nc.value, tmp)
	if err != nil {
		return err
	}
	nc.dir, err = openDirContext(sub, st)
	return err
}

// layoutImage reads DIR[:TAG|@DIGEST] from an OCI image layout; without either the layout
// must hold exactly one image.
func layoutImage(spec string) (v1.Image, error) {
	dir, dig, hasDigest := strings.Cut(spec, "@")
	tag := ""
	if !hasDigest {
		// A tag follows the last colon after the last path separator.
		if i := strings.LastIndex(spec, ":"); i > strings.LastIndex(spec, string(filepath.Separator)) {
			dir, tag = spec[:i], spec[i+1:]
		}
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range m.Manifests {
		if !d.MediaType.IsImage() && d.MediaType != types.OCIManifestSchema1 {
			continue
		}
		switch {
		case hasDigest && d.Digest.String() == dig,
			tag != "" && d.Annotations["org.opencontainers.image.ref.name"] == tag,
			!hasDigest && tag == "":
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("no image %q in the OCI layout %s", strings.TrimPrefix(spec, dir), dir)
	case len(found) > 1:
		return nil, fmt.Errorf("the OCI layout %s holds %d images: name one with :TAG or @DIGEST", dir, len(found))
	}
	return idx.Image(found[0].Digest)
}

// namedDir is the --build-context directory of that name, if any.
func (p *planner) namedDir(name string) *Context {
	if nc, ok := p.opts.named[strings.ToLower(name)]; ok {
		return nc.dir
	}
	return nil
}

// fromDir makes a --build-context directory the stage's filesystem on an empty config, as
// BuildKit's FROM of a local named context: one layer holding the directory, .dockerignore
// applied.
func (sb *stageBuilder) fromDir(ctx context.Context, name string) error {
	nc := sb.p.opts.named[strings.ToLower(name)]
	sel, err := nc.dir.Select(ctx, []string{"."})
	if err != nil {
		return err
	}
	sel.digest = sel.sum()
	sb.ps.Config = scratchConfig()
	v := sb.p.add(ctx, &Vertex{Name: "[context " + name + "] load " + nc.value, Instr: "FROM", Stage: sb.st.Index, Line: sb.st.Line,
		op: &copyOp{sel: sel, dest: "/", destDir: true}})
	sb.ps.Tip = v
	sb.ps.Steps = append(sb.ps.Steps, Step{CreatedBy: "FROM " + name + " (--build-context " + nc.value + ")", Vertex: v})
	return nil
}

// planNamed plans a stage whose name a --build-context replaces, as BuildKit does: its
// instructions are not run, the context is the stage.
func (sb *stageBuilder) planNamed(ctx context.Context) (*PlannedStage, error) {
	var err error
	if sb.p.namedDir(sb.st.Name) != nil {
		err = sb.fromDir(ctx, sb.st.Name)
	} else {
		_, err = sb.fromImageRef(ctx, sb.st.Name)
		if sb.fromV != nil {
			sb.fromV.Name = "[" + sb.st.Name + "] " + sb.fromV.Name
		}
	}
	if err != nil {
		return nil, errAt(sb.p.f.Name, sb.st.Line, "FROM", err)
	}
	sb.ps.Config.Config.OnBuild = nil
	sb.ps.Config.RootFS = v1.RootFS{}
	return sb.ps, nil
}
