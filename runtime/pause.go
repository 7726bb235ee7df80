package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// pauseProcess returns the pid of the user's pause process, which holds kiln's one user and
// mount namespace (podman's model): every kiln of the user joins it, so a `kiln exec` or `stop`
// reaches a container another kiln started, and all see the same mounts. It starts one if none lives.
func pauseProcess(ctx context.Context, dir string, maps RootlessMaps, debug io.Writer) (int, error) {
	lock, err := os.OpenFile(filepath.Join(dir, "pause.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	pidFile := filepath.Join(dir, "pause.pid")
	if data, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && isPause(pid) {
			return pid, nil
		}
	}
	pid, err := startPause(ctx, maps)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(orDiscard(debug), "rootless: started pause process %d for the user namespace\n", pid)
	return pid, writeFileAtomic(pidFile, []byte(strconv.Itoa(pid)+"\n"))
}

// isPause tells a live pause process of ours from a reused pid.
func isPause(pid int) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && strings.Contains(string(env), "\x00"+pauseEnv+"=1\x00")
}

const pauseEnv = "_KILN_PAUSE"

func startPause(ctx context.Context, maps RootlessMaps) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	defer w.Close()
	cmd := exec.Command("/proc/self/exe")
	// It outlives this kiln: keep no directory busy and none of this command's environment.
	cmd.Dir, cmd.Env = "/", []string{usernsEnv + "=wait", pauseEnv + "=1"}
	cmd.ExtraFiles = []*os.File{r} // fd 3: the go-ahead once the maps are written
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, Setsid: true}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EINVAL) {
			return 0, fmt.Errorf("the kernel refused a user namespace (%w): enable unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone; in a container, a seccomp profile that allows them, or Kubernetes hostUsers: false), or run kiln as root (in a container without them, root gets chroot isolation, which needs CAP_SYS_CHROOT)", err)
		}
		return 0, fmt.Errorf("start kiln in a user namespace: %w", err)
	}
	r.Close()
	if err := writeMaps(cmd.Process.Pid, maps); err != nil {
		cmd.Process.Kill() //nolint:errcheck // it waits for us and never started
		cmd.Wait()         //nolint:errcheck // killed just now
		return 0, err
	}
	if _, err := w.Write([]byte{1}); err != nil {
		return 0, fmt.Errorf("start pause process: %w", err)
	}
	go cmd.Wait() //nolint:errcheck // it outlives this kiln; reaped by init then
	return cmd.Process.Pid, nil
}

// waitChild runs cmd to its end, forwarding SIGTERM (a terminal's Ctrl-C reaches it directly,
// being in the same process group), and returns its exit code.
func waitChild(ctx context.Context, cmd *exec.Cmd) (int, error) {
	signal.Ignore(os.Interrupt)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("rootless: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Signal(syscall.SIGTERM) }) //nolint:errcheck // it may have exited
	defer stop()
	err := cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 1, fmt.Errorf("rootless: %w", err)
	}
	return 0, nil
}

// checkUserNamespaces names the sysctl that disables unprivileged user namespaces, if one does.
func checkUserNamespaces() error {
	for _, k := range []struct{ file, bad, fix string }{
		{"/proc/sys/user/max_user_namespaces", "0", "sysctl -w user.max_user_namespaces=15000"},
		{"/proc/sys/kernel/unprivileged_userns_clone", "0", "sysctl -w kernel.unprivileged_userns_clone=1"},
		{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for kiln"},
	} {
		if v, err := os.ReadFile(k.file); err == nil && strings.TrimSpace(string(v)) == k.bad {
			return fmt.Errorf("rootless: unprivileged user namespaces are disabled (%s is %s): ask an administrator to run `%s`, or run kiln as root",
				k.file, k.bad, k.fix)
		}
	}
	return nil
}
