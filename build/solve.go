package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
)

// SolveOptions are the inputs of solving besides the graph.
type SolveOptions struct {
	Store       *cache.Store
	Compression layer.Compression   // encoding of new layers
	Level       int                 // compression level; 0 = default
	NoCache     bool                // run every step even when the cache has it
	NoCacheIn   map[int]bool        // run every step of these stages (by index) even when cached
	Jobs        int                 // steps executed at once; <= 0 means 1
	Epoch       *time.Time          // SOURCE_DATE_EPOCH: clamps file mtimes and image timestamps
	Runner      Runner              // executes RUN steps; nil makes a graph with RUN fail before anything runs
	Report      Reporter            // progress; may be nil
	LogDir      string              // where each RUN step's whole output is kept as <cache key>.log; "" keeps none
	Secrets     map[string][]byte   // RUN --mount=type=secret values by id; never stored or logged
	SSH         map[string]sshAgent // RUN --mount=type=ssh agents by id (Options.SSH, opened by Build)
	Annotations map[string]string   // the image manifest's annotations (--annotation)
	Context     *Context            // the build context, for RUN --mount=type=bind sources
	DownloadDir string              // where ADD <url> downloads go; "" = os.TempDir()
	explain     *explainer          // set by Build with Options.Explain: report why steps miss the cache
}

// layerRef is one layer of a filesystem state, bottom first in a chain.
type layerRef struct {
	desc   v1.Descriptor
	diffID v1.Hash
	open   func() (io.ReadCloser, error) // the blob as stored (compressed)
}

// vresult is what solving a vertex produced.
type vresult struct {
	layers  []layerRef    // the whole chain, base first
	added   bool          // this vertex added the last layer of the chain
	created time.Time     // when the vertex's layer was first made (from the cache on a hit)
	took    time.Duration // how long the op ran (recorded with the cache record; read back on a hit)
	source  string        // on a hit: the imported cache the record came from, if any
}

type solver struct {
	opts    SolveOptions
	g       *Graph
	index   map[*Vertex]int
	mu      sync.Mutex
	results map[*Vertex]*vresult
	done    map[*Vertex]chan struct{}
	wanted  map[*Vertex]chan struct{} // closed once the vertex's result is needed (under mu)
	tipDone chan struct{}             // closed when the target is solved: unwanted vertices give up
	jobs    *semaphore.Weighted       // ops executing at once (RUN steps mostly wait on their containers)
	cpu     *semaphore.Weighted       // CPU-heavy work at once (packing layers): one per CPU
	views   *viewCache
	hides   *hideCache
	trees   *treeCache
	repMu   sync.Mutex
	stats   CacheSummary // under mu
}

