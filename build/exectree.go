package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
)

// TreeRunner is a Runner that runs RUN steps in place in a plain directory tree (the chroot
// rung, where nothing can be mounted): RunRequest.Rootfs instead of an overlay, and the
// build diffs the tree itself (layer.IndexTree, layer.DiffTree).
type TreeRunner interface {
	Runner
	InTree() bool
	// PrepareTree places into a tree what the runner's steps get from mounts elsewhere (device
	// nodes, /etc files); those paths stay out of the step's layer, and restore takes them out.
	PrepareTree(rootfs string) (paths []string, restore func() error, err error)
}

// maxTrees bounds the materialized trees a build keeps for reuse (one per stage in flight).
const maxTrees = 4

// treeCache holds a build's materialized rootfs trees between RUN steps: a step takes the tree
// of its chain's longest cached prefix (applying the layers it lacks, say a COPY's) and gives
// it back holding its own chain, so a stage's tree is unpacked once, not once per step.
type treeCache struct {
	store *cache.Store
	mu    sync.Mutex
	trees []rootTree // least recently returned first
}

type rootTree struct {
	chain []string // diff IDs of the layers the tree holds, bottom first
	dir   string   // the tree's own temp dir; the rootfs is dir/rootfs
}

func newTreeCache(store *cache.Store) *treeCache { return &treeCache{store: store} }

func (t rootTree) rootfs() string { return filepath.Join(t.dir, "rootfs") }

func chainOf(layers []layerRef) []string {
	ids := make([]string, len(layers))
	for i, l := range layers {
		ids[i] = l.diffID.Hex
	}
	return ids
}

// take returns a tree holding layers for the caller alone, reusing a cached one when its chain
// is a prefix of layers.
func (c *treeCache) take(ctx context.Context, layers []layerRef) (rootTree, error) {
	want := chainOf(layers)
	c.mu.Lock()
	best := -1
	for i, t := range c.trees {
		if isPrefix(t.chain, want) && (best < 0 || len(t.chain) > len(c.trees[best].chain)) {
			best = i
		}
	}
	var t rootTree
	if best >= 0 {
		t = c.trees[best]
		c.trees = append(c.trees[:best], c.trees[best+1:]...)
	}
	c.mu.Unlock()
	if best < 0 {
		dir, err := c.store.TempDir("tree-")
		if err != nil {
			return rootTree{}, err
		}
		t = rootTree{dir: dir}
		if err := os.Mkdir(t.rootfs(), 0o755); err != nil {
			os.RemoveAll(dir)
			return rootTree{}, err
		}
	}
	for _, l := range layers[len(t.chain):] {
		if err := applyToTree(ctx, l, t.rootfs()); err != nil {
			os.RemoveAll(t.dir)
			return rootTree{}, err
		}
		t.chain = append(t.chain, l.diffID.Hex)
	}
	return t, nil
}

func applyToTree(ctx context.Context, l layerRef, dir string) error {
	rc, err := layer.OpenUncompressed(l.open)
	if err != nil {
		return fmt.Errorf("materialize layer %s: %w", l.diffID, err)
	}
	defer rc.Close()
	if _, err := layer.Apply(ctx, rc, dir, layer.ApplyOptions{Whiteouts: layer.DeleteWhiteouts}); err != nil {
		return fmt.Errorf("materialize layer %s: %w", l.diffID, err)
	}
	return nil
}

// give returns t, now holding layers, for later steps; the oldest tree goes past maxTrees.
func (c *treeCache) give(t rootTree, layers []layerRef) {
	t.chain = chainOf(layers)
	c.mu.Lock()
	c.trees = append(c.trees, t)
	var evict []rootTree
	if len(c.trees) > maxTrees {
		evict = append(evict, c.trees[0])
		c.trees = c.trees[1:]
	}
	c.mu.Unlock()
	for _, e := range evict {
		os.RemoveAll(e.dir)
	}
}

// close removes every tree (the build is over).
func (c *treeCache) close() {
	c.mu.Lock()
	trees := c.trees
	c.trees = nil
	c.mu.Unlock()
	for _, t := range trees {
		os.RemoveAll(t.dir)
	}
}

func isPrefix(prefix, chain []string) bool {
	return len(prefix) <= len(chain) && strings.Join(prefix, ",") == strings.Join(chain[:len(prefix)], ",")
}

// execInTree runs a RUN step in place in a materialized tree of its parent chain and makes its
// layer by diffing the tree against an index taken just before.
func (op *execOp) execInTree(ctx context.Context, e *env, in inputs, out *logWriter, req RunRequest) (*vresult, error) {
	t, err := e.trees.take(ctx, in.parent.layers)
	if err != nil {
		return nil, err
	}
	p, err := op.runInTree(ctx, e, t.rootfs(), out, req)
	if err != nil {
		os.RemoveAll(t.dir)
		return nil, err
	}
	res := e.layerResult(in.parent, p)
	e.trees.give(t, res.layers)
	return res, nil
}

// runInTree prepares the tree, indexes it, runs the step and packs what it changed.
func (op *execOp) runInTree(ctx context.Context, e *env, rootfs string, out *logWriter, req RunRequest) (*layer.Packed, error) {
	tr := e.opts.Runner.(TreeRunner)
	paths, restore, err := tr.PrepareTree(rootfs)
	if err != nil {
		return nil, err
	}
	idx, err := layer.IndexTree(ctx, rootfs, paths...)
	if err != nil {
		return nil, errors.Join(err, restore())
	}
	req.Rootfs = rootfs
	if err := tr.Run(ctx, req); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w%s", strings.Join(op.args, " "), err, out.tail()), restore())
	}
	p, err := e.pack(ctx, func(w *layer.Writer) error { return layer.DiffTree(ctx, idx, w) })
	if err != nil {
		return nil, errors.Join(err, restore())
	}
	return p, restore()
}
