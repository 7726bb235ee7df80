package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// netnsPath is where the container's named network namespace is bind-mounted; the OCI config
// points the runtime at it, so the network is ready before the process starts.
func netnsPath(stateDir, id string) string {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	return filepath.Join(stateDir, "netns", id)
}

// createNetns creates a new network namespace and pins it with a bind mount at path.
func createNetns(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create netns dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() { errc <- unshareNetnsAt(path) }()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("create network namespace: %w", err)
	}
	return nil
}

// unshareNetnsAt moves this goroutine's OS thread into a new network namespace, binds it at path
// and moves the thread back. A thread that cannot go back stays locked, so Go discards it when
// the goroutine exits instead of running other goroutines in the wrong namespace.
func unshareNetnsAt(path string) error {
	goruntime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		goruntime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		goruntime.UnlockOSThread()
		return fmt.Errorf("unshare: %w", err)
	}
	err = unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
	if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
		if err == nil && errors.Is(serr, unix.EPERM) {
			// Rootless: the host's namespace belongs to the parent user namespace, so there is no
			// way back; the thread stays locked and ends with its goroutine.
			return nil
		}
		return errors.Join(err, fmt.Errorf("return to the host network namespace: %w", serr))
	}
	goruntime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("bind network namespace: %w", err)
	}
	return nil
}

// removeNetns unmounts and removes a namespace pinned by createNetns; a missing one is fine.
func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}
