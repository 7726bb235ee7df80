package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/build"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/registry"
	"github.com/kiln-build/kiln/runtime"
)

type buildOptions struct {
	file         string
	tags         []string
	buildArgs    []string
	labels       []string
	target       string
	noCache      bool
	quiet        bool
	iidfile      string
	progress     string
	jobs         int
	compression  string
	output       string
	metadata     string
	explain      bool
	secrets      []string
	pull         string
	push         bool
	reproducible bool
	noCacheFor   []string
	level        int
	cacheFrom    []string
	cacheTo      string
	provenance   string
	sbom         string
	check        bool
	run          buildRunFlags // --network, --add-host, --ulimit, --shm-size, --ssh
}

func newBuildCmd(g *globalOptions) *cobra.Command {
	o := &buildOptions{}
	c := &cobra.Command{
		Use:   "build [flags] CONTEXT|-|GIT-URL",
		Short: "Build an image from a Buildfile",
		Long: "Build an image from a Buildfile (Dockerfile syntax). Without -f, kiln looks for Buildfile,\n" +
			"Dockerfile, then Containerfile in CONTEXT. Unchanged steps are reused from the cache.\n" +
			"CONTEXT - reads a tar (plain or compressed) or a lone Buildfile from standard input; a git URL\n" +
			"(https://host/repo.git#ref:subdir, git@host:repo.git, ssh://…) is cloned; -f then names a file inside.",
		Example: "  kiln build -t hello examples/hello\n  kiln build -f - -t app . < Buildfile\n" +
			"  tar -C app -c . | kiln build -t app -\n  kiln build -t app https://example.com/app.git#v1.2:src",
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, o, args[0])
		},
	}
	f := c.Flags()
	f.StringVarP(&o.file, "file", "f", "", "Buildfile path, or - for standard input (default CONTEXT/Buildfile)")
	f.StringArrayVarP(&o.tags, "tag", "t", nil, "name the image (repeatable)")
	f.StringArrayVar(&o.buildArgs, "build-arg", nil, "set a build argument KEY=VALUE (KEY alone takes it from the environment)")
	f.StringArrayVar(&o.labels, "label", nil, "add a label KEY=VALUE to the image")
	f.StringVar(&o.target, "target", "", "build this stage (name or index) instead of the last one")
	f.BoolVar(&o.noCache, "no-cache", false, "run every step even when the cache has its result")
	f.StringSliceVar(&o.noCacheFor, "no-cache-filter", nil, "run every step of these stages (names or indexes) even when cached")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only the image ID")
	f.StringVar(&o.iidfile, "iidfile", "", "write the image ID to this file")
	f.StringVar(&o.progress, "progress", "auto", "progress output: auto, plain, tty, json or quiet")
	f.IntVar(&o.jobs, "jobs", 4*goruntime.NumCPU(), "steps run at the same time (packing layers is bounded by the CPUs separately)")
	f.StringVar(&o.compression, "compression", "gzip", "layer compression: gzip, zstd, estargz or uncompressed")
	f.IntVar(&o.level, "compression-level", 0, "compression level (gzip 1-9, zstd 1-22; 0 = kiln's fast default)")
	f.StringVarP(&o.output, "output", "o", "", "also export the result: type=local,dest=DIR | type=tar|oci|docker,dest=FILE (- for stdout) | DIR")
	f.StringArrayVar(&o.secrets, "secret", nil, "expose a secret to RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR")
	f.StringVar(&o.pull, "pull", "missing", "base images: missing (pull when not in the store), always (check the registry) or never")
	f.Lookup("pull").NoOptDefVal = "always" // bare --pull means always, as docker
	f.BoolVar(&o.reproducible, "check-reproducible", false, "build twice from scratch with SOURCE_DATE_EPOCH (default: the context's last git commit time) and fail, naming the files, if the images differ")
	f.StringArrayVar(&o.cacheFrom, "cache-from", nil, "import build cache (repeatable; the first to have a step wins): type=registry,ref=REG/NAME:TAG (or just the ref; also an image pushed with an inline cache) or type=local,src=DIR")
	f.StringVar(&o.cacheTo, "cache-to", "", "export this build's cache: type=registry,ref=REG/NAME:TAG, type=local,dest=DIR or type=inline; options mode=min|max, compression=gzip|zstd, ignore-error=true")
	f.BoolVar(&o.push, "push", false, "push every -t name to its registry after the build")
	f.BoolVar(&o.check, "check", false, "run only the build checks (BuildKit's rules) and exit 1 if any fails; nothing is built, pulled or stored")
	f.BoolVar(&o.explain, "explain", false, "say why each step that runs missed the cache (which file, variable or parent changed)")
	f.StringVar(&o.provenance, "provenance", "", "attach SLSA provenance: true, false or mode=min|max (default mode=min with --push or --output)")
	f.StringVar(&o.sbom, "sbom", "false", "attach an SPDX 2.3 SBOM of the image's packages (dpkg, apk, Go, Python, npm): true or false")
	o.run.bind(f)
	platformFlag(c)
	f.StringVar(&o.metadata, "metadata-file", "", "write the image digest, config digest and names to this JSON file")
	return c
}

