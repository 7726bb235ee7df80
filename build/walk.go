package build

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime"
	"sync"
)

// walkNode is one listed directory: its entries in sorted order, and below each
// subdirectory entry the node that lists it.
type walkNode struct {
	entries []fileEntry
	subs    []*walkNode // subs[i] lists entries[i] when it is a directory; nil when none is
	err     error
}

type walkTask struct {
	n        *walkNode
	dir, rel string
}

// treeWalk lists a tree's directories on a few goroutines: listing is system-call bound
// (a getdents and an fstatat per entry), and on a 20,000-file context it was most of a
// no-op rebuild.
type treeWalk struct {
	s   *selector
	ctx context.Context

	mu      sync.Mutex
	cond    sync.Cond
	queue   []walkTask
	pending int // tasks queued or being listed
}

// walk lists dir's contents in sorted order (each directory followed by its contents),
// skipping hidden paths; links are listed as links, never followed. The order and the
// entries are those of a sequential depth-first walk, whatever the goroutines' timing.
func (s *selector) walk(ctx context.Context, dir, rel string, out *[]fileEntry) error {
	root := &walkNode{}
	w := &treeWalk{s: s, ctx: ctx, queue: []walkTask{{n: root, dir: dir, rel: rel}}, pending: 1}
	w.cond.L = &w.mu
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) - 1 {
		wg.Go(w.run)
	}
	w.run()
	wg.Wait()
	if err := root.firstErr(); err != nil {
		return err
	}
	n := len(*out) + root.count()
	if cap(*out) < n {
		grown := make([]fileEntry, len(*out), n)
		copy(grown, *out)
		*out = grown
	}
	root.flatten(out)
	return nil
}

// run lists queued directories until none is left and none is being listed.
func (w *treeWalk) run() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.queue) == 0 && w.pending > 0 {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			return
		}
		t := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		w.mu.Unlock()
		// A failure does not stop the others: one listed earlier in walk order may fail
		// too, and that is the one to report, as a sequential walk would (a cancelled ctx
		// still ends every listing at once).
		subs := w.list(t)
		w.mu.Lock()
		w.queue = append(w.queue, subs...)
		w.pending += len(subs) - 1
		w.cond.Broadcast()
	}
}

// list reads one directory into its node and returns its subdirectories to list.
func (w *treeWalk) list(t walkTask) []walkTask {
	s := w.s
	if t.n.err = w.ctx.Err(); t.n.err != nil {
		return nil
	}
	des, err := s.fsys.ReadDir(t.dir)
	if err != nil {
		t.n.err = fmt.Errorf("read %s: %w", path.Join(s.host, t.dir), err)
		return nil
	}
	t.n.entries = make([]fileEntry, 0, len(des))
	var subs []walkTask
	same := t.dir == t.rel || t.dir == "." && t.rel == "" // walking the tree from its root
	for _, de := range des {
		child, childRel := joinRel(t.dir, de.Name()), ""
		if childRel = child; !same {
			childRel = joinRel(t.rel, de.Name())
		}
		// An ignored directory still exists, with its own metadata, as the parent of what
		// "!" patterns re-include in it (BuildKit sends it so).
		if s.hidden != nil && s.hidden(child, de.IsDir()) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			t.n.err = err
			return nil
		}
		e, err := s.entry(childRel, child, fi)
		if errors.Is(err, errSkipEntry) {
			continue
		}
		if err != nil {
			t.n.err = err
			return nil
		}
		t.n.entries = append(t.n.entries, e)
		if de.IsDir() {
			if t.n.subs == nil {
				t.n.subs = make([]*walkNode, len(des))
			}
			sub := &walkNode{}
			t.n.subs[len(t.n.entries)-1] = sub
			subs = append(subs, walkTask{n: sub, dir: child, rel: childRel})
		}
	}
	// Pushed in reverse, so the stack lists the first subdirectory next.
	for i, j := 0, len(subs)-1; i < j; i, j = i+1, j-1 {
		subs[i], subs[j] = subs[j], subs[i]
	}
	return subs
}

// joinRel is path.Join for a clean slash directory and one entry name, without Clean's
// allocation per entry.
func joinRel(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// firstErr is the first failure in walk order.
func (n *walkNode) firstErr() error {
	if n.err != nil {
		return n.err
	}
	for _, sub := range n.subs {
		if sub == nil {
			continue
		}
		if err := sub.firstErr(); err != nil {
			return err
		}
	}
	return nil
}

func (n *walkNode) count() int {
	c := len(n.entries)
	for _, sub := range n.subs {
		if sub != nil {
			c += sub.count()
		}
	}
	return c
}

func (n *walkNode) flatten(out *[]fileEntry) {
	for i := range n.entries {
		*out = append(*out, n.entries[i])
		if i < len(n.subs) && n.subs[i] != nil {
			n.subs[i].flatten(out)
		}
	}
}
