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
	ctx    *Context   // bind from a --build-context directory instead of the build context
	source string     // bind: path inside the context or the --from filesystem
	from   *Vertex    // bind from a stage or image (nil with what == "" means the context)
	dep    int        // from's index in the vertex's deps; -1 for none
	what   string     // "stage x", "image y" for messages

	cacheID  string // cache: the persistent directory's id
	sharing  instructions.ShareMode
	ownerSet bool // cache: uid, gid or mode given, which makes it a cache of its own (BuildKit's base dir)
	uid, gid int
	mode     uint32

	size      int64 // tmpfs: bytes, 0 = default
	secretID  string
	secretEnv string // secret: the variable it is exposed as; with no target, no file is mounted
	sshID     string
	required  bool
}

// sshAgentTarget is where BuildKit mounts a RUN's Nth ssh socket when it names no target.
const sshAgentTarget = "/run/buildkit/ssh_agent.%d"

// planMounts resolves a RUN's --mount flags and the vertices bind mounts read from.
func (sb *stageBuilder) planMounts(ctx context.Context, c *instructions.RunCommand) ([]runMount, []*Vertex, error) {
	var out []runMount
	var deps []*Vertex
	ssh := 0
	for _, m := range instructions.GetMounts(c) {
		if m.Type == instructions.MountTypeSSH && m.Target == "" {
			mm := *m
			mm.Target = fmt.Sprintf(sshAgentTarget, ssh)
			m = &mm
		}
		if m.Type == instructions.MountTypeSSH {
			ssh++
		}
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
	if m.Type == instructions.MountTypeSecret && m.Env != nil && target == "" {
		return sb.planSecret(m, rm) // an environment variable only
	}
	if target == "" && m.Type == instructions.MountTypeSecret {
		target = "/run/secrets/" + secretID(m)
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
		return sb.planSecret(m, rm)
	case instructions.MountTypeSSH:
		if m.Source != "" {
			return rm, errors.New("ssh mounts take no source: name the --ssh ID with id=")
		}
		rm.sshID, rm.required = m.CacheID, m.Required
		if rm.sshID == "" {
			rm.sshID = "default"
		}
		if m.Mode == nil {
			rm.mode = 0o600
		}
		return rm, nil
	}
	return rm, fmt.Errorf("mount type %q is not supported (use bind, cache, tmpfs, secret or ssh)", m.Type)
}

// planSecret resolves a secret's id (id=, else source=, else the target's name) and, with
// env=, the variable it is exposed as, as BuildKit does.
func (sb *stageBuilder) planSecret(m *instructions.Mount, rm runMount) (runMount, error) {
	rm.secretID, rm.required = secretID(m), m.Required
	if rm.secretID == "" && rm.target != "" {
		rm.secretID = path.Base(rm.target)
	}
	if m.Env != nil {
		if *m.Env == "" || strings.ContainsAny(*m.Env, "= \t\n") {
			return rm, fmt.Errorf("env=%q is not an environment variable name", *m.Env)
		}
		rm.secretEnv = *m.Env
	}
	if rm.secretID == "" {
		return rm, errors.New("id= is required for a secret exposed only as env=")
	}
	if m.Mode == nil {
		rm.mode = 0o400
	}
	return rm, nil
}

func secretID(m *instructions.Mount) string {
	if m.Source != "" {
		return m.Source
	}
	return m.CacheID
}

// planBind resolves a bind source: the context by default, else a stage or image.
func (sb *stageBuilder) planBind(ctx context.Context, m *instructions.Mount, rm runMount) (runMount, error) {
	src := m.Source
	if src == "" {
		src = "/"
	}
	rm.source = src
	bctx := sb.p.opts.Context
	if m.From != "" {
		dir, err := sb.namedDir(m.From)
		if err != nil {
			return rm, err
		}
		bctx, rm.ctx = dir, dir
	}
	if m.From == "" || rm.ctx != nil {
		if bctx == nil {
			return rm, errors.New("no build context to bind from")
		}
		if sb.p.opts.ChecksOnly {
			return rm, nil
		}
		sel, err := bctx.Select(ctx, []string{src})
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
		if m.secretEnv != "" {
			parts = append(parts, "env="+m.secretEnv)
		}
	case instructions.MountTypeSSH:
		parts = append(parts, "id="+m.sshID, "required="+strconv.FormatBool(m.required),
			fmt.Sprintf("owner=%d:%d mode=%o", m.uid, m.gid, m.mode))
	}
	return strings.Join(parts, " ")
}