func runBuild(cmd *cobra.Command, g *globalOptions, o *buildOptions, contextDir string) error {
	if o.check {
		return runChecks(cmd, g, o, contextDir)
	}
	mode, err := parseProgress(o.progress)
	if err != nil {
		return err
	}
	if o.quiet {
		mode = progressQuiet
	}
	po, out, policy, err := o.pipelineOptions(contextDir)
	if err != nil {
		return err
	}
	s, err := g.openStore()
	if err != nil {
		return err
	}
	defer s.Close()
	notes := noteWriter(mode, cmd.ErrOrStderr())
	if err := g.wireBuild(cmd, &po, s, policy, notes); err != nil {
		return err
	}
	checks := &checkCollector{seen: map[string]bool{}}
	po.Report = checks.wrap(newReporter(mode, cmd.ErrOrStderr()))
	if out.typ != "image" {
		po.Export = func(ctx context.Context, img *build.Image, tags []cache.Name) error {
			return out.write(ctx, s, img, tags)
		}
	}
	start := time.Now()
	img, err := build.Pipeline(cmd.Context(), po)
	if mode != progressJSON && mode != progressQuiet {
		checkSummary(notes, checks.checks)
	}
	if err != nil && mode == progressJSON { // the error is a JSON line too; the exit code stays 1
		_ = json.NewEncoder(cmd.ErrOrStderr()).Encode(eventJSON{Time: time.Now(), Kind: "error", Error: err.Error()})
		return exitCodeError{code: 1}
	}
	if err != nil {
		return err
	}
	if err := o.report(cmd, notes, img, po.Tags, mode == progressQuiet, start); err != nil {
		return err
	}
	po.Report(build.Event{Kind: build.EventCacheSummary, Time: time.Now(), Cache: &img.Cache}) // the last line
	return nil
}

// runChecks is `kiln build --check`: BuildKit's build checks alone, printed as docker
// prints them, exit 1 when any fails. Base images missing from the store are read from
// their registry (manifest and config) and not stored.
func runChecks(cmd *cobra.Command, g *globalOptions, o *buildOptions, contextDir string) error {
	opts, err := o.buildOptions(contextDir)
	if err != nil {
		return err
	}
	policy, err := registry.ParsePullPolicy(o.pull)
	if err != nil {
		return usageError{err}
	}
	s, err := g.openStore()
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := g.resolver(s, policy, nil, registry.WithoutStore())
	if err != nil {
		return err
	}
	opts.Resolver, opts.Stdin = res, cmd.InOrStdin()
	checks, err := build.RunChecks(cmd.Context(), opts)
	w := cmd.OutOrStdout()
	switch {
	case err != nil:
		if len(checks) > 0 {
			printChecks(w, checks)
		}
		return err
	case len(checks) == 0:
		fmt.Fprintln(w, "Check complete, no warnings found.")
		return nil
	}
	printChecks(w, checks)
	return exitCodeError{code: 1}
}

