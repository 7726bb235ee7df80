package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOverlayLegacy mounts with mount(2), whose option string is limited to one page: lower dirs
// are named by short symlinks in <bundle>/l (as docker's overlay2 does) and given relative to it.
func mountOverlayLegacy(bundle, rootfs string, lower []string, upper, work string, opts []string) error {
	links := filepath.Join(bundle, "l")
	if err := os.RemoveAll(links); err != nil {
		return fmt.Errorf("reset layer links: %w", err)
	}
	if err := os.Mkdir(links, 0o700); err != nil {
		return fmt.Errorf("create layer links: %w", err)
	}
	names := make([]string, 0, len(lower))
	for i := len(lower) - 1; i >= 0; i-- {
		name := strconv.Itoa(i)
		if err := os.Symlink(lower[i], filepath.Join(links, name)); err != nil {
			return fmt.Errorf("link layer %s: %w", lower[i], err)
		}
		names = append(names, name)
	}
	data := "lowerdir=" + strings.Join(names, ":") + ",upperdir=" + upper + ",workdir=" + work + "," + strings.Join(opts, ",")
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("overlay options are %d bytes, over the kernel's one-page limit: use shorter upper/work paths or Linux 6.8+", len(data))
	}
	return mountInDir(links, func() error { return unix.Mount("overlay", rootfs, "overlay", 0, data) })
}

// mountInDir runs fn with the working directory set to dir on a dedicated OS thread whose
// filesystem context is unshared, so the chdir never affects the rest of the process.
func mountInDir(dir string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread exits with its private cwd
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs context: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", dir, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
