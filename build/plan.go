package build

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Resolver gives the build its base images; the caller decides where they come from
// (the local store, a registry pull, a mirror).
type Resolver interface {
	Resolve(ctx context.Context, ref string) (v1.Image, error)
}

// PlanOptions are the inputs of planning besides the Buildfile.
type PlanOptions struct {
	Target      string            // stage name or index; "" = the last stage
	BuildArgs   map[string]string // --build-arg
	Labels      map[string]string // --label, applied to the target stage's config
	Context     *Context          // the build context; nil means COPY from the context fails
	Resolver    Resolver          // base images; nil means only FROM scratch works
	Epoch       *time.Time        // SOURCE_DATE_EPOCH
	Warn        func(msg string)  // non-fatal problems that are not build checks (unused build args)
	DownloadDir string            // where ADD <url> content is kept until the build ends; "" = os.TempDir()
	Check       func(Check)       // each build-check warning as it is found; nil = not reported
	// ChecksOnly plans for the build checks alone, every stage unless Target is set: no
	// context file is hashed, no URL downloaded, no git source fetched, no cache key computed.
	ChecksOnly bool
	Run        RunDefaults              // every RUN step's network default, hosts and limits
	named      map[string]*namedContext // --build-context, by lower-case name
}

// PlannedStage is a stage after planning: its final image config and the steps that make it.
type PlannedStage struct {
	Index  int
	Name   string
	Config v1.ConfigFile // config after every instruction; RootFS and new History are filled by Solve
	Tip    *Vertex       // the vertex whose result is this stage's filesystem; nil for an empty scratch stage
	Steps  []Step        // one per instruction that writes history
	Args   kvList        // build args in scope at the end of the stage
	Base   *PlannedStage // the stage this one is built FROM, if any
	shell  []string

	// For the build checks, inherited by stages built FROM this one, as in BuildKit.
	workdirSet bool     // a WORKDIR of this Buildfile set the working directory
	declared   []string // ARG names declared, with or without a value
}

// Step is one history entry of a stage; Vertex is nil for metadata-only instructions.
type Step struct {
	CreatedBy string
	Vertex    *Vertex
}

type planner struct {
	f        *File
	opts     PlanOptions
	graph    *Graph
	planned  map[int]*PlannedStage
	active   map[int]bool
	byKey    map[string]*Vertex
	metaArgs kvList
	usedArgs map[string]bool
	checks   *checker
}

// Plan expands the stages reachable from the target into a graph of vertices with cache keys,
// running the build checks on the way. It resolves base images and hashes COPY sources, but
// writes nothing. With the checks' error=true, a check found fails it.
func Plan(ctx context.Context, f *File, opts PlanOptions) (*Graph, error) {
	p := &planner{f: f, opts: opts, graph: &Graph{File: f.Name}, planned: map[int]*PlannedStage{},
		active: map[int]bool{}, byKey: map[string]*Vertex{}, usedArgs: map[string]bool{}}
	var err error
	if p.checks, err = newChecker(f, opts.BuildArgs, opts.Check); err != nil {
		return nil, err
	}
	p.usedArgs[CheckArg] = true
	lex := shell.NewLex(f.EscapeToken)
	p.checks.checkFile(f, lex)
	if err := p.resolveMetaArgs(); err != nil {
		return nil, err
	}
	for i := range f.Stages {
		p.checks.checkFrom(f, &f.Stages[i], lex, p.metaArgs)
	}
	target, err := p.targetIndex()
	if err != nil {
		return nil, err
	}
	ts, err := p.stage(ctx, target)
	if err != nil {
		return nil, err
	}
	if opts.ChecksOnly && opts.Target == "" { // docker's --check without --target checks every stage
		for i := range f.Stages {
			if _, err := p.stage(ctx, i); err != nil {
				return nil, err
			}
		}
	}
	p.graph.Target, p.graph.Checks = ts, p.checks.checks
	for k, v := range opts.Labels {
		if ts.Config.Config.Labels == nil {
			ts.Config.Config.Labels = map[string]string{}
		}
		ts.Config.Config.Labels[k] = v
	}
	if unused := unusedArgs(opts.BuildArgs, p.usedArgs); len(unused) > 0 {
		p.warn(fmt.Sprintf("one or more build args were not consumed: %s", strings.Join(unused, ", ")))
	}
	if err := p.checks.err(); err != nil && !opts.ChecksOnly { // --check fails on any check anyway
		return nil, err
	}
	return p.graph, nil
}

