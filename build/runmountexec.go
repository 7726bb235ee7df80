package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/gofrs/flock"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runtime"
)

// preparedMounts holds what a RUN's mounts need while it runs, and releases it after.
type preparedMounts struct {
	mounts   []RunMount
	releases []func()
	secrets  [][]byte // values to keep out of the step's log
	env      []string // secrets exposed as environment variables
}

func (pm *preparedMounts) release() {
	for i := len(pm.releases) - 1; i >= 0; i-- {
		pm.releases[i]()
	}
}

// prepareMounts makes each --mount's source: context paths, other stages' filesystems,
// persistent cache dirs, in-memory secret files.
func (s *env) prepareMounts(ctx context.Context, op *execOp, deps []*vresult) (*preparedMounts, error) {
	pm := &preparedMounts{}
	for _, m := range op.mounts {
		rm := RunMount{Target: m.target, ReadOnly: m.readOnly}
		var err error
		switch m.typ {
		case instructions.MountTypeBind:
			rm.Source, err = s.bindSource(ctx, m, deps, pm)
		case instructions.MountTypeCache:
			rm.Source, rm.ReadOnly, err = s.cacheDir(m, pm)
		case instructions.MountTypeTmpfs:
			rm.Tmpfs = true
			if m.size > 0 {
				rm.Options = []string{fmt.Sprintf("size=%d", m.size)}
			}
		case instructions.MountTypeSecret:
			var skip bool
			rm.Secret, skip, err = s.secretFile(m, pm)
			if err == nil && !skip && m.secretEnv != "" {
				pm.env = append(pm.env, m.secretEnv+"="+string(rm.Secret.Data))
			}
			if skip || (err == nil && m.target == "") {
				continue // not given and optional, or an environment variable only
			}
			rm.ReadOnly = true
		case instructions.MountTypeSSH:
			var skip bool
			rm.Source, skip, err = s.sshSocket(ctx, m, pm)
			if skip {
				continue
			}
		}
		if err != nil {
			pm.release()
			return nil, fmt.Errorf("--mount target=%s: %w", m.target, err)
		}
		pm.mounts = append(pm.mounts, rm)
	}
	return pm, nil
}

// bindSource resolves a bind's source inside the context or the --from filesystem; the
// path resolves as if that tree were "/", so no symlink leads out of it.
func (s *env) bindSource(ctx context.Context, m runMount, deps []*vresult, pm *preparedMounts) (string, error) {
	if m.sel != nil {
		return s.contextBind(ctx, m, pm)
	}
	rootfs, release, err := s.stageRootfs(ctx, deps[m.dep].layers)
	if err != nil {
		return "", err
	}
	pm.releases = append(pm.releases, release)
	src, err := securejoin.SecureJoin(rootfs, m.source)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("source %s: %w", m.source, err)
	}
	if m.readOnly {
		return src, nil
	}
	return s.writableCopy(src, "", pm)
}

// writableCopy gives a bind its own copy-on-write view of src, under the whiteout layer
// hide when there is one: writes are thrown away after the step, as BuildKit does, and
// never reach the context or the source stage.
func (s *env) writableCopy(src, hide string, pm *preparedMounts) (string, error) {
	tmp, err := s.opts.Store.TempDir("bind-")
	if err != nil {
		return "", err
	}
	pm.releases = append(pm.releases, func() { _ = os.RemoveAll(tmp) })
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		dst := filepath.Join(tmp, "file")
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		return dst, os.WriteFile(dst, data, fi.Mode().Perm())
	}
	lower := []string{src}
	if hide != "" {
		lower = append(lower, hide)
	}
	merged, release, err := runtime.MountLayers(tmp, lower)
	if err != nil {
		return "", fmt.Errorf("a read-write bind mount, or a bind of a context with ignored files, needs overlayfs (root): %w", err)
	}
	pm.releases = append(pm.releases, func() { _ = release() })
	return merged, nil
}

