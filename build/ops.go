package build

import (
	"context"

	"golang.org/x/sync/semaphore"

	"github.com/kiln-build/kiln/cache/layer"
)

// op is the work of one vertex. Each kind (source, copy, mkdir, exec) owns its cache key and
// its execution, in the spirit of BuildKit's solver.Op; the solver only schedules ops.
type op interface {
	// cacheKey returns the op's kind and own key inputs, given the keys of the vertex's Deps
	// in order; the vertex key adds the parent's.
	cacheKey(ctx context.Context, deps []string) opKey
	// exec makes the vertex's filesystem from its inputs' results.
	exec(ctx context.Context, e *env, in inputs) (*vresult, error)
}

// preflight is implemented by ops that can tell before anything runs that they cannot run.
type preflight interface {
	check(opts *SolveOptions) error
}

// opKey is an op's part of its vertex's cache key, kept for --explain.
type opKey struct {
	kind       OpKind
	inputs     []KeyInput
	files      func() map[string]string // per-file digests behind a "context" input, so --explain can name files
	parentFree bool                     // the key leaves the parent out (COPY --link), so the layer survives a new base
	uncached   bool                     // the result is neither looked up nor recorded (a base image's layers)
}

// inputs are the results an op starts from: the filesystem it changes (empty for scratch)
// and those it reads (Vertex.Deps, in order).
type inputs struct {
	parent *vresult
	deps   []*vresult
}

// env is what an op may use while it executes: the store, the runner, secrets and the
// context (in opts), one memoized filesystem view per layer chain, CPU slots for packing,
// and progress events for its own vertex.
type env struct {
	opts  SolveOptions
	views *viewCache
	hides *hideCache
	trees *treeCache
	cpu   *semaphore.Weighted
	rep   func(Event)
	v     *Vertex
	index int
}

func (e *env) report(ev Event) {
	ev.Index, ev.Name = e.index, e.v.Name
	e.rep(ev)
}

// view is the merged metadata of layers, read at most once per chain and build.
func (e *env) view(ctx context.Context, layers []layerRef) (*fsView, error) {
	return e.views.get(ctx, layers)
}

// layerResult is parent with one more layer on top, when p made one.
func (e *env) layerResult(parent *vresult, p *layer.Packed) *vresult {
	res := &vresult{layers: parent.layers}
	if p != nil && !p.Empty {
		res.layers = append(append([]layerRef(nil), parent.layers...), e.storedLayer(p))
		res.added = true
	}
	return res
}

// packLayer writes the layer that fill makes and returns parent with it on top.
func (e *env) packLayer(ctx context.Context, parent *vresult, fill func(*layer.Writer) error) (*vresult, error) {
	p, err := e.pack(ctx, fill)
	if err != nil {
		return nil, err
	}
	return e.layerResult(parent, p), nil
}
