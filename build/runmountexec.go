package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/gofrs/flock"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/runtime"
)

// preparedMounts holds what a RUN's mounts need while it runs, and releases it after.
type preparedMounts struct {
	mounts   []RunMount
	releases []func()
	secrets  [][]byte // values to keep out of the step's log
}

func (pm *preparedMounts) release() {
	for i := len(pm.releases) - 1; i >= 0; i-- {
		pm.releases[i]()
	}
}

// prepareMounts makes each --mount's source: context paths, other stages' filesystems,
// persistent cache dirs, secret files. tmp is the step's private staging dir.
func (s *solver) prepareMounts(ctx context.Context, op *execOp, tmp string) (*preparedMounts, error) {
	pm := &preparedMounts{}
	for i, m := range op.mounts {
		rm := RunMount{Target: m.target, ReadOnly: m.readOnly}
		var err error
		switch m.typ {
		case instructions.MountTypeBind:
			rm.Source, err = s.bindSource(ctx, m, pm)
		case instructions.MountTypeCache:
			rm.Source, rm.ReadOnly, err = s.cacheDir(m, pm)
		case instructions.MountTypeTmpfs:
			rm.Tmpfs = true
			if m.size > 0 {
				rm.Options = []string{fmt.Sprintf("size=%d", m.size)}
			}
		case instructions.MountTypeSecret:
			var skip bool
			rm.Source, skip, err = s.secretFile(m, filepath.Join(tmp, fmt.Sprintf("secret-%d", i)), pm)
			if skip {
				continue
			}
			rm.ReadOnly = true
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
func (s *solver) bindSource(ctx context.Context, m runMount, pm *preparedMounts) (string, error) {
	root := ""
	if m.sel != nil {
		root = s.opts.ContextDir
	} else {
		rootfs, release, err := s.stageRootfs(ctx, s.result(m.from).layers)
		if err != nil {
			return "", err
		}
		pm.releases = append(pm.releases, release)
		root = rootfs
	}
	src, err := securejoin.SecureJoin(root, m.source)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("source %s: %w", m.source, err)
	}
	if m.readOnly {
		return src, nil
	}
	return s.writableCopy(src, pm)
}

// writableCopy gives a rw bind its own copy-on-write view of src: writes are thrown away
// after the step, as BuildKit does, and never reach the context or the source stage.
func (s *solver) writableCopy(src string, pm *preparedMounts) (string, error) {
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
	merged, release, err := runtime.MountLayers(tmp, []string{src})
	if err != nil {
		return "", fmt.Errorf("read-write bind mount needs overlayfs (root): %w", err)
	}
	pm.releases = append(pm.releases, func() { _ = release() })
	return merged, nil
}

// cacheDir returns the persistent directory of a cache mount, creating it with the
// requested owner and mode. sharing=locked holds a lock for the step's duration; private
// falls back to a throwaway dir while another step uses the cache.
func (s *solver) cacheDir(m runMount, pm *preparedMounts) (string, bool, error) {
	sum := sha256.Sum256([]byte(m.cacheID))
	base := s.opts.Store.Mounts()
	dir := filepath.Join(base, hex.EncodeToString(sum[:16]))
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
	return dir, m.readOnly, nil
}

// secretFile writes a secret given with `kiln build --secret` into the step's staging dir.
func (s *solver) secretFile(m runMount, file string, pm *preparedMounts) (string, bool, error) {
	val, ok := s.opts.Secrets[m.secretID]
	if !ok {
		if m.required {
			return "", false, fmt.Errorf("secret %q is required: pass it with --secret id=%s,src=FILE", m.secretID, m.secretID)
		}
		return "", true, nil
	}
	if err := os.WriteFile(file, val, fs.FileMode(m.mode)); err != nil {
		return "", false, err
	}
	if err := os.Chmod(file, fs.FileMode(m.mode)); err != nil {
		return "", false, err
	}
	if err := os.Lchown(file, m.uid, m.gid); err != nil && os.Geteuid() == 0 {
		return "", false, err
	}
	pm.secrets = append(pm.secrets, val)
	return file, false, nil
}