// pipelineOptions turns flags into the pipeline's options, failing on malformed input
// before any work.
func (o *buildOptions) pipelineOptions(contextDir string) (build.PipelineOptions, output, registry.PullPolicy, error) {
	opts, err := o.buildOptions(contextDir)
	po := build.PipelineOptions{Options: opts, EStargz: o.compression == "estargz", Push: o.push, Reproducible: o.reproducible}
	if err != nil {
		return po, output{}, 0, err
	}
	out, err := parseOutput(o.output)
	if err != nil {
		return po, out, 0, usageError{err}
	}
	policy, err := registry.ParsePullPolicy(o.pull)
	if err != nil {
		return po, out, 0, usageError{err}
	}
	if o.push && len(opts.Tags) == 0 {
		return po, out, 0, usageError{fmt.Errorf("--push needs at least one -t REGISTRY/NAME:TAG")}
	}
	for _, v := range o.cacheFrom {
		if _, err := registry.ParseCacheSpec(v, false); err != nil {
			return po, out, 0, usageError{err}
		}
	}
	if o.cacheTo != "" {
		if _, err := registry.ParseCacheSpec(o.cacheTo, true); err != nil {
			return po, out, 0, usageError{err}
		}
	}
	po.CacheFrom, po.CacheTo = o.cacheFrom, o.cacheTo
	if o.provenance != "" {
		if po.Provenance.Mode, po.Provenance.BuilderID, err = build.ParseProvenance(o.provenance); err != nil {
			return po, out, 0, usageError{err}
		}
	}
	po.Provenance.Version = version
	switch strings.ToLower(o.sbom) {
	case "true", "1":
		sb := build.SBOM{Epoch: po.Epoch, Version: version}
		if len(po.Tags) > 0 {
			sb.Name = po.Tags[0].String()
		}
		po.Attestors = append(po.Attestors, sb)
	case "false", "0", "":
	default:
		return po, out, 0, usageError{fmt.Errorf("--sbom %q: use true or false (kiln scans with its own SBOM generator; generator= images are BuildKit's)", o.sbom)}
	}
	return po, out, policy, nil
}

// wireBuild plugs the store, the registry, the runtime and the terminal into a pipeline;
// notes takes their messages.
func (g *globalOptions) wireBuild(cmd *cobra.Command, po *build.PipelineOptions, s *cache.Store, policy registry.PullPolicy, notes io.Writer) error {
	res, err := g.resolver(s, policy, notes)
	if err != nil {
		return err
	}
	rt, err := g.containerRuntime(cmd)
	if err != nil {
		return err
	}
	if rt.Isolation() != runtime.IsolationOCI { // a weaker rung says so up front
		fmt.Fprintf(notes, "isolation: %s\n", rt.Describe())
	}
	runner := build.RuntimeRunner{Runtime: rt}
	if rt.Isolation() == runtime.IsolationRootless {
		runner.UserMode = userModeNetwork(notes, "each rootless RUN step on the default network")
	}
	po.Store, po.Stdin, po.Resolver, po.Runner = s, cmd.InOrStdin(), res, runner
	po.LogDir, po.Notes = s.Logs(), notes
	po.Registry = buildRegistry{g: g, s: s, progress: notes}
	po.Cleanup = func(ctx context.Context) {
		// Containers of killed kiln runs would hold mounts and cgroups forever: collect them first.
		if err := rt.Cleanup(ctx); err != nil && g.debug {
			fmt.Fprintf(notes, "cleanup of earlier runs: %v\n", err)
		}
	}
	return nil
}

