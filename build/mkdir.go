package build

import (
	"context"
	"time"

	"github.com/kiln-build/kiln/cache/layer"
)

// mkdirOp creates a WORKDIR when it does not exist yet.
type mkdirOp struct {
	path string
	user string
}

func (op *mkdirOp) cacheKey(context.Context, []string) opKey {
	return opKey{kind: MkdirOp, inputs: []KeyInput{{Name: "path", Value: op.path}, {Name: "user", Value: op.user}}}
}

func (op *mkdirOp) exec(ctx context.Context, e *env, in inputs) (*vresult, error) {
	view, err := e.view(ctx, in.parent.layers)
	if err != nil {
		return nil, err
	}
	return e.packLayer(ctx, in.parent, func(w *layer.Writer) error { return op.fill(ctx, view, w) })
}

// fill writes the layer of a WORKDIR: the directory and its missing parents, owned by USER.
func (op *mkdirOp) fill(ctx context.Context, view *fsView, w *layer.Writer) error {
	target, _, _ := view.resolve(op.path)
	if view.isDir(target) {
		return nil
	}
	uid, gid, err := view.resolveOwner(op.user, true)
	if err != nil {
		return err
	}
	out := map[string]*outEntry{}
	addMissingDirs(view, target, uid, gid, time.Now(), out)
	return writeEntries(ctx, out, w)
}