// Solve executes the vertices of g that the cache cannot answer and writes the target stage's
// image (config and manifest) into the store. It does not tag the image.
func Solve(ctx context.Context, g *Graph, opts SolveOptions) (*Image, error) {
	if opts.Store == nil {
		return nil, errors.New("solve: no store")
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 1
	}
	s := &solver{opts: opts, g: g, index: map[*Vertex]int{}, results: map[*Vertex]*vresult{},
		done: map[*Vertex]chan struct{}{}, wanted: map[*Vertex]chan struct{}{}, tipDone: make(chan struct{}), jobs: semaphore.NewWeighted(int64(opts.Jobs)),
		cpu: semaphore.NewWeighted(int64(goruntime.GOMAXPROCS(0))), views: newViewCache(opts.Store), hides: newHideCache(opts.Store),
		trees: newTreeCache(opts.Store)}
	defer s.hides.close()
	defer s.trees.close()
	for i, v := range g.Vertices {
		s.index[v] = i + 1
		s.done[v] = make(chan struct{})
		s.wanted[v] = make(chan struct{})
		if pf, ok := v.op.(preflight); ok {
			if err := pf.check(&s.opts); err != nil {
				return nil, errAt(g.File, v.Line, v.Instr, err)
			}
		}
	}
	if g.Target.Tip == nil {
		close(s.tipDone)
	}
	s.wantPredicted(g.Target.Tip)
	// One goroutine per vertex waits for its inputs; the semaphore bounds how many work at once.
	eg, ectx := errgroup.WithContext(ctx)
	for _, v := range g.Vertices {
		eg.Go(func() error { return s.run(ectx, v) })
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	img, err := s.assemble(ctx, g.Target)
	if err != nil {
		return nil, err
	}
	// The steps' cache records were written without fsync: one syncfs makes them durable
	// before the caller tags the image (a failed build's reach the disk by writeback).
	if err := opts.Store.Flush(); err != nil {
		return nil, err
	}
	for _, v := range g.Vertices {
		if !v.key.uncached {
			img.Keys = append(img.Keys, v.Key)
		}
	}
	img.Cache = s.stats
	for v := g.Target.Tip; v != nil; v = v.Parent {
		if !v.key.uncached {
			img.FinalKeys = append(img.FinalKeys, v.Key)
		}
	}
	return img, nil
}

func (s *solver) run(ctx context.Context, v *Vertex) error {
	select {
	case <-s.wanted[v]:
	case <-s.tipDone: // no step that runs needs v: a stage only cached steps copy from
		s.unneeded(v)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := s.await(ctx, v.Parent); err != nil {
		return err
	}
	hitRes, cached := s.lookup(v)
	if !cached {
		for _, d := range v.Deps { // predicted a hit, missed after all: its inputs are needed now
			s.want(d)
		}
		for _, d := range v.Deps {
			if err := s.await(ctx, d); err != nil {
				return err
			}
		}
	}
	if err := s.jobs.Acquire(ctx, 1); err != nil {
		return err
	}
	defer s.jobs.Release(1)
	start := time.Now()
	s.report(Event{Kind: EventStarted, Index: s.index[v], Name: v.Name, Time: start})
	res, err := hitRes, error(nil)
	if !cached {
		res, cached, err = s.solveVertex(ctx, v)
	}
	if err != nil {
		s.report(Event{Kind: EventFailed, Index: s.index[v], Name: v.Name, Time: time.Now(), Duration: time.Since(start), Err: err})
		return err
	}
	s.mu.Lock()
	s.results[v] = res
	switch {
	case cached:
		s.stats.Cached++
		s.stats.Saved += res.took
	case !v.key.uncached:
		s.stats.Run++
	}
	s.mu.Unlock()
	close(s.done[v])
	if v == s.g.Target.Tip {
		close(s.tipDone)
	}
	ev := Event{Kind: EventDone, Index: s.index[v], Name: v.Name, Time: time.Now(), Duration: time.Since(start)}
	if cached {
		ev.Kind = EventCached
		if s.opts.explain != nil && res.source != "" {
			ev.Data = []byte("from " + res.source) // several --cache-from: the first to have it won
		}
	}
	s.report(ev)
	return nil
}

// unneeded reports a vertex the target did not need as CACHED when the cache has it (its time
// saved counts), as BuildKit does; one the cache lacks is left out of the progress.
func (s *solver) unneeded(v *Vertex) {
	res, ok := s.lookup(v)
	if !ok {
		return
	}
	s.mu.Lock()
	s.stats.Cached++
	s.stats.Saved += res.took
	s.mu.Unlock()
	now := time.Now()
	s.report(Event{Kind: EventStarted, Index: s.index[v], Name: v.Name, Time: now})
	ev := Event{Kind: EventCached, Index: s.index[v], Name: v.Name, Time: now}
	if s.opts.explain != nil && res.source != "" {
		ev.Data = []byte("from " + res.source)
	}
	s.report(ev)
}

// await waits until v (nil: none) is solved.
func (s *solver) await(ctx context.Context, v *Vertex) error {
	if v == nil {
		return nil
	}
	select {
	case <-s.done[v]:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// want marks v and its parents as needed, so their goroutines solve them.
func (s *solver) want(v *Vertex) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ; v != nil; v = v.Parent {
		select {
		case <-s.wanted[v]:
			return // and its parents with it
		default:
			close(s.wanted[v])
		}
	}
}

// wantPredicted marks what solving the target needs, as the cache stands now: every vertex of
// its chain, and the inputs of those the cache cannot answer (as BuildKit, a builder stage whose
// only dependants are cached is never run). A prediction that fails later wants the inputs then.
func (s *solver) wantPredicted(tip *Vertex) {
	seen := map[*Vertex]bool{}
	var walk func(v *Vertex)
	walk = func(v *Vertex) {
		for ; v != nil && !seen[v]; v = v.Parent {
			seen[v] = true
			s.want(v)
			if _, hit := s.lookup(v); !hit {
				for _, d := range v.Deps {
					walk(d)
				}
			}
		}
	}
	walk(tip)
}

// lookup answers v from the cache when it may be (its parent solved, or nil for a prediction).
func (s *solver) lookup(v *Vertex) (*vresult, bool) {
	if v.key.uncached || s.opts.NoCache || s.opts.NoCacheIn[v.Stage] {
		return nil, false
	}
	parent := s.result(v.Parent)
	if parent == nil {
		parent = &vresult{}
	}
	return s.cached(v, parent)
}

func (s *solver) report(e Event) {
	if s.opts.Report == nil {
		return
	}
	s.repMu.Lock()
	defer s.repMu.Unlock()
	s.opts.Report(e)
}

func (s *solver) result(v *Vertex) *vresult {
	if v == nil {
		return &vresult{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results[v]
}

// env is what v's op may use.
func (s *solver) env(v *Vertex) *env {
	return &env{opts: s.opts, views: s.views, hides: s.hides, trees: s.trees, cpu: s.cpu, rep: s.report, v: v, index: s.index[v]}
}

// solveVertex executes v's op (run found no cache hit), recording the new result in the cache.
func (s *solver) solveVertex(ctx context.Context, v *Vertex) (*vresult, bool, error) {
	in := inputs{parent: s.result(v.Parent)}
	for _, d := range v.Deps {
		in.deps = append(in.deps, s.result(d))
	}
	cacheable := !v.key.uncached && !s.opts.NoCache && !s.opts.NoCacheIn[v.Stage]
	if cacheable {
		if s.opts.explain != nil {
			s.report(Event{Kind: EventExplain, Index: s.index[v], Name: v.Name, Time: time.Now(),
				Data: []byte(s.opts.explain.why(v))})
		}
	}
	began := time.Now()
	res, err := v.op.exec(ctx, s.env(v), in)
	if err != nil {
		return nil, false, errAt(s.g.File, v.Line, v.Instr, err)
	}
	res.took = time.Since(began)
	if v.key.uncached {
		return res, false, nil
	}
	return s.record(v, res)
}

// cached looks v's key up; a record whose layer blob was pruned is a miss.
func (s *solver) cached(v *Vertex, parent *vresult) (*vresult, bool) {
	rec, ok, err := s.opts.Store.CacheGet(v.Key)
	if err != nil || !ok {
		return nil, false
	}
	res := &vresult{layers: parent.layers, created: rec.Created, took: rec.Duration, source: rec.Source}
	if rec.Layer != nil {
		if !s.opts.Store.HasContent(rec.Layer.Digest) {
			return nil, false
		}
		res.layers = append(append([]layerRef(nil), parent.layers...), storedLayer(s.opts.Store, *rec.Layer, rec.DiffID))
		res.added = true
	}
	return res, true
}

func storedLayer(st *cache.Store, desc v1.Descriptor, diffID v1.Hash) layerRef {
	return layerRef{desc: desc, diffID: diffID, open: func() (io.ReadCloser, error) { return st.OpenBlob(desc.Digest) }}
}

// record stores a fresh result in the cache index: the layer it added, if any.
func (s *solver) record(v *Vertex, res *vresult) (*vresult, bool, error) {
	now := time.Now().UTC()
	if s.opts.Epoch != nil {
		now = s.opts.Epoch.UTC()
	}
	rec := cache.CacheRecord{Created: now, Duration: res.took}
	res.created = now
	if res.added {
		top := res.layers[len(res.layers)-1]
		rec.Layer, rec.DiffID = &top.desc, top.diffID
	}
	if err := s.opts.Store.CachePut(v.Key, rec); err != nil {
		return nil, false, fmt.Errorf("record cache for %s: %w", v.Name, err)
	}
	return res, false, nil
}

// pack writes a layer through fill into a new blob; an empty layer stores nothing.
// Compression is the CPU-heavy part of a build, so it holds one of the CPU slots.
func (e *env) pack(ctx context.Context, fill func(*layer.Writer) error) (*layer.Packed, error) {
	if err := e.cpu.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	defer e.cpu.Release(1)
	bw, err := e.opts.Store.NewBlobWriter()
	if err != nil {
		return nil, err
	}
	defer bw.Close()
	p, err := layer.Pack(ctx, bw, e.opts.Compression, e.opts.Level, layer.WriteOptions{SourceDateEpoch: e.opts.Epoch}, fill)
	if err != nil {
		return nil, err
	}
	if p.Empty {
		return &p, nil
	}
	if _, _, err := bw.Commit(p.Digest); err != nil {
		return nil, fmt.Errorf("store layer: %w", err)
	}
	return &p, nil
}

func (e *env) storedLayer(p *layer.Packed) layerRef {
	return storedLayer(e.opts.Store, v1.Descriptor{MediaType: p.MediaType, Digest: p.Digest, Size: p.Size}, p.DiffID)
}

func (s *env) downloadDir() string {
	if s.opts.DownloadDir != "" {
		return s.opts.DownloadDir
	}
	return os.TempDir()
}
