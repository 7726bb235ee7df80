package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// overlayOpts keep whole files in the upper dir, so a layer diff needs to walk only the upper dir.
// In a user namespace "off" means "follow", which the kernel refuses there; "nofollow" creates
// no redirects either (a renamed directory is copied up whole); userxattr keeps overlay's own
// xattrs (opaque dirs) in user.overlay.*, as trusted.* is root's on the host only.
var overlayOpts = func() []string {
	if InUserNamespace() {
		return []string{"index=off", "metacopy=off", "redirect_dir=nofollow", "userxattr"}
	}
	return []string{"index=off", "metacopy=off", "redirect_dir=off"}
}()

// forceFuseOverlay makes mountRootfs use fuse-overlayfs (tests of the rootless fallback).
var forceFuseOverlay = false

// forceLegacyMount makes mountOverlay skip the new mount API (tests of the fallback path).
var forceLegacyMount = false

// mountRootfs mounts the container's root filesystem at <bundle>/rootfs: an overlay of lower
// (bottom first) under upper, or a plain bind of upper when there are no lower dirs.
func mountRootfs(bundle string, lower []string, upper, work string) (string, error) {
	return mountRootfsNote(bundle, lower, upper, work, false, nil)
}

// mountRootfsNote is mountRootfs, saying on note when it falls back to fuse-overlayfs; volatile
// (an upper dir that is thrown away after the run) lets overlay skip its syncs, the bulk of the
// unmount.
func mountRootfsNote(bundle string, lower []string, upper, work string, volatile bool, note io.Writer) (string, error) {
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return "", fmt.Errorf("create rootfs mountpoint: %w", err)
	}
	if len(lower) == 0 {
		if err := unix.Mount(upper, rootfs, "", unix.MS_BIND, ""); err != nil {
			return "", fmt.Errorf("bind upper dir %s at %s: %w", upper, rootfs, err)
		}
		return rootfs, nil
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return "", fmt.Errorf("create overlay workdir: %w", err)
	}
	lower = topmostOnce(lower)
	opts := overlayOpts
	if volatile {
		opts = append(slices.Clip(opts), "volatile")
		// Overlay refuses a workdir that a volatile mount used before (even cleanly unmounted);
		// the upper dir of a --rm container is disposable, so a second start may reuse it.
		if err := os.RemoveAll(filepath.Join(work, "work", "incompat", "volatile")); err != nil {
			return "", fmt.Errorf("reset volatile overlay workdir: %w", err)
		}
	}
	err := errors.ErrUnsupported
	switch {
	case forceFuseOverlay:
		err = fmt.Errorf("forced by a test: %w", unix.EPERM)
	case !forceLegacyMount:
		err = mountOverlayFD(rootfs, lower, upper, work, opts)
	}
	if errors.Is(err, errors.ErrUnsupported) {
		err = mountOverlayLegacy(bundle, rootfs, lower, upper, work, opts)
	}
	if err != nil && (InUserNamespace() || forceFuseOverlay) && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL)) {
		// Kernels before 5.11, or ones that refuse overlayfs in a user namespace.
		fmt.Fprintf(orDiscard(note), "rootfs: kernel overlayfs refused (%v): using fuse-overlayfs\n", err)
		err = mountFuseOverlay(rootfs, lower, upper, work, err)
	}
	if err != nil {
		return "", fmt.Errorf("mount overlay rootfs (%d layers): %w", len(lower), err)
	}
	return rootfs, nil
}

// topmostOnce drops all but the highest occurrence of a layer listed more than once (an image may
// repeat a layer; overlay refuses a lower dir twice with ELOOP). The result is the same tree: the
// higher copy already covers everything the lower one showed.
func topmostOnce(lower []string) []string {
	seen := map[string]bool{}
	var out []string
	for i := len(lower) - 1; i >= 0; i-- {
		if !seen[lower[i]] {
			seen[lower[i]] = true
			out = append(out, lower[i])
		}
	}
	slices.Reverse(out)
	return out
}