// cacheDir returns the persistent directory of a cache mount, creating it with the
// requested owner and mode. sharing=locked holds a lock for the step's duration; private
// falls back to a throwaway dir while another step uses the cache.
func (s *env) cacheDir(m runMount, pm *preparedMounts) (string, bool, error) {
	// BuildKit creates a cache's base directory with uid/gid/mode, and that base is part of
	// the cache's identity; without them the id alone names it, as before. The identity is
	// the mount record's id too, so an exported cache seeds the same directory elsewhere.
	ident := m.cacheID
	if m.ownerSet {
		ident += fmt.Sprintf(",uid=%d,gid=%d,mode=%o", m.uid, m.gid, m.mode)
	}
	base := s.opts.Store.Mounts()
	dir := s.opts.Store.MountDir(ident)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", false, err
	}
	if m.sharing == instructions.MountSharingLocked || m.sharing == instructions.MountSharingPrivate {
		l := flock.New(dir + ".lock")
		ok, err := l.TryLock()
		if err != nil {
			return "", false, err
		}
		switch {
		case !ok && m.sharing == instructions.MountSharingPrivate:
			dir, err = os.MkdirTemp(base, "private-")
			if err != nil {
				return "", false, err
			}
			pm.releases = append(pm.releases, func() { _ = os.RemoveAll(dir) })
		case !ok:
			if err := l.Lock(); err != nil {
				return "", false, err
			}
			fallthrough
		default:
			pm.releases = append(pm.releases, func() { _ = l.Unlock() })
		}
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, fs.FileMode(m.mode)); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", false, err
		}
		if err := os.Chmod(dir, fs.FileMode(m.mode)); err != nil {
			return "", false, err
		}
		if err := os.Lchown(dir, m.uid, m.gid); err != nil && os.Geteuid() == 0 {
			return "", false, err
		}
	}
	// Recorded so that --cache-to mounts=true can export what this build used.
	if err := s.opts.Store.UseMount(cache.MountRecord{ID: ident, Target: m.target, Sharing: string(m.sharing),
		UID: m.uid, GID: m.gid, Mode: m.mode}); err != nil {
		return "", false, err
	}
	return dir, m.readOnly, nil
}

// keepCacheTargets leaves each cache mount's target in upper as an empty directory owned by
// root when the parent filesystem lacks it, as docker's BuildKit does (the runtime removes
// the mount stubs it made). Ancestors the parent filesystem has are copied up with their
// mode and owner, as overlayfs would.
func (s *env) keepCacheTargets(ctx context.Context, op *execOp, parent []layerRef, upper string) error {
	var targets []string
	for _, m := range op.mounts {
		if m.typ == instructions.MountTypeCache {
			targets = append(targets, m.target)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	view, err := s.view(ctx, parent)
	if err != nil {
		return err
	}
	for _, t := range targets {
		real, _, ok := view.resolve(t)
		if ok {
			continue // the image has it already
		}
		cur := ""
		for _, el := range strings.Split(strings.Trim(real, "/"), "/") {
			cur = path.Join(cur, el)
			p, err := securejoin.SecureJoin(upper, cur)
			if err != nil {
				return err
			}
			if fi, err := os.Lstat(p); err == nil {
				if !fi.IsDir() {
					break // a file, a link or a whiteout the step left: leave it be
				}
				continue
			}
			mode, uid, gid := fs.FileMode(0o755), 0, 0
			if ve, inParent := view.entries[cur]; inParent {
				if ve.typ != tar.TypeDir {
					break
				}
				hdr := tar.Header{Typeflag: tar.TypeDir, Mode: ve.mode}
				mode, uid, gid = hdr.FileInfo().Mode()&^fs.ModeDir, ve.uid, ve.gid
			}
			if err := os.Mkdir(p, mode); err != nil {
				return fmt.Errorf("cache mount target %s: %w", t, err)
			}
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
			if err := os.Lchown(p, uid, gid); err != nil && os.Geteuid() == 0 {
				return err
			}
		}
	}
	return nil
}

// Secret is a secret file's content and ownership for a RUN step; the runner keeps it in memory.
type Secret struct {
	Data     []byte
	Mode     fs.FileMode
	UID, GID int
}

// secretFile hands a secret given with `kiln build --secret` to the runner as an in-memory
// file: it is never written to the store, so no crash can leave its plaintext on disk (#10.5).
func (s *env) secretFile(m runMount, pm *preparedMounts) (*Secret, bool, error) {
	val, ok := s.opts.Secrets[m.secretID]
	if !ok {
		if m.required {
			return nil, false, fmt.Errorf("secret %q is required: pass it with --secret id=%s,src=FILE", m.secretID, m.secretID)
		}
		return nil, true, nil
	}
	pm.secrets = append(pm.secrets, val)
	return &Secret{Data: val, Mode: fs.FileMode(m.mode), UID: m.uid, GID: m.gid}, false, nil
}
