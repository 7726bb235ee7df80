package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"slices"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// chrootEnv marks a kiln child re-executed for the chroot rung: "exec" runs one process
// chrooted, its chrootConfig on fd 3 and failures before the exec on fd 4.
const chrootEnv = "_KILN_CHROOT"

// chrootConfig is what the child needs: the process as the OCI runtimes would get it, the
// directory to chroot into and the compiled seccomp program (nil = none).
type chrootConfig struct {
	Rootfs  string            `json:"rootfs"`
	Process *specs.Process    `json:"process"`
	Seccomp []unix.SockFilter `json:"seccomp,omitempty"`
}

// ChrootHook runs the child side of the chroot rung; call it first thing in main. It returns
// only in a process that is not such a child.
func ChrootHook() {
	if os.Getenv(chrootEnv) == "exec" {
		// Capabilities, the bounding set and the seccomp filter belong to a thread: set them on
		// the one that execs.
		goruntime.LockOSThread()
		errPipe := os.NewFile(4, "chroot-errors")
		unix.CloseOnExec(4)
		err := chrootExec(os.NewFile(3, "chroot-config"))
		fmt.Fprint(errPipe, err.Error())
		os.Exit(125)
	}
}

// chrootExec enters the rootfs, drops to the process's credentials and capabilities, sets
// no_new_privs and the seccomp filter, and executes the command. It returns only on failure.
func chrootExec(cfgFile *os.File) error {
	var cfg chrootConfig
	if err := json.NewDecoder(io.LimitReader(cfgFile, 16<<20)).Decode(&cfg); err != nil {
		return fmt.Errorf("read chroot config: %w", err)
	}
	cfgFile.Close()
	p := cfg.Process
	if p == nil || len(p.Args) == 0 {
		return errors.New("chroot config: no process")
	}
	for _, rl := range p.Rlimits {
		if res, ok := rlimitTypes[rl.Type]; ok {
			if err := unix.Setrlimit(res, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
				return fmt.Errorf("set %s: %w", rl.Type, err)
			}
		}
	}
	if err := unix.Chroot(cfg.Rootfs); err != nil {
		return fmt.Errorf("chroot %s: %w", cfg.Rootfs, err)
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("working directory %s: %w", p.Cwd, err)
	}
	// Look the command up with the container's PATH, inside the new root.
	os.Setenv("PATH", envValue(p.Env, "PATH")) //nolint:errcheck // cannot fail for a valid name
	path, err := exec.LookPath(p.Args[0])
	if err != nil {
		return fmt.Errorf("exec: %q: %w", p.Args[0], err)
	}
	var caps []string
	if p.Capabilities != nil {
		caps = p.Capabilities.Bounding
	}
	if err := dropBounding(caps); err != nil {
		return err
	}
	groups := make([]int, len(p.User.AdditionalGids))
	for i, g := range p.User.AdditionalGids {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(int(p.User.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", p.User.GID, err)
	}
	// A change to a non-root uid clears every capability, as it does for a process under docker.
	if err := syscall.Setuid(int(p.User.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", p.User.UID, err)
	}
	if p.User.UID == 0 {
		if err := setCaps(caps); err != nil {
			return err
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if len(cfg.Seccomp) > 0 {
		if err := installSeccomp(cfg.Seccomp); err != nil {
			return err
		}
	}
	err = syscall.Exec(path, p.Args, p.Env)
	return fmt.Errorf("exec: %q: %w", p.Args[0], err)
}

var rlimitTypes = map[string]int{"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC}

// capNumber is the number of a capability name (allCaps is in number order); -1 if unknown.
func capNumber(name string) int { return slices.Index(allCaps, name) }

// dropBounding removes from the bounding set every capability not in keep, so that no exec
// (setuid binaries, file capabilities) can regain one.
func dropBounding(keep []string) error {
	for n := range 64 {
		if n < len(allCaps) && slices.Contains(keep, allCaps[n]) {
			continue
		}
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break // past the kernel's last capability
		}
		if err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w (kiln needs CAP_SETPCAP)", n, err)
		}
	}
	return nil
}

// setCaps makes caps the thread's permitted and effective sets, with nothing inheritable; as
// root the exec then keeps exactly them (root's file sets are full, masked by the bounding set).
func setCaps(caps []string) error {
	var data [2]unix.CapUserData
	for _, c := range caps {
		n := capNumber(c)
		if n < 0 {
			continue
		}
		data[n/32].Permitted |= 1 << (n % 32)
		data[n/32].Effective |= 1 << (n % 32)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	return nil
}