// report writes --metadata-file and --iidfile and says what was built.
func (o *buildOptions) report(cmd *cobra.Command, notes io.Writer, img *build.Image, tags []cache.Name, quiet bool, start time.Time) error {
	if o.metadata != "" {
		if err := writeMetadata(o.metadata, img, tags); err != nil {
			return fmt.Errorf("write --metadata-file: %w", err)
		}
	}
	if o.iidfile != "" {
		if err := atomicfile.Write(o.iidfile, []byte(img.ID.String()), atomicfile.Options{Perm: 0o600}); err != nil {
			return fmt.Errorf("write --iidfile: %w", err)
		}
	}
	if quiet {
		fmt.Fprintln(cmd.OutOrStdout(), img.ID)
		return nil
	}
	fmt.Fprintf(notes, "writing image %s (manifest %s) in %.2fs\n", img.ID, img.Manifest.Digest, time.Since(start).Seconds())
	for _, t := range tags {
		fmt.Fprintf(notes, "naming to %s\n", t.Short())
	}
	return nil
}

// buildOptions turns flags into build.Options, failing on malformed input before any work.
func (o *buildOptions) buildOptions(contextDir string) (build.Options, error) {
	opts := build.Options{Buildfile: o.file, ContextDir: contextDir, Target: o.target, NoCache: o.noCache, Jobs: o.jobs,
		Explain: o.explain, NoCacheFor: o.noCacheFor}
	for _, t := range o.tags {
		n, err := cache.ParseName(t)
		if err != nil {
			return opts, usageError{fmt.Errorf("invalid tag %q: %w", t, err)}
		}
		opts.Tags = append(opts.Tags, n)
	}
	var err error
	if opts.BuildArgs, err = parseKeyValues(o.buildArgs, true); err != nil {
		return opts, usageError{fmt.Errorf("--build-arg: %w", err)}
	}
	if opts.Labels, err = parseKeyValues(o.labels, false); err != nil {
		return opts, usageError{fmt.Errorf("--label: %w", err)}
	}
	if opts.Secrets, err = readSecrets(o.secrets); err != nil {
		return opts, usageError{err}
	}
	if err := o.run.apply(&opts); err != nil {
		return opts, usageError{err}
	}
	if o.compression != "estargz" { // estargz re-encodes the finished gzip image: see finishEncoding
		if opts.Compression, err = layer.ParseCompression(o.compression); err != nil {
			return opts, usageError{err}
		}
	}
	opts.CompressionLevel = o.level
	if opts.Epoch, err = sourceDateEpoch(); err != nil {
		return opts, err
	}
	if o.file != "" && o.file != "-" && !build.IsRemoteContext(contextDir) { // else -f names a file in the context
		if opts.Buildfile, err = filepath.Abs(o.file); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// parseKeyValues parses KEY=VALUE pairs; with fromEnv, a bare KEY takes its value from the environment.
func parseKeyValues(pairs []string, fromEnv bool) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if k == "" {
			return nil, fmt.Errorf("%q: expected KEY=VALUE", p)
		}
		if !ok {
			if !fromEnv {
				return nil, fmt.Errorf("%q: expected KEY=VALUE", p)
			}
			if v, ok = os.LookupEnv(k); !ok {
				continue // docker ignores a bare KEY that is not in the environment
			}
		}
		out[k] = v
	}
	return out, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (seconds since 1970) for reproducible builds.
func sourceDateEpoch() (*time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("invalid SOURCE_DATE_EPOCH=%q: use seconds since 1970-01-01", v)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// readSecrets reads --secret id=ID,src=FILE|env=VAR values (BuildKit's syntax; a bare id
// takes the environment variable of the same name).
func readSecrets(flags []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range flags {
		var id, src, env string
		for _, kv := range strings.Split(f, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "env":
				env = v
			case "type":
				if v != "file" && v != "env" {
					return nil, fmt.Errorf("--secret %q: type must be file or env", f)
				}
			default:
				return nil, fmt.Errorf("--secret %q: unknown key %q (use id=, src= or env=)", f, k)
			}
		}
		if id == "" {
			return nil, fmt.Errorf("--secret %q: id= is required", f)
		}
		switch {
		case src != "":
			b, err := os.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("--secret id=%s: %w", id, err)
			}
			out[id] = b
		default:
			if env == "" {
				env = id
			}
			v, ok := os.LookupEnv(env)
			if !ok {
				return nil, fmt.Errorf("--secret id=%s: environment variable %s is not set", id, env)
			}
			out[id] = []byte(v)
		}
	}
	return out, nil
}