// mountOverlayFD uses fsopen/fsconfig with one "lowerdir+" per layer (Linux 6.8+), which has no
// limit on the number of layers; it reports ErrUnsupported on kernels without it.
func mountOverlayFD(rootfs string, lower []string, upper, work string, opts []string) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return errors.ErrUnsupported
		}
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for i := len(lower) - 1; i >= 0; i-- { // overlay lists the top layer first
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", lower[i]); err != nil {
			if errors.Is(err, unix.EINVAL) && i == len(lower)-1 {
				return errors.ErrUnsupported // kernel before 6.8: no "lowerdir+" key
			}
			return fmt.Errorf("overlay lowerdir+ %s: %w", lower[i], err)
		}
	}
	set := [][2]string{{"upperdir", upper}, {"workdir", work}}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		set = append(set, [2]string{k, v})
	}
	for _, kv := range set {
		set := func() error { return unix.FsconfigSetString(fsfd, kv[0], kv[1]) }
		if kv[1] == "" { // a flag such as userxattr
			set = func() error { return unix.FsconfigSetFlag(fsfd, kv[0]) }
		}
		if err := set(); err != nil {
			return fmt.Errorf("overlay %s=%s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create overlay superblock: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach overlay at %s: %w", rootfs, err)
	}
	return nil
}

// unmountRootfs detaches the rootfs (lazily if still busy) and removes the mountpoint and the
// layer links; it never recurses into a directory that might still be mounted.
func unmountRootfs(bundle string) error {
	rootfs := filepath.Join(bundle, "rootfs")
	err := unix.Unmount(rootfs, unix.UMOUNT_NOFOLLOW)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(rootfs, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", rootfs, err)
	}
	if err := os.Remove(rootfs); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove rootfs mountpoint: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(bundle, "l")); err != nil {
		return fmt.Errorf("remove layer links: %w", err)
	}
	return nil
}

// MountLayers mounts layer dirs (bottom first) as one filesystem at <dir>/rootfs for reading,
// e.g. a stage that COPY --from reads: an overlay with a throwaway upper dir under dir, so any
// number of layers mounts. release unmounts it; the caller removes dir.
func MountLayers(dir string, lower []string) (rootfs string, release func() error, err error) {
	upper := filepath.Join(dir, "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return "", nil, err
	}
	rootfs, err = mountRootfs(dir, lower, upper, filepath.Join(dir, "work"))
	if err != nil {
		return "", nil, err
	}
	return rootfs, func() error { return unmountRootfs(dir) }, nil
}

// MountWritable mounts a container's own layers (lower, bottom first), upper and work dirs
// read-write at <dir>/rootfs, as a start would, so that a stopped container can be changed
// (docker's cp into a stopped container). The caller must keep the container from starting
// until release, which unmounts it; the caller removes dir.
func MountWritable(dir string, lower []string, upper, work string, volatile bool) (rootfs string, release func() error, err error) {
	rootfs, err = mountRootfsNote(dir, lower, upper, work, volatile, nil)
	if err != nil {
		return "", nil, err
	}
	fuse := isFuseMount(rootfs)
	return rootfs, func() error {
		if err := unmountRootfs(dir); err != nil {
			return err
		}
		if fuse { // as a run's teardown: the upper dir must read as kernel overlay's
			return normalizeFuseUpper(upper, lower)
		}
		return nil
	}, nil
}

// mountFuseOverlay mounts the overlay with fuse-overlayfs, which runs as the user; kernelErr is
// why kernel overlayfs was not used, for the message when fuse-overlayfs cannot help either.
func mountFuseOverlay(rootfs string, lower []string, upper, work string, kernelErr error) error {
	bin, err := exec.LookPath("fuse-overlayfs")
	if err != nil {
		return fmt.Errorf("kernel overlayfs refused (%v) and fuse-overlayfs is not installed: install it (apt-get install fuse-overlayfs)", kernelErr)
	}
	if err := unix.Access("/dev/fuse", unix.R_OK|unix.W_OK); err != nil {
		return fmt.Errorf("kernel overlayfs refused (%v) and fuse-overlayfs needs read-write /dev/fuse (%v): load the fuse module (modprobe fuse) and make it mode 0666 (package fuse3), or give the container /dev/fuse", kernelErr, err)
	}
	top := slices.Clone(lower)
	slices.Reverse(top) // the top layer first, as overlay lists them
	for _, d := range append(slices.Clone(top), upper, work) {
		if strings.ContainsAny(d, ",:") { // fuse-overlayfs cannot escape them in its options
			return fmt.Errorf("fuse-overlayfs cannot use a path with ',' or ':' (%s): use a store path without them", d)
		}
	}
	opts := "lowerdir=" + strings.Join(top, ":") + ",upperdir=" + upper + ",workdir=" + work
	if out, err := exec.Command(bin, "-o", opts, rootfs).CombinedOutput(); err != nil {
		return fmt.Errorf("fuse-overlayfs: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
