package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
)

// Options is everything one `kiln build` needs.
type Options struct {
	Buildfile        string    // path, "-" for Stdin, or "" to look for Buildfile/Dockerfile/Containerfile in the context
	Stdin            io.Reader // read when Buildfile is "-"
	ContextDir       string
	Tags             []cache.Name
	Target           string
	BuildArgs        map[string]string
	Labels           map[string]string
	NoCache          bool
	NoCacheFor       []string // --no-cache-filter: stage names or indexes whose steps always run
	Jobs             int
	Compression      layer.Compression
	CompressionLevel int // 0 = the layer package's fast default
	Epoch            *time.Time
	Store            *cache.Store
	Resolver         Resolver
	Runner           Runner
	Report           Reporter
	LogDir           string            // keeps each RUN step's whole output; see SolveOptions
	Explain          bool              // report why each step missed the cache (EventExplain)
	Secrets          map[string][]byte // RUN --mount=type=secret values by id (--secret)
	Run              RunDefaults       // --network, --add-host, --ulimit, --shm-size for every RUN step
	SSH              []SSHSource       // --ssh: agents RUN --mount=type=ssh may use
	Annotations      map[string]string // --annotation: the image manifest's annotations
	BuildContexts    map[string]string // --build-context: NAME → DIR, docker-image://REF or oci-layout://DIR (see ParseBuildContexts)
}

// DefaultBuildfiles are looked for in the context, in order, when no -f is given.
var DefaultBuildfiles = []string{"Buildfile", "Dockerfile", "Containerfile"}

// FindBuildfile returns the Buildfile to use: the given path, or the first default name in dir.
func FindBuildfile(dir, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if err := checkContextDir(dir); err != nil {
		return "", err
	}
	for _, n := range DefaultBuildfiles {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Buildfile, Dockerfile or Containerfile in %s: pass one with -f", dir)
}

// checkContextDir says what is wrong with a context directory that cannot be one.
func checkContextDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("build context %s does not exist: give the directory to build from", dir)
	case err != nil:
		return fmt.Errorf("build context %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("build context %s is not a directory: give the directory to build from (a Buildfile goes with -f)", dir)
	}
	return nil
}