func (p *planner) warn(msg string) {
	if p.opts.Warn != nil {
		p.opts.Warn(msg)
	}
}

// resolveMetaArgs evaluates the ARGs before the first FROM: defaults, then --build-arg.
func (p *planner) resolveMetaArgs() error {
	for k, v := range platformArgs() {
		p.metaArgs = p.metaArgs.set(k, v)
	}
	lex := shell.NewLex(p.f.EscapeToken)
	for _, a := range p.f.MetaArgs {
		for _, kv := range a.Args {
			val, ok := p.opts.BuildArgs[kv.Key]
			if ok {
				p.usedArgs[kv.Key] = true
			} else if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, p.metaArgs)
				if err != nil {
					return errAt(p.f.Name, lineOf(a.Location()), "ARG", err)
				}
				val, ok = v, true
			}
			if ok {
				p.metaArgs = p.metaArgs.set(kv.Key, val)
			}
		}
	}
	return nil
}

func (p *planner) targetIndex() (int, error) {
	if p.opts.Target == "" {
		return len(p.f.Stages) - 1, nil
	}
	if i, ok := p.stageByName(p.opts.Target); ok {
		return i, nil
	}
	var names []string
	for _, s := range p.f.Stages {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	return 0, fmt.Errorf("target stage %q not found in %s (stages: %s)", p.opts.Target, p.f.Name, strings.Join(names, ", "))
}

// stageByName finds a stage by AS name (case-insensitive) or by index.
func (p *planner) stageByName(name string) (int, bool) {
	for i, s := range p.f.Stages {
		if s.Name != "" && strings.EqualFold(s.Name, name) {
			return i, true
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < len(p.f.Stages) {
		return i, true
	}
	return 0, false
}

// stage plans stage i once, planning the stages it depends on first.
func (p *planner) stage(ctx context.Context, i int) (*PlannedStage, error) {
	if ps, ok := p.planned[i]; ok {
		return ps, nil
	}
	st := &p.f.Stages[i]
	if p.active[i] {
		return nil, errAt(p.f.Name, st.Line, "FROM", fmt.Errorf("stage %q depends on itself", stageLabel(st)))
	}
	p.active[i] = true
	defer delete(p.active, i)
	sb := &stageBuilder{p: p, st: st, lex: shell.NewLex(p.f.EscapeToken)}
	ps, err := sb.plan(ctx)
	if err != nil {
		return nil, err
	}
	p.planned[i] = ps
	p.graph.Stages = append(p.graph.Stages, ps)
	return ps, nil
}

// add puts v into the graph, or returns the identical vertex planned before (same key),
// so identical steps in different stages are solved once.
func (p *planner) add(ctx context.Context, v *Vertex) *Vertex {
	if p.opts.ChecksOnly {
		p.graph.Vertices = append(p.graph.Vertices, v)
		return v
	}
	v.computeKey(ctx)
	if old, ok := p.byKey[v.Key]; ok {
		return old
	}
	p.byKey[v.Key] = v
	p.graph.Vertices = append(p.graph.Vertices, v)
	return v
}

func stageLabel(st *Stage) string {
	if st.Name != "" {
		return st.Name
	}
	return strconv.Itoa(st.Index)
}

func lineOf(loc []parserRange) int {
	if len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

var errNoResolver = errors.New("no image resolver configured")
