package build

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// runMount is one RUN --mount, resolved at plan time.
type runMount struct {
	typ      instructions.MountType
	target   string // absolute, clean
	readOnly bool

	sel    *selection // bind from the context: what the key covers
	source string     // bind: path inside the context or the --from filesystem
	from   *Vertex    // bind from a stage or image (nil with what == "" means the context)
	dep    int        // from's index in the vertex's deps; -1 for none
	what   string     // "stage x", "image y" for messages

	cacheID  string // cache: the persistent directory's id
	sharing  instructions.ShareMode
	ownerSet bool // cache: uid, gid or mode given, which makes it a cache of its own (BuildKit's base dir)
	uid, gid int
	mode     uint32

	size     int64 // tmpfs: bytes, 0 = default
	secretID string
	required bool
}

// planMounts resolves a RUN's --mount flags and the vertices bind mounts read from.
func (sb *stageBuilder) planMounts(ctx context.Context, c *instructions.RunCommand) ([]runMount, []*Vertex, error) {
	var out []runMount
	var deps []*Vertex
	for _, m := range instructions.GetMounts(c) {
		rm, err := sb.planMount(ctx, m)
		if err != nil {
			return nil, nil, fmt.Errorf("--mount type=%s: %w", m.Type, err)
		}
		rm.dep = -1
		if rm.from != nil {
			rm.dep = len(deps)
			deps = append(deps, rm.from)
		}
		out = append(out, rm)
	}
	return out, deps, nil
}

func (sb *stageBuilder) planMount(ctx context.Context, m *instructions.Mount) (runMount, error) {
	rm := runMount{typ: m.Type, readOnly: m.ReadOnly, uid: 0, gid: 0, mode: 0o755}
	target := m.Target
	if target == "" && m.Type == instructions.MountTypeSecret {
		target = "/run/secrets/" + m.CacheID
	}
	if target == "" {
		return rm, errors.New("target is required")
	}
	if !path.IsAbs(target) {
		target = path.Join("/", sb.cwd(), target)
	}
	rm.target = path.Clean(target)
	if rm.target == "/" {
		return rm, errors.New("cannot mount over /")
	}
	for _, id := range []*uint64{m.UID, m.GID} {
		if id != nil && *id > maxID {
			return rm, fmt.Errorf("id %d is out of range 0..%d", *id, uint64(maxID))
		}
	}
	if m.UID != nil {
		rm.uid = int(*m.UID)
	}
	if m.GID != nil {
		rm.gid = int(*m.GID)
	}
	if m.Mode != nil {
		rm.mode = uint32(*m.Mode)
	}
	switch m.Type {
	case instructions.MountTypeBind:
		return sb.planBind(ctx, m, rm)
	case instructions.MountTypeCache:
		rm.cacheID, rm.sharing = m.CacheID, m.CacheSharing
		rm.ownerSet = m.UID != nil || m.GID != nil || m.Mode != nil
		if rm.cacheID == "" {
			rm.cacheID = rm.target
		}
		if m.From != "" {
			return rm, errors.New("from= for cache mounts is not supported yet")
		}
		return rm, nil
	case instructions.MountTypeTmpfs:
		rm.size = m.SizeLimit
		return rm, nil
	case instructions.MountTypeSecret:
		if m.Env != nil {
			return rm, errors.New("env= secrets are not supported yet; mount the secret as a file")
		}
		rm.secretID, rm.required = m.CacheID, m.Required
		if rm.secretID == "" {
			rm.secretID = path.Base(rm.target)
		}
		if m.Mode == nil {
			rm.mode = 0o400
		}
		return rm, nil
	}
	return rm, fmt.Errorf("mount type %q is not supported (use bind, cache, tmpfs or secret)", m.Type)
}

// planBind resolves a bind source: the context by default, else a stage or image.
func (sb *stageBuilder) planBind(ctx context.Context, m *instructions.Mount, rm runMount) (runMount, error) {
	src := m.Source
	if src == "" {
		src = "/"
	}
	rm.source = src
	if m.From == "" {
		if sb.p.opts.Context == nil {
			return rm, errors.New("no build context to bind from")
		}
		if sb.p.opts.ChecksOnly {
			return rm, nil
		}
		sel, err := sb.p.opts.Context.Select(ctx, []string{src})
		if err != nil {
			return rm, err
		}
		rm.sel = sel
		return rm, nil
	}
	from, err := sb.copyFrom(ctx, m.From, []string{src})
	if err != nil {
		return rm, err
	}
	if from.vertex == nil {
		return rm, fmt.Errorf("from=%s has no files to bind", m.From)
	}
	rm.from, rm.what = from.vertex, from.what
	return rm, nil
}

// keyValue is what the step's cache key records of the mount: never a secret's content,
// never a cache mount's content (BuildKit's rule: caches are an optimization).
func (m runMount) keyValue(deps []string) string {
	parts := []string{string(m.typ), "ro=" + strconv.FormatBool(m.readOnly)}
	switch m.typ {
	case instructions.MountTypeBind:
		parts = append(parts, "source="+m.source)
		if m.sel != nil {
			parts = append(parts, "context="+m.sel.digest)
		}
		if m.dep >= 0 {
			parts = append(parts, "from="+deps[m.dep])
		}
	case instructions.MountTypeCache:
		parts = append(parts, "id="+m.cacheID, "sharing="+string(m.sharing),
			fmt.Sprintf("owner=%d:%d mode=%o", m.uid, m.gid, m.mode))
	case instructions.MountTypeTmpfs:
		parts = append(parts, "size="+strconv.FormatInt(m.size, 10))
	case instructions.MountTypeSecret:
		parts = append(parts, "id="+m.secretID, "required="+strconv.FormatBool(m.required),
			fmt.Sprintf("owner=%d:%d mode=%o", m.uid, m.gid, m.mode))
	}
	return strings.Join(parts, " ")
}
