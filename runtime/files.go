package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// File is a small file placed read-only in the container whose content must never reach a disk
// (a build secret): the runtime keeps it on a tmpfs of its own for the run's lifetime, and
// Cleanup unmounts that tmpfs when the run's kiln process was killed.
type File struct {
	Target   string      // absolute path inside the container
	Data     []byte      // the content
	Mode     fs.FileMode // permission bits; 0 = 0400
	UID, GID uint32      // owner inside the container
}

func filesDir(stateDir, id string) string { return filepath.Join(stateDir, "files", id) }

// mountFiles writes s.Files onto a fresh tmpfs under the state dir and returns bind mounts of
// them; nothing when there are none. The owner record must exist first: Cleanup finds the tmpfs
// through it.
func mountFiles(s Spec) ([]Mount, error) {
	if len(s.Files) == 0 && len(s.SecretEnv) == 0 {
		return nil, nil
	}
	dir := filesDir(s.stateDir, s.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create in-memory files dir: %w", err)
	}
	size := 4096
	for _, f := range s.Files {
		size += len(f.Data) + 4096
	}
	if len(s.SecretEnv) > 0 {
		size += 1 << 20 // config.json
	}
	opts := "mode=0700,size=" + strconv.Itoa(size)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return nil, fmt.Errorf("mount tmpfs for in-memory files: %w", err)
	}
	var out []Mount
	for i, f := range s.Files {
		src := filepath.Join(dir, strconv.Itoa(i))
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o400
		}
		err := os.WriteFile(src, f.Data, 0o600)
		if err == nil {
			err = os.Chown(src, int(f.UID), int(f.GID))
		}
		if err == nil {
			err = os.Chmod(src, mode)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("write in-memory file for %s: %w", f.Target, err), unmountFiles(s.stateDir, s.ID))
		}
		out = append(out, Mount{Type: Bind, Source: src, Target: f.Target, ReadOnly: true})
	}
	return out, nil
}

// unmountFiles drops a run's in-memory files (the tmpfs and its mountpoint); nothing to do is no error.
func unmountFiles(stateDir, id string) error {
	dir := filesDir(stateDir, id)
	err := unix.Unmount(dir, unix.UMOUNT_NOFOLLOW)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount in-memory files of %s: %w", id, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove in-memory files of %s: %w", id, err)
	}
	return nil
}

// cleanupFiles drops the in-memory files of every run that no live kiln process owns.
func cleanupFiles(stateDir string, live *liveRuns) error {
	ents, err := os.ReadDir(filepath.Join(stateDir, "files"))
	if err != nil {
		return nil // none yet
	}
	var errs []error
	for _, e := range ents {
		if !live.has(e.Name()) {
			errs = append(errs, unmountFiles(stateDir, e.Name()))
		}
	}
	return errors.Join(errs...)
}