// Build parses, plans and solves a Buildfile, then tags the image.
func Build(ctx context.Context, o Options) (*Image, error) {
	started := time.Now()
	f, data, err := o.parse()
	if err != nil {
		return nil, err
	}
	agents, err := openSSH(o.SSH)
	if err != nil {
		return nil, err
	}
	ignore, err := ReadIgnoreFile(o.ContextDir, o.Buildfile)
	if err != nil {
		return nil, err
	}
	bctx, err := OpenContext(o.ContextDir, ignore, o.Store)
	if err != nil {
		return nil, err
	}
	defer bctx.Close()
	named, closeNamed, err := openNamedContexts(ctx, o.BuildContexts, o.Store)
	if err != nil {
		return nil, err
	}
	defer closeNamed()
	warn := func(msg string) { o.report(Event{Kind: EventWarning, Time: time.Now(), Data: []byte(msg)}) }
	for _, w := range f.Warnings {
		warn(w)
	}
	downloads, err := o.Store.TempDir("add-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(downloads)
	check := func(c Check) { o.report(Event{Kind: EventCheck, Time: time.Now(), Check: &c}) }
	g, err := Plan(ctx, f, PlanOptions{Target: o.Target, BuildArgs: o.BuildArgs, Labels: o.Labels, Context: bctx, DownloadDir: downloads,
		Resolver: o.Resolver, Epoch: o.Epoch, Warn: warn, Check: check, Run: o.Run, named: named})
	if err != nil {
		return nil, err
	}
	ex := newExplainer(o.Store, g, filepath.Join(bctx.Dir(), f.Name), o.Target, o.Explain)
	noCacheIn, err := stageSet(f, o.NoCacheFor)
	if err != nil {
		return nil, err
	}
	so := SolveOptions{Store: o.Store, Compression: o.Compression, Level: o.CompressionLevel, NoCache: o.NoCache, NoCacheIn: noCacheIn,
		Jobs: o.Jobs, Epoch: o.Epoch, Runner: o.Runner, Report: o.Report, LogDir: o.LogDir,
		Secrets: o.Secrets, SSH: agents, Annotations: o.Annotations, Context: bctx, DownloadDir: downloads}
	if o.Explain {
		so.explain = ex
	}
	img, err := Solve(ctx, g, so)
	if err != nil {
		return nil, err
	}
	img.record = newBuildRecord(o, data, g, started)
	_ = bctx.Save() // a lost stat cache only costs re-hashing next time
	_ = ex.save(g)  // likewise a lost record only leaves the next --explain without a comparison
	for _, t := range o.Tags {
		if err := o.Store.Tag(ctx, t, img.Manifest); err != nil {
			return nil, fmt.Errorf("tag %s: %w", t.Short(), err)
		}
	}
	return img, nil
}

// RunChecks runs only the build checks (docker build --check): every stage is planned (the
// target's only with Target), nothing is run, downloaded or written to the store; base images
// come from the Resolver.
// The checks come back in line order, with those found before an error that stopped them.
func RunChecks(ctx context.Context, o Options) ([]Check, error) {
	if IsRemoteContext(o.ContextDir) {
		return nil, fmt.Errorf("--check needs a local context directory, not %s: check out or extract it first", o.ContextDir)
	}
	f, _, err := o.parse()
	if err != nil {
		return nil, err
	}
	ignore, err := ReadIgnoreFile(o.ContextDir, o.Buildfile)
	if err != nil {
		return nil, err
	}
	bctx, err := OpenContext(o.ContextDir, ignore, nil)
	if err != nil {
		return nil, err
	}
	defer bctx.Close()
	var checks []Check
	_, err = Plan(ctx, f, PlanOptions{Target: o.Target, BuildArgs: o.BuildArgs, Context: bctx, Resolver: o.Resolver,
		Epoch: o.Epoch, ChecksOnly: true, Check: func(c Check) { checks = append(checks, c) }})
	slices.SortStableFunc(checks, func(a, b Check) int { return a.Line - b.Line })
	return checks, err
}

func (o *Options) report(e Event) {
	if o.Report != nil {
		o.Report(e)
	}
}

// parse reads the Buildfile named by the options; its bytes go into the provenance.
func (o *Options) parse() (*File, []byte, error) {
	name, r := "Buildfile", o.Stdin
	if o.Buildfile == "-" {
		if o.Stdin == nil {
			return nil, nil, errors.New("-f - given but there is no standard input")
		}
	} else {
		path, err := FindBuildfile(o.ContextDir, o.Buildfile)
		if err != nil {
			return nil, nil, err
		}
		o.Buildfile = path
		fh, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("the Buildfile %s was not found: check -f", path)
		}
		if err != nil {
			return nil, nil, err
		}
		defer fh.Close()
		name, r = filepath.Base(path), fh
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBuildfileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxBuildfileSize {
		return nil, nil, fmt.Errorf("%s is larger than %d MiB: is -f naming the right file?", name, maxBuildfileSize>>20)
	}
	f, err := Parse(name, bytes.NewReader(data))
	return f, data, err
}

// maxBuildfileSize bounds what a build reads as its Buildfile.
const maxBuildfileSize = 16 << 20

// stageSet resolves stage names or indexes (--no-cache-filter) to stage indexes.
func stageSet(f *File, names []string) (map[int]bool, error) {
	p := &planner{f: f}
	out := map[int]bool{}
	for _, n := range names {
		i, ok := p.stageByName(n)
		if !ok {
			return nil, fmt.Errorf("--no-cache-filter: no stage %q in %s", n, f.Name)
		}
		out[i] = true
	}
	return out, nil
}
